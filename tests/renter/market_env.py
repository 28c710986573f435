"""Shared set-up of the proxy tests: a real anvil, escrow and metagraph, real miner servers
over the tiny model, the proxy found through the metagraph (fixtures live in conftest.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import openai
from eth_account.signers.local import LocalAccount
from web3 import Web3

from chain.token import SubnetTokenClient
from latent.proxy_harness import (
    MarketContracts,
    MinerSpec,
    ServedMiner,
    build_proxy,
    deploy_market,
    publish,
    register_miners,
    serve_miners,
    serve_proxy,
)
from miner.config import PricingConfig
from miner.engine import InferenceEngine
from renter.config import ChannelConfig, ProxyConfig
from renter.ledger import LedgerStore
from renter.proxy import RenterProxy

ONE = 10**18
CHEAP = PricingConfig(per_prompt_token=10**12, per_completion_token=3 * 10**12)
DEAR = PricingConfig(per_prompt_token=2 * 10**12, per_completion_token=5 * 10**12)
API_KEY = "sk-test-proxy"
RENTER_FUNDS = 100 * ONE


@dataclass
class Env:
    """Everything a scenario needs."""

    contracts: MarketContracts
    renter: LocalAccount
    miners: list[ServedMiner]
    state_dir: Path
    config: ProxyConfig
    http: httpx.AsyncClient
    #: The running proxy and its base URL (set by ``start_proxy``).
    proxy: RenterProxy | None = None
    url: str = ""
    _proxy_stack: contextlib.AsyncExitStack | None = None

    def client(self, **kwargs: Any) -> openai.AsyncOpenAI:
        """The official client, unmodified, pointed at the proxy."""
        return openai.AsyncOpenAI(
            base_url=self.url + "/v1", api_key=API_KEY, max_retries=0, timeout=60, **kwargs
        )

    async def start_proxy(self, **changes: Any) -> RenterProxy:
        """Start a proxy over the state directory (stopping a running one first)."""
        await self.stop_proxy()
        config = replace(self.config, **changes) if changes else self.config
        proxy = build_proxy(config, self.contracts, self.renter, self.http)
        self._proxy_stack = contextlib.AsyncExitStack()
        self.url = await self._proxy_stack.enter_async_context(serve_proxy(proxy))
        self.proxy = proxy
        return proxy

    async def stop_proxy(self) -> None:
        """Stop the running proxy (its lifespan waits for pending books)."""
        if self._proxy_stack is not None:
            await self._proxy_stack.aclose()
            self._proxy_stack = None

    @property
    def store(self) -> LedgerStore:
        return LedgerStore(self.state_dir)


def market_config(state_dir: Path, **changes: Any) -> ProxyConfig:
    base = ProxyConfig(
        state_dir=state_dir,
        port=0,
        api_keys=(API_KEY,),
        channels=ChannelConfig(deposit=ONE, top_up=ONE, per_miner=2),
        recheck_rate=0.0,
        request_timeout_s=20.0,
        busy_wait_s=10.0,
    )
    return replace(base, **changes)


def run_market(
    w3: Web3,
    token: SubnetTokenClient,
    accounts: list[LocalAccount],
    engine: InferenceEngine,
    tmp_path: Path,
    scenario: Callable[[Env], Awaitable[None]],
    *,
    specs: list[MinerSpec] | None = None,
    endpoints: Callable[[list[ServedMiner]], Awaitable[list[str]]] | None = None,
    config_changes: dict[str, Any] | None = None,
) -> Env:
    """Deploy, register and serve the miners, then run ``scenario`` (the proxy is started by
    the scenario through ``env.start_proxy``). ``endpoints`` maps served miners to the URLs
    published on-chain (a fault-injecting relay in front of one, say)."""
    owner, renter = accounts[0], accounts[1]
    contracts = deploy_market(w3, owner, token=token, reward_pool=accounts[9].address)
    specs = specs or [
        MinerSpec(accounts[2], CHEAP),
        MinerSpec(accounts[3], DEAR),
    ]
    register_miners(contracts, owner, accounts[5], [s.hotkey for s in specs])
    token.mint(renter.address, RENTER_FUNDS, sender=owner)
    state_dir = tmp_path / "renter-state"

    async def main() -> Env:
        await engine.start()
        try:
            async with (
                serve_miners(contracts, engine, specs, book_dir=tmp_path / "books") as miners,
                httpx.AsyncClient(limits=httpx.Limits(max_connections=100)) as http,
            ):
                urls = await endpoints(miners) if endpoints else [m.url for m in miners]
                for miner, url in zip(miners, urls, strict=True):
                    await asyncio.to_thread(publish, contracts, miner.spec.hotkey, url)
                env = Env(
                    contracts=contracts,
                    renter=renter,
                    miners=miners,
                    state_dir=state_dir,
                    config=market_config(state_dir, **(config_changes or {})),
                    http=http,
                )
                try:
                    await scenario(env)
                finally:
                    await env.stop_proxy()
                return env
        finally:
            await engine.stop()

    return asyncio.run(main())


async def stream_text(stream: AsyncIterator[Any]) -> tuple[str, list[Any]]:
    """Concatenated text of a chat or completion stream, and its chunks."""
    chunks = [chunk async for chunk in stream]
    text = ""
    for chunk in chunks:
        if not chunk.choices:
            continue
        choice = chunk.choices[0]
        delta = getattr(choice, "delta", None)
        text += (delta.content or "") if delta is not None else (choice.text or "")
    return text, chunks


__all__ = [
    "API_KEY",
    "CHEAP",
    "DEAR",
    "ONE",
    "RENTER_FUNDS",
    "Env",
    "market_config",
    "run_market",
    "stream_text",
]
