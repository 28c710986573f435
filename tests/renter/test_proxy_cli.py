"""The proxy's commands as a user runs them (``python -m latent ...``): ``latent market``
while miners serve, ``latent renter status`` and ``latent renter close`` over the proxy's
state directory; and the pure parts behind them."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path

from eth_account.signers.local import LocalAccount
from market_env import Env, run_market
from web3 import Web3

from chain.node import increase_time, mine
from chain.token import SubnetTokenClient
from latent.proxy_harness import deploy_market
from miner.engine import InferenceEngine
from renter.ledger import ChannelRecord, LedgerStore
from renter.proxy_cli import parse_price, summarise


async def latent(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "latent",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "200"},
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    return process.returncode or 0, out.decode(), err.decode()


def test_market_status_and_close_commands(
    w3: Web3,
    token: SubnetTokenClient,
    accounts: list[LocalAccount],
    fresh_chain: Web3,
    proxy_engine: InferenceEngine,
    tmp_path: Path,
) -> None:
    rpc = w3.provider.endpoint_uri  # type: ignore[attr-defined]
    state = tmp_path / "renter-state"

    async def scenario(env: Env) -> None:
        await env.start_proxy()
        for i in range(2):
            await env.client().completions.create(
                model="tiny", prompt=f"cli {i}", max_tokens=5, temperature=0
            )
        await env.stop_proxy()  # writes stats.json for the market view
        code, out, err = await latent(
            "market",
            "--json",
            "--rpc-url",
            rpc,
            "--metagraph",
            env.contracts.graph.address,
            "--state-dir",
            str(state),
        )
        assert code == 0, err
        rows = json.loads(out)["miners"]
        assert [r["hotkey"] for r in rows] == [accounts[2].address, accounts[3].address]
        cheap = rows[0]
        assert cheap["pricing"] == {"prompt": "0.000001", "completion": "0.000003"}  # wire
        assert (cheap["price_prompt_wei"], cheap["price_completion_wei"]) == (
            str(10**12),
            str(3 * 10**12),
        )
        code, out, err = await latent(
            "market", "--rpc-url", rpc, "--metagraph", env.contracts.graph.address,
            "--state-dir", str(state),
        )  # fmt: skip
        assert code == 0, err
        assert "prompt LAT/1M" in out and "completion LAT/1M" in out
        (line,) = [ln for ln in out.splitlines() if accounts[2].address[:10] in ln]
        cells = re.split(r"\s{2,}", line.strip())  # a pipe gets the plain table
        assert cells[3:5] == ["1", "3"], line  # 1 and 3 LAT per 1M tokens
        assert cheap["model"] == "tiny" and cheap["context_length"] > 0
        assert cheap["tokens_per_s"] > 0 and cheap["latency_s"] > 0  # measured by the proxy
        assert rows[1]["tokens_per_s"] is None  # never used: nothing measured

    env = run_market(w3, token, accounts, proxy_engine, tmp_path, scenario)
    assert env.state_dir == state

    async def after() -> None:
        code, out, err = await latent("renter", "status", "--json", "--state-dir", str(state))
        assert code == 0, err
        status = json.loads(out)
        totals = status["totals"]
        spent = sum(r.owed for r in env.store.load_channels())
        assert totals["spent_wei"] == str(spent) and int(totals["requests"]) == 2
        assert int(totals["refundable_wei"]) == int(totals["deposits_wei"]) - spent
        assert int(totals["cost_per_million_tokens_wei"]) > 0
        assert sum(int(c["owed_wei"]) for c in status["channels"]) == spent
        assert all("owed" not in c and "deposit" not in c for c in status["channels"])
        code, out, err = await latent("renter", "status", "--state-dir", str(state))
        assert code == 0 and "per million tokens" in out, err

        close = (
            "renter",
            "close",
            "--state-dir",
            str(state),
            "--rpc-url",
            rpc,
            "--dev-account",
            "1",
            "--idle-for",
            "0",
        )
        code, out, err = await latent(*close)
        assert code == 0, err
        assert "close requested" in out
        increase_time(w3, env.contracts.escrow.grace_period() + 1)
        mine(w3)
        code, out, err = await latent(*close)
        assert code == 0, err
        assert "withdrawn" in out
        assert all(r.status == "closed" for r in env.store.load_channels())

    asyncio.run(after())


def test_proxy_help_lists_its_flags() -> None:
    async def main() -> None:
        code, out, _ = await latent("renter", "proxy", "--help")
        assert code == 0
        for flag in ("--max-price", "--api-key", "--validator", "--recheck-rate", "--spend-cap"):
            assert flag in out

    asyncio.run(main())


def test_prices_parse_in_tokens_per_million_tokens() -> None:
    assert parse_price("5") == 5 * 10**12  # 5 LAT per 1M tokens = 5e12 base units per token
    assert parse_price("0") == 0


def test_summary_counts_cost_per_million_tokens() -> None:
    record = ChannelRecord(
        channel_id=b"\x01" * 32,
        miner="0x" + "11" * 20,
        endpoint="http://m",
        escrow="0x" + "22" * 20,
        token="0x" + "33" * 20,
        chain_id=1,
        salt=b"\x00" * 32,
        deposit=10**18,
        owed=3 * 10**12,
        requests=1,
        prompt_tokens=2,
        completion_tokens=1,
    )
    totals = summarise([record], [])
    assert totals["cost_per_million_tokens"] == 10**18
    assert totals["refundable"] == 10**18 - 3 * 10**12


def test_bench_proxy_reports_overhead_and_throughput(tmp_path: Path) -> None:
    """``latent bench proxy`` end to end at small sizes (figures not judged here)."""
    from latent.bench_proxy import run_proxy_bench
    from protocol.serving import run_async

    report = run_async(run_proxy_bench(requests=4, concurrency=2, max_tokens=2))
    latency = report["latency_c1"]
    assert latency["direct_p50_ms"] > 0 and latency["proxy_p50_ms"] > 0
    assert latency["in_proxy_p50_ms"] is not None and latency["in_proxy_p50_ms"] >= 0
    throughput = report["throughput_c2"]
    assert throughput["direct_rps"] > 0 and throughput["proxy_rps"] > 0
    for cpu in ("miner_cpu_ms_per_request_direct", "miner_cpu_ms_per_request_proxy"):
        assert throughput[cpu] > 0  # the miner runs in its own process (Linux /proc)
    assert throughput["proxy_cpu_ms_per_request"] > 0
    assert int(report["proxy_spent_base_units"]) > 0
    assert set(report["targets"]) >= {"added_p50_met", "throughput_met"}


def test_one_renter_command_at_a_time_spends_from_the_books(
    w3: Web3,
    token: SubnetTokenClient,
    accounts: list[LocalAccount],
    fresh_chain: Web3,
    tmp_path: Path,
) -> None:
    """A second proxy (or ``renter close``) on books a running one holds is refused before
    it signs or sends anything: two copies would sign vouchers from diverging ledgers."""
    rpc = w3.provider.endpoint_uri  # type: ignore[attr-defined]
    market = deploy_market(w3, accounts[0], token=token)
    chain = ("--rpc-url", rpc, "--dev-account", "1", "--state-dir", str(tmp_path))
    contracts = (
        *("--escrow", market.escrow.address, "--token", market.token.address),
        *("--metagraph", market.graph.address),
    )

    async def main() -> None:
        with LedgerStore(tmp_path).lock():
            for args in (
                ("renter", "proxy", "--port", "0", *chain, *contracts),
                ("renter", "close", *chain),
            ):
                code, out, err = await latent(*args)
                assert code == 1, (args, out, err)
                assert err.strip().splitlines() == [
                    f"error: another latent renter proxy, ask or close is using the books in "
                    f"{tmp_path}; stop it or pass another --state-dir"
                ]
        assert not list(tmp_path.glob("channels/*")) and not (tmp_path / "receipts.jsonl").exists()

    asyncio.run(main())
