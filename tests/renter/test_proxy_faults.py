"""Faults: a miner that dies before answering or mid-stream, a miner with a bad receipt, and
a proxy restarted mid-run. Nothing undelivered is paid, nothing is paid twice, no channel
balance is lost (every channel settles to exactly its receipts and refunds the rest)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import openai
import pytest
from eth_account.signers.local import LocalAccount
from faults import KillableRelay, ReceiptForger
from market_env import API_KEY, CHEAP, DEAR, Env, run_market, stream_text
from web3 import Web3

from chain.funding import EscrowFunder
from chain.node import free_port
from chain.receipts import Receipt
from chain.token import SubnetTokenClient
from latent.processes import RoleProcess, latent_command
from latent.proxy_harness import MinerSpec, ServedMiner
from miner.engine import InferenceEngine
from renter.closing import close_channels

MESSAGES: list[Any] = [{"role": "user", "content": "tell me about latent"}]


def _owed_by_miner(env: Env) -> dict[str, int]:
    owed: dict[str, int] = {}
    for record in env.store.load_channels():
        owed[record.miner] = owed.get(record.miner, 0) + record.owed
    return owed


def _owed_in_memory(proxy: Any) -> dict[str, int]:
    owed: dict[str, int] = {}
    for record in proxy.channels():
        owed[record.miner] = owed.get(record.miner, 0) + record.owed
    return owed


def _check_books_settle_exactly(env: Env) -> None:
    """Receipts == ledgers == what settles on-chain; miners hold no voucher above them."""
    records = env.store.load_channels()
    receipts = [Receipt.from_json(e["receipt"]) for e in env.store.read_receipts()]
    assert sum(r.owed for r in records) == sum(r.price for r in receipts)
    for served in env.miners:
        for voucher in served.book.vouchers():
            record = next(r for r in records if r.channel_id == voucher.channel_id)
            assert voucher.cumulative_amount <= record.owed
    funder = EscrowFunder(env.contracts.escrow, env.contracts.token, env.renter)
    close_channels(env.store, funder)
    for record in records:
        assert env.contracts.escrow.channel(record.channel_id).settled == record.owed


def test_a_miner_dying_before_or_during_an_answer_is_not_paid_and_the_request_moves_on(
    w3: Web3,
    token: SubnetTokenClient,
    accounts: list[LocalAccount],
    fresh_chain: Web3,
    proxy_engine: InferenceEngine,
    tmp_path: Path,
) -> None:
    relays: list[KillableRelay] = []
    cheap, dear = accounts[2].address, accounts[3].address

    async def endpoints(miners: list[ServedMiner]) -> list[str]:
        relay = KillableRelay(miners[0].url)
        relays.append(relay)
        url = await env_stack.enter_async_context(relay.serve())
        return [url, miners[1].url]

    env_stack = contextlib.AsyncExitStack()  # keeps the relay up until the scenario ends

    async def scenario(env: Env) -> None:
        async with env_stack:
            relay = relays[0]
            proxy = await env.start_proxy()
            client = env.client()
            # Healthy first: the cheap miner serves (and now has a channel with a receipt).
            first = await client.completions.create(
                model="tiny", prompt="warm up", max_tokens=6, temperature=0
            )
            assert (first.model_extra or {})["latent"]["receipt"]["miner"] == cheap
            owed_before = _owed_in_memory(proxy)

            # 1. Dies on receipt of the request (plain): retried on the other miner.
            relay.mode = "drop_request"
            retried = await client.completions.create(
                model="tiny", prompt="who serves me?", max_tokens=6, temperature=0
            )
            assert (retried.model_extra or {})["latent"]["receipt"]["miner"] == dear
            assert relay.cuts == 1
            assert proxy.health[cheap].failures == 1

            # 2. Same before the first byte of a stream: retried, the client sees nothing.
            proxy.health.clear()
            stream = await client.chat.completions.create(
                model="tiny", messages=MESSAGES, max_tokens=8, temperature=0, stream=True
            )
            text, chunks = await stream_text(stream)
            assert text and relay.cuts == 2
            finals = [c for c in chunks if "latent" in (c.model_extra or {})]
            assert finals[0].model_extra["latent"]["receipt"]["miner"] == dear  # type: ignore[index]

            # 3. Dies mid-stream after bytes reached the client: an error event ends the
            #    stream, nothing is booked for it.
            proxy.health.clear()
            relay.mode = "cut_stream"
            relay.cut_after_events = 3
            receipts_before = len(proxy.outcomes)
            owed_mid = _owed_in_memory(proxy)
            stream = await client.chat.completions.create(
                model="tiny", messages=MESSAGES, max_tokens=24, temperature=0, stream=True
            )
            with pytest.raises(openai.APIError) as broken:
                await stream_text(stream)
            assert "nothing was charged" in str(broken.value)
            assert relay.cuts == 3
            await env.stop_proxy()  # flush the books
            assert len(proxy.outcomes) == receipts_before
            assert _owed_by_miner(env) == owed_mid == _owed_in_memory(proxy)
            assert owed_mid[cheap] == owed_before[cheap]  # nothing for cases 1-3

            # The miner, alive behind the relay, thinks it delivered tokens on that channel;
            # the proxy does not pay for them: the channel is retired, the request moves on.
            relay.mode = "pass"
            proxy = await env.start_proxy()
            later = await env.client().completions.create(
                model="tiny", prompt="after the cut", max_tokens=4, temperature=0
            )
            assert later.choices[0].text is not None
            await env.stop_proxy()
            retired = [r for r in env.store.load_channels() if r.status == "retired"]
            assert [r.miner for r in retired] == [cheap]
            assert "voucher_short" in retired[0].note
        _check_books_settle_exactly(env)

    run_market(w3, token, accounts, proxy_engine, tmp_path, scenario, endpoints=endpoints)


def test_a_failing_miner_cools_down_and_one_with_a_bad_receipt_is_dropped_unpaid(
    w3: Web3,
    token: SubnetTokenClient,
    accounts: list[LocalAccount],
    fresh_chain: Web3,
    proxy_engine: InferenceEngine,
    tmp_path: Path,
) -> None:
    forgers: list[ReceiptForger] = []

    def wrap(app: Any) -> Any:
        forger = ReceiptForger(app)
        forgers.append(forger)
        return forger

    specs = [MinerSpec(accounts[2], CHEAP, wrap=wrap), MinerSpec(accounts[3], DEAR)]
    cheap, dear = accounts[2].address, accounts[3].address

    async def scenario(env: Env) -> None:
        forger = forgers[0]
        proxy = await env.start_proxy()
        client = env.client()
        good = await client.completions.create(
            model="tiny", prompt="honest first", max_tokens=5, temperature=0
        )
        assert (good.model_extra or {})["latent"]["receipt"]["miner"] == cheap
        owed_cheap = _owed_in_memory(proxy)[cheap]

        # A 5xx: retried on the other miner, the failing one cools down (not dropped).
        forger.fail = True
        answer = await client.completions.create(
            model="tiny", prompt="server error", max_tokens=5, temperature=0
        )
        assert forger.failed == 1
        assert (answer.model_extra or {})["latent"]["receipt"]["miner"] == dear
        assert proxy.health[cheap].cooldown_until > 0 and not proxy.health[cheap].dropped
        forger.fail = False
        proxy.health.clear()

        forger.forge = True
        answer = await client.completions.create(
            model="tiny", prompt="now forged", max_tokens=5, temperature=0
        )
        assert forger.forged == 1
        assert (answer.model_extra or {})["latent"]["receipt"]["miner"] == dear
        assert proxy.health[cheap].dropped
        # a stream too: never sent to the dropped miner again
        stream = await client.chat.completions.create(
            model="tiny", messages=MESSAGES, max_tokens=5, temperature=0, stream=True
        )
        await stream_text(stream)
        assert forger.forged == 1
        await env.stop_proxy()
        assert _owed_by_miner(env)[cheap] == owed_cheap
        retired = [r for r in env.store.load_channels() if r.status == "retired"]
        assert [r.miner for r in retired] == [cheap]
        assert "bad receipt" in retired[0].note
        _check_books_settle_exactly(env)

    run_market(w3, token, accounts, proxy_engine, tmp_path, scenario, specs=specs)


def test_restarting_the_proxy_keeps_every_channel_and_pays_nothing_twice(
    w3: Web3,
    token: SubnetTokenClient,
    accounts: list[LocalAccount],
    fresh_chain: Web3,
    proxy_engine: InferenceEngine,
    tmp_path: Path,
) -> None:
    async def scenario(env: Env) -> None:
        await env.start_proxy()
        for i in range(3):
            await env.client().completions.create(
                model="tiny", prompt=f"before {i}", max_tokens=6, temperature=0
            )
        before = {r.channel_id: r for r in env.store.load_channels()}
        balance = env.contracts.token.balance_of(env.renter.address)

        proxy = await env.start_proxy()  # stops the first one, then starts over the same books
        assert {r.channel_id for r in proxy.channels()} == set(before)
        for i in range(3):
            stream = await env.client().completions.create(
                model="tiny", prompt=f"after {i}", max_tokens=6, temperature=0, stream=True
            )
            await stream_text(stream)
        await env.stop_proxy()
        after = {r.channel_id: r for r in env.store.load_channels()}
        assert set(after) == set(before)  # no channel opened anew, none lost
        assert all(r.status == "open" for r in after.values())  # no voucher was refused
        assert env.contracts.token.balance_of(env.renter.address) == balance  # no new deposit
        for cid, record in after.items():
            assert record.owed >= before[cid].owed
        assert sum(r.requests for r in after.values()) == 6
        _check_books_settle_exactly(env)

    run_market(w3, token, accounts, proxy_engine, tmp_path, scenario)


def test_a_killed_proxy_process_loses_no_receipt_and_pays_nothing_twice(
    w3: Web3,
    token: SubnetTokenClient,
    accounts: list[LocalAccount],
    fresh_chain: Web3,
    proxy_engine: InferenceEngine,
    tmp_path: Path,
) -> None:
    """``latent renter proxy`` as users run it, killed with SIGKILL (no shutdown, no final
    fsync) after serving, then started again over the same books."""
    rpc = w3.provider.endpoint_uri  # type: ignore[attr-defined]

    async def scenario(env: Env) -> None:
        url = f"http://127.0.0.1:{free_port()}"
        proxy = RoleProcess(
            "latent renter proxy",
            latent_command(
                *("renter", "proxy", "--port", url.rsplit(":", 1)[1]),
                *("--rpc-url", rpc, "--dev-account", "1", "--state-dir", str(env.state_dir)),
                *("--escrow", env.contracts.escrow.address),
                *("--token", env.contracts.token.address),
                *("--metagraph", env.contracts.graph.address, "--api-key", API_KEY),
                *("--deposit", "1", "--top-up", "1", "--channels-per-miner", "2"),
                *("--recheck-rate", "0"),
            ),
            tmp_path / "proxy.log",
            ready_url=url + "/health",
        )

        async def start() -> None:
            proxy.start()
            await asyncio.to_thread(proxy.wait_ready, 60.0)

        client = openai.AsyncOpenAI(base_url=url + "/v1", api_key=API_KEY, max_retries=0)
        try:
            await start()
            for i in range(3):
                await client.completions.create(
                    model="tiny", prompt=f"before {i}", max_tokens=6, temperature=0
                )
            assert proxy.proc is not None
            proxy.proc.kill()  # SIGKILL
            proxy.proc.wait()
            assert len(env.store.read_receipts()) == 3  # every answer served was booked
            before = {r.channel_id: r for r in env.store.load_channels()}
            assert sum(r.requests for r in before.values()) == 3
            balance = env.contracts.token.balance_of(env.renter.address)

            await start()
            for i in range(3):
                stream = await client.completions.create(
                    model="tiny", prompt=f"after {i}", max_tokens=6, temperature=0, stream=True
                )
                await stream_text(stream)
        finally:
            await asyncio.to_thread(proxy.stop)  # SIGTERM: a graceful stop
        after = {r.channel_id: r for r in env.store.load_channels()}
        assert set(after) == set(before)  # no channel opened anew, none lost
        assert all(r.status == "open" for r in after.values())  # no voucher was refused
        assert env.contracts.token.balance_of(env.renter.address) == balance  # no new deposit
        assert sum(r.requests for r in after.values()) == 6
        for cid, record in before.items():
            assert after[cid].owed >= record.owed
        _check_books_settle_exactly(env)

    run_market(w3, token, accounts, proxy_engine, tmp_path, scenario)
