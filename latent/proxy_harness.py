"""A paid market on one machine: escrow + metagraph on a chain, real miner servers over one
engine, and a renter proxy in front of them. ``latent bench proxy`` and the proxy tests use
it (``latent`` may import every role; the roles do not import each other).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from eth_account.signers.local import LocalAccount
from web3 import Web3

from chain.client import deploy_contract
from chain.escrow import EscrowClient
from chain.funding import EscrowFunder
from chain.metagraph import MetagraphClient
from chain.token import SubnetTokenClient
from chain.vouchers import VoucherBook
from miner.config import MinerConfig, PaymentConfig, PricingConfig, ServerConfig
from miner.payment import EscrowChannelReader, PaymentGate
from miner.server import Engine, create_app
from protocol.serving import serve_in_loop
from renter.app import create_proxy_app
from renter.config import ProxyConfig
from renter.ledger import LedgerStore
from renter.market import MetagraphMinerSource
from renter.proxy import RenterProxy

#: ASGI app wrapper (tests wrap a miner to tamper with its answers).
AppWrapper = Callable[[Any], Any]


@dataclass(frozen=True)
class MarketContracts:
    """The contracts a paid market needs."""

    token: SubnetTokenClient
    escrow: EscrowClient
    graph: MetagraphClient

    @property
    def w3(self) -> Web3:
        return self.escrow.w3


def deploy_market(
    w3: Web3,
    owner: LocalAccount,
    *,
    token: SubnetTokenClient | None = None,
    reward_pool: str | None = None,
) -> MarketContracts:
    """Deploy (or reuse ``token``) SubnetToken, PaymentEscrow and Metagraph; ``owner`` mints."""
    if token is None:
        contract, _ = deploy_contract(w3, "SubnetToken", owner.address, owner.address, sender=owner)
        token = SubnetTokenClient(w3, contract.address)
    escrow, _ = EscrowClient.deploy(w3, sender=owner, reward_pool=reward_pool or owner.address)
    graph_contract, _ = deploy_contract(w3, "Metagraph", token.address, owner.address, sender=owner)
    return MarketContracts(token, escrow, MetagraphClient(w3, graph_contract.address))


@dataclass(frozen=True)
class MinerSpec:
    """One miner of the market."""

    hotkey: LocalAccount
    pricing: PricingConfig
    model_id: str = "tiny"
    #: Wraps the miner's ASGI app (fault injection in tests).
    wrap: AppWrapper | None = None


@dataclass
class ServedMiner:
    spec: MinerSpec
    url: str
    book: VoucherBook


@dataclass
class Market:
    contracts: MarketContracts
    miners: list[ServedMiner] = field(default_factory=list)


def register_miners(
    contracts: MarketContracts,
    owner: LocalAccount,
    coldkey: LocalAccount,
    hotkeys: list[LocalAccount],
) -> None:
    """Register each hotkey (coldkey pays the burn; ``owner`` mints it the tokens; each
    hotkey signs its consent)."""
    contracts.token.mint(coldkey.address, 1000 * 10**18, sender=owner)
    for hotkey in hotkeys:
        if contracts.graph.uid_of(hotkey.address) is None:
            contracts.graph.register(coldkey, hotkey, "")


@contextlib.asynccontextmanager
async def serve_miners(
    contracts: MarketContracts,
    engine: Engine,
    specs: list[MinerSpec],
    *,
    book_dir: Path,
) -> AsyncIterator[list[ServedMiner]]:
    """Serve every spec on a free port over one (started) engine; paid access against the
    on-chain escrow. Endpoints are not published: call :func:`publish`."""
    chain_id = int(contracts.w3.eth.chain_id)
    served: list[ServedMiner] = []
    async with contextlib.AsyncExitStack() as stack:
        for spec in specs:
            payment = PaymentConfig(
                escrow_address=contracts.escrow.address,
                token_address=contracts.token.address,
                chain_id=chain_id,
                channel_cache_ttl_s=2.0,
            )
            config = MinerConfig(
                model_path="in-process",
                server=ServerConfig(model_id=spec.model_id),
                pricing=spec.pricing,
                payment=payment,
            )
            book = VoucherBook(book_dir / f"{spec.hotkey.address}.json")
            gate = PaymentGate(
                miner=spec.hotkey.address,
                reader=EscrowChannelReader(EscrowClient(contracts.w3, contracts.escrow.address)),
                payment=payment,
                pricing=spec.pricing,
                store=book,
            )
            app: Any = create_app(
                config, engine, hotkey=spec.hotkey, gate=gate, manage_engine=False
            )
            if spec.wrap is not None:
                app = spec.wrap(app)
            url = await stack.enter_async_context(serve_in_loop(app))
            served.append(ServedMiner(spec, url, book))
        yield served


def publish(contracts: MarketContracts, hotkey: LocalAccount, url: str) -> None:
    """Publish ``url`` as ``hotkey``'s endpoint on the Metagraph."""
    contracts.graph.set_endpoint(hotkey, url)


def build_proxy(
    config: ProxyConfig,
    contracts: MarketContracts,
    renter: LocalAccount,
    http: httpx.AsyncClient,
) -> RenterProxy:
    """A proxy over the metagraph's miners, paying from ``renter``."""
    funder = EscrowFunder(
        contracts.escrow, contracts.token, renter, use_permit=config.channels.use_permit
    )
    return RenterProxy(
        config,
        source=MetagraphMinerSource(contracts.graph, http),
        funder=funder,
        http=http,
        store=LedgerStore(config.state_dir),
    )


@contextlib.asynccontextmanager
async def serve_proxy(proxy: RenterProxy) -> AsyncIterator[str]:
    """Start ``proxy`` and serve it on a free port; yields the base URL (without /v1)."""
    app = create_proxy_app(proxy)
    async with serve_in_loop(app) as url:
        yield url


__all__ = [
    "MarketContracts",
    "MinerSpec",
    "ServedMiner",
    "build_proxy",
    "deploy_market",
    "publish",
    "register_miners",
    "serve_miners",
    "serve_proxy",
]
