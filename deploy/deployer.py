"""Idempotent deployment of the deployment plan to a network, recorded in a manifest.

A contract is *unchanged* when the manifest has it, the chain still has code at its
address, and the keccak of (creation bytecode + encoded constructor arguments) equals the
recorded ``initCodeHash``; unchanged contracts are reused, everything else is deployed.
Because constructor arguments include earlier addresses, redeploying a dependency also
redeploys what depends on it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from web3 import Web3

from chain.client import Contract, deploy_contract
from chain.compile import Artifact, all_artifacts, compiler_version
from chain.errors import ConfigError, LatentError, TransactionFailed
from chain.manifest import (
    DEPLOYMENTS_DIR,
    DeployedContract,
    Manifest,
    load_manifest,
    save_manifest,
)
from chain.networks import Network


@dataclass
class DeployContext:
    """What constructor-argument and configuration functions may look at."""

    w3: Web3
    network: Network
    deployer: str
    addresses: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ContractSpec:
    """One step of the plan: an artifact and how to compute its constructor arguments."""

    name: str
    constructor_args: Callable[[DeployContext], tuple[Any, ...]]
    configure: Callable[[DeployContext, Contract, LocalAccount], None] | None = None
    """Idempotent wiring after deployment (reads state first, sends only what's missing)."""


def _token_args(ctx: DeployContext) -> tuple[Any, ...]:
    # Owner and minter start as the deployer; the emission logic takes the minter role
    # once it is deployed.
    return (ctx.deployer, ctx.deployer)


def _metagraph_args(ctx: DeployContext) -> tuple[Any, ...]:
    return (ctx.addresses["SubnetToken"], ctx.deployer)


def _configure_metagraph(ctx: DeployContext, contract: Contract, owner: LocalAccount) -> None:
    """Set the network's hyperparameters; only those that differ are sent."""
    from chain.metagraph import HyperParam, MetagraphClient

    client = MetagraphClient(ctx.w3, contract.address)
    current = client.hyperparameters()
    for name, value in ctx.network.metagraph.items():
        try:
            param = HyperParam[name.upper()]
        except KeyError:
            raise ConfigError(
                f"networks.toml: [{ctx.network.name}.metagraph] has unknown hyperparameter {name!r}"
            ) from None
        if getattr(current, name) != value:
            client.set_hyperparameter(owner, param, value)


def _escrow_args(ctx: DeployContext) -> tuple[Any, ...]:
    # Fees accrue to the subnet owner until the emission contract (the reward pool that
    # adds them to the validators' share) is deployed; the owner can repoint it.
    return (
        ctx.deployer,
        ctx.deployer,
        ctx.network.escrow_fee_bps,
        ctx.network.escrow_grace_period_s,
    )


#: Base emission per block of the on-chain epoch (1 token, like subtensor's 1 TAO per block),
#: halved each time the remaining supply halves.
EMISSION_PER_BLOCK = 10**18


def _yuma_args(ctx: DeployContext) -> tuple[Any, ...]:
    return (ctx.addresses["Metagraph"], ctx.addresses["SubnetToken"], EMISSION_PER_BLOCK)


#: Tokens each anvil dev account gets on a local chain (to burn, stake and pay with).
DEV_ACCOUNT_TOKENS = 10_000 * 10**18


def _fund_dev_accounts(w3: Web3, token_address: str, minter: LocalAccount) -> None:
    """Top dev accounts 1-9 up to :data:`DEV_ACCOUNT_TOKENS` (local chains only)."""
    from chain.keys import dev_accounts
    from chain.token import SubnetTokenClient

    token = SubnetTokenClient(w3, token_address)
    for account in dev_accounts(10)[1:]:
        missing = DEV_ACCOUNT_TOKENS - token.balance_of(account.address)
        if missing > 0:
            token.mint(account.address, missing, sender=minter)


class EpochSwitchPending(LatentError):
    """A new epoch contract is proposed; the time-locked switch completes later."""


def _switch_epoch_contract(
    ctx: DeployContext, metagraph: Contract, epoch: str, owner: LocalAccount
) -> None:
    """Name ``epoch`` the metagraph's epoch contract. The first one takes effect at once; a
    replacement is time-locked (``EPOCH_SWITCH_DELAY`` blocks): on a dev chain the blocks are
    mined here, elsewhere re-running the deploy after the delay completes it."""
    pending, ready = metagraph.call("pendingEpochContract")
    if to_checksum_address(pending) != epoch or int(ready) == 0:
        metagraph.transact("setEpochContract", epoch, sender=owner)
        if to_checksum_address(metagraph.call("epochContract")) == epoch:
            return
        pending, ready = metagraph.call("pendingEpochContract")
    wait = int(ready) - int(ctx.w3.eth.block_number)
    if wait > 0:
        if not ctx.network.dev_accounts:
            raise EpochSwitchPending(
                f"the new YumaConsensus {epoch} is proposed; the switch is time-locked until "
                f"block {int(ready)} (~{wait} blocks): run the same `latent deploy` again then"
            )
        from chain.node import mine

        mine(ctx.w3, wait)
    metagraph.transact("setEpochContract", epoch, sender=owner)


def _configure_yuma(ctx: DeployContext, contract: Contract, owner: LocalAccount) -> None:
    """Make the epoch contract the metagraph's epoch, the token's minter and the escrow's
    reward pool; each only when not already so."""
    w3 = ctx.w3
    token = Contract(w3, "SubnetToken", ctx.addresses["SubnetToken"])
    metagraph = Contract(w3, "Metagraph", ctx.addresses["Metagraph"])
    escrow = Contract(w3, "PaymentEscrow", ctx.addresses["PaymentEscrow"])
    if to_checksum_address(metagraph.call("epochContract")) != contract.address:
        _switch_epoch_contract(ctx, metagraph, contract.address, owner)
    if to_checksum_address(token.call("minter")) != contract.address:
        if ctx.network.dev_accounts:
            # The last mint the deployer can make: dev accounts get their tokens now.
            _fund_dev_accounts(w3, token.address, owner)
        token.transact("setMinter", contract.address, sender=owner)
    if to_checksum_address(escrow.call("rewardPool")) != contract.address:
        escrow.transact("setRewardPool", contract.address, sender=owner)


#: The contracts Latent deploys, in dependency order.
PLAN: tuple[ContractSpec, ...] = (
    ContractSpec("SubnetToken", _token_args),
    ContractSpec("Metagraph", _metagraph_args, configure=_configure_metagraph),
    ContractSpec("PaymentEscrow", _escrow_args),
    ContractSpec("YumaConsensus", _yuma_args, configure=_configure_yuma),
)


@dataclass(frozen=True)
class DeployStep:
    """What happened to one contract in a deploy run."""

    name: str
    address: str
    action: str  # "deployed" | "unchanged" | "estimated"
    gas: int


def _init_code(w3: Web3, art: Artifact, args: tuple[Any, ...]) -> bytes:
    factory = w3.eth.contract(abi=art.abi, bytecode=art.bytecode)
    return bytes.fromhex(factory.constructor(*args).data_in_transaction[2:])


def _is_unchanged(w3: Web3, recorded: DeployedContract | None, init_hash: str) -> bool:
    if recorded is None or recorded.init_code_hash != init_hash:
        return False
    return len(w3.eth.get_code(to_checksum_address(recorded.address))) > 0


def _json_arg(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, (list, tuple)):
        return [_json_arg(v) for v in value]
    return value


def deploy_plan(
    w3: Web3,
    network: Network,
    deployer: LocalAccount,
    *,
    plan: tuple[ContractSpec, ...] = PLAN,
    manifest_dir: Path = DEPLOYMENTS_DIR,
) -> tuple[Manifest, list[DeployStep]]:
    """Deploy what changed, reuse the rest, save the manifest; returns it and the steps."""
    arts = all_artifacts()
    manifest = load_manifest(network.name, network.chain_id, manifest_dir)
    manifest.compiler_version = compiler_version()
    manifest.deployer = deployer.address
    ctx = DeployContext(w3, network, deployer.address)
    steps: list[DeployStep] = []
    for spec in plan:
        art = _artifact(arts, spec.name)
        args = spec.constructor_args(ctx)
        init_hash = "0x" + keccak(_init_code(w3, art, args)).hex()
        recorded = manifest.contracts.get(spec.name)
        if recorded is not None and _is_unchanged(w3, recorded, init_hash):
            contract = Contract(w3, art, recorded.address)
            steps.append(DeployStep(spec.name, recorded.address, "unchanged", 0))
        else:
            contract, receipt = deploy_contract(w3, art, *args, sender=deployer)
            manifest.contracts[spec.name] = DeployedContract(
                address=contract.address,
                tx_hash="0x" + bytes(receipt["transactionHash"]).hex(),
                block=int(receipt["blockNumber"]),
                gas_used=int(receipt["gasUsed"]),
                source_path=art.source_path,
                source_hash=art.source_hash,
                init_code_hash=init_hash,
                constructor_args=[_json_arg(a) for a in args],
            )
            # Save after every deployment so an interrupted run loses nothing.
            save_manifest(manifest, manifest_dir)
            steps.append(
                DeployStep(spec.name, contract.address, "deployed", int(receipt["gasUsed"]))
            )
        ctx.addresses[spec.name] = contract.address
        if spec.configure is not None:
            spec.configure(ctx, contract, deployer)
    save_manifest(manifest, manifest_dir)
    return manifest, steps


def estimate_plan(
    w3: Web3, network: Network, deployer_address: str, *, plan: tuple[ContractSpec, ...] = PLAN
) -> list[DeployStep]:
    """Dry run: gas each contract's deployment would take; nothing is signed or sent.

    Later contracts are estimated against the addresses earlier ones would get (the
    deployer's next nonces), so constructor checks see realistic arguments.
    """
    from eth_utils import to_bytes
    from rlp import encode as rlp_encode

    arts = all_artifacts()
    deployer_address = to_checksum_address(deployer_address)
    ctx = DeployContext(w3, network, deployer_address)
    nonce = int(w3.eth.get_transaction_count(deployer_address))
    steps: list[DeployStep] = []
    for spec in plan:
        art = _artifact(arts, spec.name)
        args = spec.constructor_args(ctx)
        try:
            gas = w3.eth.estimate_gas({"from": deployer_address, "data": _init_code(w3, art, args)})
        except Exception as exc:  # noqa: BLE001 - node errors vary; report, don't crash
            raise TransactionFailed(f"estimating {spec.name} failed: {exc}") from None
        predicted = to_checksum_address(
            keccak(rlp_encode([to_bytes(hexstr=deployer_address), nonce]))[12:]
        )
        ctx.addresses[spec.name] = predicted
        steps.append(DeployStep(spec.name, predicted, "estimated", int(gas)))
        nonce += 1
    return steps


def _artifact(arts: dict[str, Artifact], name: str) -> Artifact:
    if name not in arts:
        raise ConfigError(f"the deployment plan names {name!r}, but no such contract compiled")
    return arts[name]
