"""The official ``openai`` client, unmodified, against ``latent renter proxy`` on anvil with
two real miners (tiny model): completion, chat, streaming, concurrency across miners; then
the books: every receipt verifies, the channels settle to exactly the receipts' sum, the
miners are paid that sum less the protocol fee, and the renter gets the rest back."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import openai
import pytest
from eth_account.signers.local import LocalAccount
from market_env import CHEAP, RENTER_FUNDS, Env, run_market, stream_text
from web3 import Web3

from chain.escrow import total_fee
from chain.funding import EscrowFunder
from chain.node import increase_time, mine
from chain.receipts import Receipt, recover_receipt_signer
from chain.token import SubnetTokenClient
from miner.engine import InferenceEngine
from renter.closing import close_channels


def _latent(obj: Any) -> dict[str, Any]:
    return (obj.model_extra or {})["latent"]


def test_openai_client_through_the_proxy_pays_exactly_the_receipts(
    w3: Web3,
    token: SubnetTokenClient,
    accounts: list[LocalAccount],
    fresh_chain: Web3,
    proxy_engine: InferenceEngine,
    tmp_path: Path,
) -> None:
    renter_start = token.balance_of(accounts[1].address) + RENTER_FUNDS
    miner_start = {a.address: token.balance_of(a.address) for a in accounts[2:4]}

    async def scenario(env: Env) -> None:
        await env.start_proxy()
        client = env.client()
        models = await client.models.list()
        assert [m.id for m in models.data] == ["tiny"]
        card = models.data[0].model_extra or {}
        assert card["pricing"] == {"prompt": "0.000001", "completion": "0.000003"}
        assert card["context_length"] > 0 and card["miners"] == 2

        completion = await client.completions.create(
            model="tiny", prompt="hello proxy", max_tokens=8, temperature=0
        )
        assert completion.choices[0].text
        assert completion.usage is not None and completion.usage.completion_tokens > 0
        latent = _latent(completion)
        assert latent["receipt"]["miner"] == accounts[2].address  # the cheaper miner

        chat = await client.chat.completions.create(
            model="tiny",
            messages=[{"role": "user", "content": "what is latent?"}],
            max_tokens=10,
            temperature=0.8,  # unseeded + sampled: the proxy fixes a seed
        )
        assert chat.choices[0].message.role == "assistant"
        assert _latent(chat)["seed"] is not None

        stream = await client.chat.completions.create(
            model="tiny",
            messages=[{"role": "user", "content": "what is latent?"}],
            max_tokens=12,
            temperature=0,
            stream=True,
        )
        text, chunks = await stream_text(stream)
        plain = await client.chat.completions.create(
            model="tiny",
            messages=[{"role": "user", "content": "what is latent?"}],
            max_tokens=12,
            temperature=0,
        )
        assert text == plain.choices[0].message.content
        assert any("latent" in (c.model_extra or {}) for c in chunks)

        text_stream = await client.completions.create(
            model="tiny", prompt="stream me", max_tokens=6, temperature=0, stream=True
        )
        streamed, _ = await stream_text(text_stream)
        assert streamed

        # include_usage passes through: usage (and the receipt) in a last chunk of their
        # own, usage null before it; the proxy books that chunk's receipt and usage.
        booked = len(env.proxy.outcomes) if env.proxy is not None else 0
        usage_stream = await client.chat.completions.create(
            model="tiny",
            messages=[{"role": "user", "content": "what is latent?"}],
            max_tokens=12,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
        usage_text, usage_chunks = await stream_text(usage_stream)
        assert usage_text == text
        *content, last = usage_chunks
        assert all(c.usage is None and len(c.choices) == 1 for c in content)
        assert last.choices == [] and last.usage == plain.usage
        assert "latent" in (last.model_extra or {})
        await asyncio.sleep(0.05)  # the pump books after the last byte reached the client
        assert env.proxy is not None and len(env.proxy.outcomes) == booked + 1
        assert env.proxy.outcomes[-1].price == int(_latent(last)["receipt"]["price"])

        # Eight at once: the cheap miner's two channels fill, the rest spills to the other.
        many = await asyncio.gather(
            *(
                client.completions.create(
                    model="tiny", prompt=f"parallel {i}", max_tokens=24, temperature=0
                )
                for i in range(8)
            )
        )
        assert all(c.choices[0].text is not None for c in many)
        assert env.proxy is not None
        served_by = {o.miner for o in env.proxy.outcomes}
        assert served_by == {accounts[2].address, accounts[3].address}

    env = run_market(w3, token, accounts, proxy_engine, tmp_path, scenario)

    # Every kept receipt verifies against its miner; their prices are the books.
    entries = env.store.read_receipts()
    assert len(entries) == 14
    usage_entry = entries[5]  # the include_usage stream: booked with the chunk's usage
    assert usage_entry["kind"] == "chat" and usage_entry["prompt_tokens"] > 0
    assert usage_entry["completion_tokens"] == entries[3]["completion_tokens"]
    receipts = [Receipt.from_json(e["receipt"]) for e in entries]
    for entry, receipt in zip(entries, receipts, strict=True):
        assert recover_receipt_signer(receipt) == entry["miner"]
        assert receipt.chain_id == w3.eth.chain_id
    total = sum(r.price for r in receipts)
    records = env.store.load_channels()
    assert sum(r.owed for r in records) == total
    assert 2 <= len(records) <= 4  # at most two channels per miner
    # The miners never hold a voucher above what the receipts prove.
    for served in env.miners:
        for voucher in served.book.vouchers():
            record = next(r for r in records if r.channel_id == voucher.channel_id)
            assert voucher.cumulative_amount <= record.owed

    # Close: the renter settles its final vouchers, so settled == receipts exactly.
    contracts = env.contracts
    funder = EscrowFunder(contracts.escrow, contracts.token, env.renter)
    actions = close_channels(env.store, funder)
    assert {a.action for a in actions} == {"close requested"}
    settled = 0
    for record in records:
        channel = contracts.escrow.channel(record.channel_id)
        assert channel.settled == record.owed
        settled += channel.settled
    assert settled == total
    # Miners claim: what each gets plus the protocol fee is exactly what it settled.
    fee_bps = contracts.escrow.protocol_fee_bps()
    fees = 0
    for miner in accounts[2:4]:
        ids = [r.channel_id for r in records if r.miner == miner.address]
        owed = sum(r.owed for r in records if r.miner == miner.address)
        contracts.escrow.claim_earnings(ids, sender=miner)
        gained = token.balance_of(miner.address) - miner_start[miner.address]
        fee = sum(total_fee(r.owed, fee_bps) for r in records if r.miner == miner.address)
        assert gained > 0  # both miners were paid (gas is in ETH, not tokens)
        assert gained + fee == owed
        fees += fee
    # After the grace period the renter withdraws the rest: it paid exactly the receipts.
    increase_time(w3, contracts.escrow.grace_period() + 1)
    mine(w3)
    actions = close_channels(env.store, funder)
    assert {a.action for a in actions} == {"withdrawn"}
    assert token.balance_of(env.renter.address) == renter_start - total
    assert fees == sum(total_fee(r.owed, fee_bps) for r in records)
    assert CHEAP.per_prompt_token > 0


def test_bad_input_is_a_clear_4xx_and_signs_no_voucher(
    w3: Web3,
    token: SubnetTokenClient,
    accounts: list[LocalAccount],
    fresh_chain: Web3,
    proxy_engine: InferenceEngine,
    tmp_path: Path,
) -> None:
    async def scenario(env: Env) -> None:
        proxy = await env.start_proxy(max_price_per_token=3 * 10**12)  # below the dear miner
        signed: list[int] = []
        original = proxy._funder.sign

        def counting_sign(channel_id: bytes, cumulative: int) -> Any:
            signed.append(cumulative)
            return original(channel_id, cumulative)

        proxy._funder.sign = counting_sign  # type: ignore[method-assign]
        client = env.client()
        http = env.http
        headers = {"Authorization": f"Bearer {env.client().api_key}"}

        bad_json = await http.post(
            env.url + "/v1/chat/completions", content=b"{not json", headers=headers
        )
        assert bad_json.status_code == 400
        assert bad_json.json()["error"]["code"] == "invalid_json"
        assert set(bad_json.json()["error"]) == {"message", "type", "param", "code"}

        with pytest.raises(openai.NotFoundError) as missing:
            await client.completions.create(model="gpt-4", prompt="x", max_tokens=4)
        assert missing.value.code == "model_not_found"

        with pytest.raises(openai.BadRequestError) as too_long:
            await client.completions.create(model="tiny", prompt="x", max_tokens=10**6)
        assert too_long.value.code == "context_length_exceeded"
        assert too_long.value.param == "max_tokens"

        with pytest.raises(openai.BadRequestError) as schema:
            await client.chat.completions.create(model="tiny", messages=[], max_tokens=4)
        assert schema.value.param == "messages"

        with pytest.raises(openai.BadRequestError):
            await client.completions.create(model="tiny", prompt="x", n=2)

        # Wrong JSON types are 400s naming the field (the miner's strict schema), not coerced.
        for field, value in (
            ("max_tokens", "5"),
            ("temperature", "0.5"),
            ("prompt", [True]),
            ("stream", "yes"),
            ("n", 1.5),
        ):
            body = {"model": "tiny", "prompt": "x", "max_tokens": 4, field: value}
            wrong = await http.post(env.url + "/v1/completions", json=body, headers=headers)
            assert wrong.status_code == 400, (field, wrong.text)
            assert wrong.json()["error"]["param"] == field
            assert wrong.json()["error"]["type"] == "invalid_request_error"

        with pytest.raises(openai.AuthenticationError):
            await openai.AsyncOpenAI(
                base_url=env.url + "/v1", api_key="wrong", max_retries=0
            ).models.list()
        assert signed == []
        assert env.store.load_channels() == []  # nothing opened either

        # Only the dear miner is left when the cheap one is gone: above --max-price -> 400.
        proxy.offers = [o for o in proxy.offers if o.hotkey == accounts[3].address]
        proxy._refreshed_at = proxy._clock()
        with pytest.raises(openai.BadRequestError) as dear:
            await client.completions.create(model="tiny", prompt="x", max_tokens=4)
        assert dear.value.code == "price_above_max"
        assert "--max-price" in dear.value.message
        assert signed == []

        # A prompt longer than the context: the miner refuses before payment; relayed 400.
        await proxy.refresh(force=True)
        with pytest.raises(openai.BadRequestError) as prompt:
            await client.completions.create(model="tiny", prompt="x " * 3000, max_tokens=4)
        assert prompt.value.code == "context_length_exceeded"
        assert all(amount == 0 for amount in signed)  # a voucher for nothing delivered
        assert env.store.read_receipts() == []

    run_market(w3, token, accounts, proxy_engine, tmp_path, scenario)


def test_miners_publish_prices_and_context_in_their_model_card(
    w3: Web3,
    token: SubnetTokenClient,
    accounts: list[LocalAccount],
    fresh_chain: Web3,
    proxy_engine: InferenceEngine,
    tmp_path: Path,
) -> None:
    async def scenario(env: Env) -> None:
        response = await env.http.get(env.miners[0].url + "/v1/models")
        card = response.json()["data"][0]
        assert card["pricing"] == {"prompt": "0.000001", "completion": "0.000003"}
        assert card["context_length"] == proxy_engine.max_context
        assert card["owned_by"] == accounts[2].address
        assert card["latent"]["price_per_completion_token"] == str(CHEAP.per_completion_token)
        # ... and the proxy finds both through the metagraph's endpoints.
        proxy = await env.start_proxy()
        assert sorted(o.hotkey for o in proxy.offers) == sorted(a.address for a in accounts[2:4])
        assert {o.uid for o in proxy.offers} == {0, 1}
        assert json.dumps([o.endpoint for o in proxy.offers])

    run_market(w3, token, accounts, proxy_engine, tmp_path, scenario)
