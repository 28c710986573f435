"""The proxy's limits and side duties on anvil with real miners: re-checks forwarded to
validators, spending caps, every miner busy (429 + Retry-After), no miner (503), and an
empty renter wallet (402 with what to do)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import openai
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from fastapi import FastAPI, Request
from faults import ReceiptForger
from market_env import CHEAP, DEAR, Env, run_market, stream_text
from web3 import Web3

from chain.receipts import verify_receipt
from chain.token import SubnetTokenClient, format_token_amount
from latent.proxy_harness import MinerSpec
from miner.engine import InferenceEngine
from protocol.recheck import RecheckSubmission
from protocol.serving import serve_in_loop
from renter.config import ChannelConfig, SpendConfig
from renter.selection import MinerHealth

#: A renter holding no tokens (dev accounts may hold some from other session fixtures).
EMPTY_WALLET = Account.from_key("0x" + "7e" * 32)


@contextlib.asynccontextmanager
async def fake_validator(received: list[Any]) -> AsyncIterator[str]:
    app = FastAPI()

    @app.post("/v1/recheck")
    async def recheck(request: Request) -> dict[str, str]:
        received.append(json.loads(await request.body()))
        return {"status": "queued"}

    async with serve_in_loop(app) as url:
        yield url


def test_answers_are_forwarded_to_validators_with_their_receipts_and_seed(
    w3: Web3,
    token: SubnetTokenClient,
    accounts: list[LocalAccount],
    fresh_chain: Web3,
    proxy_engine: InferenceEngine,
    tmp_path: Path,
) -> None:
    received: list[Any] = []

    async def scenario(env: Env) -> None:
        async with fake_validator(received) as validator:
            proxy = await env.start_proxy(recheck_rate=1.0, validators=(validator, validator + "/"))
            client = env.client()
            await client.chat.completions.create(
                model="tiny", messages=[{"role": "user", "content": "check me"}], max_tokens=6
            )
            stream = await client.completions.create(
                model="tiny", prompt="check me too", max_tokens=6, temperature=0.7, stream=True
            )
            await stream_text(stream)
            await env.stop_proxy()  # waits for the fire-and-forget submissions
            assert proxy.rechecks_sent == 4

    run_market(w3, token, accounts, proxy_engine, tmp_path, scenario)
    assert len(received) == 4
    for data in received:
        submission = RecheckSubmission.from_json(data)
        body = json.loads(submission.request_body)
        assert isinstance(body["seed"], int)  # the proxy seeded the sampled request
        verify_receipt(
            submission.latent.receipt,
            miner=submission.miner,
            chain_id=int(w3.eth.chain_id),
            request_hash=keccak(submission.request_body),
        )
    assert {d["kind"] for d in received} == {"chat", "text"}


def test_caps_busy_miners_no_miners_and_an_empty_wallet_get_openai_errors(
    w3: Web3,
    token: SubnetTokenClient,
    accounts: list[LocalAccount],
    fresh_chain: Web3,
    proxy_engine: InferenceEngine,
    tmp_path: Path,
) -> None:
    slow: list[ReceiptForger] = []

    def wrap(app: Any) -> Any:
        slow.append(ReceiptForger(app))
        return slow[-1]

    async def scenario(env: Env) -> None:
        # Every miner busy: one channel each, slow answers hold them, a third request waits
        # busy_wait_s and gets 429 with Retry-After.
        proxy = await env.start_proxy(
            busy_wait_s=0.2, channels=ChannelConfig(deposit=10**18, per_miner=1)
        )
        client = env.client()
        for miner in slow:
            miner.delay_s = 3.0
        holders = [
            asyncio.create_task(
                client.completions.create(model="tiny", prompt="hold", max_tokens=2)
            )
            for _ in range(2)
        ]
        while sum(1 for c in proxy._channels.values() if c.busy) < 2:
            await asyncio.sleep(0.01)
        with pytest.raises(openai.RateLimitError) as busy:
            await client.completions.create(model="tiny", prompt="x", max_tokens=2)
        assert busy.value.code == "miners_busy"
        assert busy.value.response.headers["retry-after"] == "1"
        await asyncio.gather(*holders)
        for miner in slow:
            miner.delay_s = 0.0

        # No miner available for a known model: 503.
        for hotkey in {o.hotkey for o in proxy.offers}:
            proxy.health[hotkey] = MinerHealth(cooldown_until=proxy._clock() + 60)
        with pytest.raises(openai.InternalServerError) as none:
            await client.completions.create(model="tiny", prompt="x", max_tokens=2)
        assert none.value.status_code == 503
        proxy.health.clear()

        # Hourly cap: what was spent so far leaves no room for another request.
        spent = proxy.spend.total
        proxy = await env.start_proxy(spend=SpendConfig(per_hour=spent + 1))
        with pytest.raises(openai.RateLimitError) as capped:
            await env.client().completions.create(model="tiny", prompt="x", max_tokens=2)
        assert capped.value.code == "spend_cap_hourly"
        assert f"cap of {format_token_amount(spent + 1)} reached" in capped.value.message
        assert int(capped.value.response.headers["retry-after"]) > 0
        proxy = await env.start_proxy(spend=SpendConfig(total=spent + 1))
        with pytest.raises(openai.RateLimitError) as total:
            await env.client().completions.create(model="tiny", prompt="x", max_tokens=2)
        assert total.value.code == "spend_cap_total"
        assert f"total cap {format_token_amount(spent + 1)} spent" in total.value.message

        # An empty wallet: 402, saying whom to fund. (Fresh books: a new channel is needed.)
        env.renter = EMPTY_WALLET
        env.state_dir = env.state_dir.parent / "other-renter"
        env.config = replace(env.config, state_dir=env.state_dir)
        await env.start_proxy()
        with pytest.raises(openai.APIStatusError) as broke:
            await env.client().completions.create(model="tiny", prompt="x", max_tokens=2)
        assert broke.value.status_code == 402
        assert EMPTY_WALLET.address in broke.value.message
        assert "send tokens" in broke.value.message
        assert "holds 0 LAT" in broke.value.message  # in tokens, not base units

    specs = [MinerSpec(accounts[2], CHEAP, wrap=wrap), MinerSpec(accounts[3], DEAR, wrap=wrap)]
    run_market(w3, token, accounts, proxy_engine, tmp_path, scenario, specs=specs)


def test_small_deposits_are_topped_up_on_chain_as_requests_need(
    w3: Web3,
    token: SubnetTokenClient,
    accounts: list[LocalAccount],
    fresh_chain: Web3,
    proxy_engine: InferenceEngine,
    tmp_path: Path,
) -> None:
    async def scenario(env: Env) -> None:
        small = 2 * 10**14  # about two requests' worst case at the cheap miner
        await env.start_proxy(channels=ChannelConfig(deposit=small, top_up=small, per_miner=1))
        for i in range(6):
            await env.client().completions.create(
                model="tiny", prompt=f"top up {i}", max_tokens=8, temperature=0
            )
        await env.stop_proxy()
        (record,) = env.store.load_channels()
        onchain = env.contracts.escrow.channel(record.channel_id)
        assert onchain.deposit == record.deposit > small  # topped up, books agree
        assert record.requests == 6 and record.owed <= record.deposit

    run_market(w3, token, accounts, proxy_engine, tmp_path, scenario)
