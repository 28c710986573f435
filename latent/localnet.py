"""``latent localnet``: the whole subnet on one machine, in one command.

What it does, in order:

1. locks the state directory (a second localnet on it is refused), checks the ports;
2. starts anvil (1 s blocks), deploys the contracts (localnet hyperparameters from
   ``deploy/networks.toml``, the tempo from ``--tempo``), funds the dev accounts;
3. registers the neurons with anvil's dev accounts (:data:`ROLES`): miners 1-4 (coldkey =
   hotkey), validators 5-6 with stake, their payers 7-8 (the accounts that pay miners, so
   checks look like renter traffic), the renter 9;
4. builds the tiny model if missing (offline, deterministic);
5. starts every role as an ordinary command — ``latent miner run`` (one of them with
   ``--cheat KIND``, each at its own price), ``latent validator run``, ``latent renter proxy``
   — each with its log file under the state directory; the README shows the same commands
   for separate machines;
6. sends paid traffic through the proxy with the official OpenAI client, serves the
   dashboard, shows live progress, prints the metagraph table after every epoch;
7. with ``--epochs N`` exits after N epochs with a summary (``--json``: machine-readable);
   Ctrl-C stops every process it started.

Validators run the Yuma epoch when it is due (their keeper duty); the localnet runs it
itself only when it starts no validator.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from eth_account.signers.local import LocalAccount
from rich.console import Console
from rich.live import Live
from rich.table import Table
from web3 import Web3

from chain.cli_output import cli_console, print_table
from chain.client import Contract, connect
from chain.epoch import EpochClient, Phase
from chain.errors import ConfigError, LatentError
from chain.escrow import EscrowClient
from chain.keys import dev_accounts
from chain.manifest import DEPLOYMENTS_DIR, Manifest
from chain.metagraph import HyperParam, Metagraph, MetagraphClient
from chain.networks import get_network
from chain.node import AnvilNode, find_anvil, free_port, port_is_free
from chain.paths import MODELS_DIR
from chain.token import format_price, format_tokens
from deploy.deployer import deploy_plan
from latent.dashboard.model import MinerQuality, miner_quality
from latent.dashboard.sources import fetch_validator_reports
from latent.processes import (
    ManifestDirLock,
    RoleProcess,
    StateDirLock,
    Supervisor,
    latent_command,
    wait_all_ready,
)
from renter.ledger import LedgerStore

#: The default RPC port: other commands find this localnet without any flag.
DEFAULT_PORT = 8545
#: Tokens each validator stakes to itself (permits go to the top stakes).
VALIDATOR_STAKE = 1_000 * 10**18
#: Base units per completion token for miner i (prompt tokens cost a third); miners differ
#: so the renter proxy's price policy has something to choose.
MINER_PRICES = (3_000_000_000_000, 2_000_000_000_000, 4_000_000_000_000, 2_500_000_000_000)


@dataclass(frozen=True)
class LocalnetConfig:
    """Settings of a local subnet (``latent localnet`` flags)."""

    port: int = DEFAULT_PORT
    """RPC port of the local anvil node."""
    block_time: float = 1.0
    """Seconds per block."""
    state_dir: Path | None = None
    """Keep chain and neuron state here across restarts (None: a fresh temporary one)."""
    once: bool = False
    """Exit after deploying and registering (scripts and tests) instead of running roles."""
    epochs: int | None = None
    """Exit after this many completed epochs with a summary (None: until Ctrl-C)."""
    miners: int = 4
    """Miners to start (the last one cheats unless ``cheat`` is ``none``)."""
    validators: int = 2
    """Validators to start."""
    cheat: str = "other-weights"
    """What the cheating miner does (a ``latent bench gauntlet`` kind, or ``none``)."""
    tempo: int = 20
    """Blocks per epoch."""
    dashboard_port: int = 8080
    """Port of the dashboard (0: any free port)."""
    renter: bool = True
    """Start the renter proxy and send paid traffic through it."""
    json_out: bool = False
    """Print the summary as JSON (and no live table)."""
    model_dir: Path = MODELS_DIR / "tiny"
    """The subnet's model (built with ``latent model tiny`` when missing)."""


@dataclass(frozen=True)
class Role:
    """A dev account's job on the localnet."""

    name: str
    account: int


def plan_roles(miners: int, validators: int) -> list[Role]:
    """Dev accounts by role: 0 owner, then miners, validators, their payers, the renter."""
    if miners < 1 or validators < 0:
        raise ConfigError("a localnet needs at least one miner and zero or more validators")
    needed = 1 + miners + 2 * validators + 1
    if needed > 10:
        raise ConfigError(
            f"{miners} miners and {validators} validators need {needed} dev accounts; "
            "anvil has 10 (e.g. at most 4 miners with 2 validators)"
        )
    roles = [Role("owner", 0)]
    roles += [Role(f"miner-{i + 1}", 1 + i) for i in range(miners)]
    roles += [Role(f"validator-{i + 1}", 1 + miners + i) for i in range(validators)]
    roles += [Role(f"payer-{i + 1}", 1 + miners + validators + i) for i in range(validators)]
    roles.append(Role("renter", 1 + miners + 2 * validators))
    return roles


@dataclass
class Neuron:
    """A started role process and what the localnet knows of it."""

    role: str
    account: LocalAccount
    account_index: int
    process: RoleProcess | None = None
    url: str = ""
    cheat: str = ""
    #: The role's own state directory (the renter proxy's books), when it has one.
    state: Path | None = None


@dataclass
class Progress:
    """What the live view and the summary report."""

    started: float = field(default_factory=time.monotonic)
    block: int = 0
    epochs: int = 0
    epoch_blocks: list[int] = field(default_factory=list)
    requests_ok: int = 0
    requests_failed: int = 0
    last_error: str = ""
    first_epoch_s: float | None = None
    cheater_zero_s: float | None = None


def check_toolchain() -> None:
    """A clear error when the npm toolchain (anvil) is missing."""
    try:
        find_anvil()
    except LatentError as exc:
        raise ConfigError(
            f"{exc} (README command 1 installs it: scripts/latent localnet)"
        ) from None


def _register(graph: MetagraphClient, account: LocalAccount, endpoint: str) -> None:
    """Register ``account`` as its own coldkey and hotkey (idempotent across restarts)."""
    if graph.uid_of(account.address) is not None:
        if endpoint and graph.snapshot().by_hotkey(account.address) is not None:
            graph.set_endpoint(account, endpoint)
        return
    graph.register(account, account.address, endpoint)


def setup_chain(
    w3: Web3,
    config: LocalnetConfig,
    manifest_dir: Path,
    neurons: list[Neuron],
    console: Console,
) -> Manifest:
    """Deploy, set the tempo, register every miner and validator, stake the validators."""
    net = get_network("localnet", rpc_url=w3.provider.endpoint_uri)  # type: ignore[attr-defined]
    owner = dev_accounts(1)[0]
    manifest, steps = deploy_plan(w3, net, owner, manifest_dir=manifest_dir)
    graph = MetagraphClient(w3, manifest.address("Metagraph"))
    if graph.hyperparameters().tempo != config.tempo:
        graph.set_hyperparameter(owner, HyperParam.TEMPO, config.tempo)
    for neuron in neurons:
        if neuron.role.startswith(("miner", "validator")):
            _register(graph, neuron.account, neuron.url if neuron.role.startswith("miner") else "")
        if neuron.role.startswith("validator"):
            have = graph.stake_of(neuron.account.address, neuron.account.address)
            if have < VALIDATOR_STAKE:
                graph.add_stake(neuron.account, neuron.account.address, VALIDATOR_STAKE - have)
    deployed = sum(1 for s in steps if s.action == "deployed")
    if not config.json_out:
        console.print(
            f"contracts: {deployed} deployed, {len(steps) - deployed} reused; "
            f"{sum(1 for n in neurons if n.role != 'renter')} neurons registered"
        )
    return manifest


def _ensure_model(model_dir: Path, console: Console, quiet: bool) -> None:
    if (model_dir / "config.json").is_file():
        return
    from miner.tiny_model import build_tiny_model

    if not quiet:
        console.print(f"building the tiny model in {model_dir} (offline, deterministic)")
    build_tiny_model(model_dir)


def _role_commands(
    config: LocalnetConfig,
    neurons: list[Neuron],
    rpc_url: str,
    state_dir: Path,
    validator_urls: list[str],
) -> list[RoleProcess]:
    """The ``latent ...`` command of every role (what a user runs on separate machines)."""
    model = str(config.model_dir)
    processes = []
    miners = [n for n in neurons if n.role.startswith("miner")]
    validators = [n for n in neurons if n.role.startswith("validator")]
    payers = [n for n in neurons if n.role.startswith("payer")]
    for i, miner in enumerate(miners):
        port = int(miner.url.rsplit(":", 1)[1])
        price = MINER_PRICES[i % len(MINER_PRICES)]
        argv = latent_command(
            "miner", "run", "--model", model, "--model-id", "tiny",
            "--dev-account", str(miner.account_index), "--port", str(port),
            "--rpc-url", rpc_url, "--price-completion", format_price(price),
            "--price-prompt", format_price(price // 3),
            "--voucher-book", str(state_dir / miner.role / "vouchers.json"),
            "--settle-interval", "10", "--min-settle", format_tokens(1),
        )  # fmt: skip
        if miner.cheat:
            argv += ["--cheat", miner.cheat]
        processes.append(
            RoleProcess(
                miner.role, argv, state_dir / "logs" / f"{miner.role}.log", miner.url + "/health"
            )
        )
    for validator, payer, url in zip(validators, payers, validator_urls, strict=True):
        vport = url.rsplit(":", 1)[1]
        argv = latent_command(
            "validator", "run", "--model", model, "--model-id", "tiny",
            "--dev-account", str(validator.account_index),
            "--payer-dev-account", str(payer.account_index),
            "--rpc-url", rpc_url, "--port", vport,
            "--state", str(state_dir / validator.role / "state.json"),
            "--round-interval", "4", "--timeout", "30", "--deposit", "5",
        )  # fmt: skip
        processes.append(
            RoleProcess(
                validator.role, argv, state_dir / "logs" / f"{validator.role}.log", url + "/health"
            )
        )
    return processes


def _proxy_command(
    renter: Neuron, rpc_url: str, state_dir: Path, validator_urls: list[str]
) -> RoleProcess:
    port = renter.url.rsplit(":", 1)[1]
    argv = latent_command(
        "renter", "proxy", "--dev-account", str(renter.account_index), "--rpc-url", rpc_url,
        "--port", port, "--state-dir", str(renter.state),
        "--deposit", "2", "--top-up", "2", "--recheck-rate", "0.2",
    )  # fmt: skip
    for url in validator_urls:
        argv += ["--validator", url]
    return RoleProcess(
        "renter-proxy", argv, state_dir / "logs" / "renter-proxy.log", renter.url + "/health"
    )


async def send_traffic(proxy_url: str, progress: Progress, stop: asyncio.Event) -> None:
    """One renter's paid traffic through the proxy: OpenAI requests, one at a time."""
    prompts = ("Once upon a time", "The quick brown fox", "In the beginning", "Hello there")
    i = 0
    async with httpx.AsyncClient(base_url=proxy_url, timeout=60.0) as http:
        while not stop.is_set():
            i += 1
            prompt = prompts[i % len(prompts)]
            if i % 2:
                path = "/v1/completions"
                body: dict[str, Any] = {"prompt": prompt, "temperature": 0.8}
            else:
                path = "/v1/chat/completions"
                body = {"messages": [{"role": "user", "content": prompt}], "temperature": 0}
            try:
                reply = await http.post(path, json={"model": "tiny", "max_tokens": 24, **body})
                if reply.is_success:
                    progress.requests_ok += 1
                else:
                    progress.requests_failed += 1
                    progress.last_error = f"HTTP {reply.status_code}: {reply.text[:100]}"
            except httpx.HTTPError as exc:
                progress.requests_failed += 1
                progress.last_error = str(exc)[:120]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)


async def _quality(urls: list[str]) -> dict[str, MinerQuality]:
    """Per-miner pass rate, tokens/s and TTFT: the median over the validators' ``/status``
    (the dashboard's readers)."""
    async with httpx.AsyncClient() as client:
        return miner_quality(await fetch_validator_reports(client, urls, timeout_s=2.0))


def _settled_by_miner(escrow: EscrowClient, from_block: int) -> dict[str, int]:
    """Renter payments each miner settled on the escrow (after the fee)."""
    paid: dict[str, int] = {}
    channels: dict[bytes, str] = {}
    for log in escrow.logs("ChannelOpened", from_block, "latest"):
        channels[bytes(log["channelId"])] = log["miner"]
    for log in escrow.logs("VoucherSettled", from_block, "latest"):
        miner = channels.get(bytes(log["channelId"]))
        if miner is not None:
            paid[miner] = paid.get(miner, 0) + int(log["amount"])
    return paid


def _close_renter(renter: Neuron, w3: Web3, console: Console, quiet: bool) -> None:
    """``latent renter close`` on the proxy's channels (idle now), as a user would run it."""
    import subprocess

    assert renter.process is not None
    argv = latent_command(
        "renter", "close", "--state-dir", str(renter.state), "--idle-for", "0",
        "--dev-account", str(renter.account_index),
        "--rpc-url", w3.provider.endpoint_uri,  # type: ignore[attr-defined]
    )  # fmt: skip
    done = subprocess.run(
        argv, capture_output=True, text=True, env={**os.environ, **renter.process.env}, check=False
    )
    if not quiet:
        console.print(done.stdout.strip() or done.stderr.strip())
    if done.returncode:
        console.print(f"[yellow]renter close: {done.stderr.strip()[-300:]}[/]")


def _accounting(
    epoch: EpochClient,
    escrow: EscrowClient,
    graph: Metagraph,
    from_block: int,
    renter: str,
    renter_state: Path | None,
) -> dict[str, Any]:
    """Checks anyone can redo from the chain: tokens minted and fees collected by the epochs
    against what they credited (nobody claims on a localnet, so all of it is still owed), and
    the renter's channels: settled on-chain against the receipts its proxy holds."""
    yuma = epoch.contract
    # The emission books are read at the last block with no epoch running: validators may
    # have started one since the run ended, minting at once and crediting over several steps.
    books_block = int(escrow.w3.eth.block_number)
    while books_block > from_block and epoch.progress(books_block)[0] != Phase.IDLE:
        books_block -= 1
    minted = fees = 0
    for log in yuma.logs("EpochStarted", from_block, books_block):
        minted += int(log["minted"])
        fees += int(log["fees"])
    owner = Contract(escrow.w3, "Metagraph", graph.address).call("owner")
    credited = sum(epoch.claimable(a, books_block) for a in {*graph.hotkeys, owner})
    settled = deposited = 0
    for log in escrow.logs("ChannelOpened", from_block, "latest"):
        if log["renter"] == renter:
            ch = escrow.channel(bytes(log["channelId"]))
            settled += ch.settled
            deposited += ch.deposit
    receipts = 0
    if renter_state is not None:
        receipts = sum(int(e["price"]) for e in LedgerStore(renter_state).read_receipts())
    return {
        "minted_wei": minted,
        "fees_wei": fees,
        "credited_wei": credited,
        "reserved_wei": epoch.reserved(books_block),
        "books_block": books_block,
        "renter_deposited_wei": deposited,
        "renter_settled_wei": settled,
        "renter_receipts_wei": receipts,
    }


def metagraph_table(
    graph: Metagraph,
    roles: dict[str, str],
    quality: dict[str, MinerQuality],
    paid: dict[str, int],
    title: str,
) -> Table:
    """The per-epoch table: uid, role, stake, incentive, dividends, emission, vtrust, pass
    rate, tokens/s, renter payments."""
    table = Table(
        "uid", "role", "stake", "incentive", "dividends", "emission", "vtrust", "pass",
        "tok/s", "paid", title=title,
    )  # fmt: skip
    for n in graph.neurons():
        q = quality.get(n.hotkey)
        checked = q is not None and q.checks > 0
        table.add_row(
            str(n.uid),
            roles.get(n.hotkey, "?"),
            format_tokens(n.stake, places=0),
            f"{n.incentive / 65535:.3f}",
            f"{n.dividends / 65535:.3f}",
            format_tokens(n.emission, places=2),
            f"{n.validator_trust / 65535:.3f}",
            f"{q.pass_rate or 0:.0%}" if checked and q else "-",
            f"{q.tokens_per_s or 0:.0f}" if checked and q else "-",
            format_tokens(paid.get(n.hotkey, 0), places=4),
        )
    return table


def summary_json(
    graph: Metagraph,
    roles: dict[str, str],
    quality: dict[str, MinerQuality],
    paid: dict[str, int],
    progress: Progress,
    extra: dict[str, Any],
) -> dict[str, Any]:
    """What ``--epochs N --json`` prints at the end."""
    return {
        "epochs": progress.epochs,
        "epoch_blocks": progress.epoch_blocks,
        "block": graph.block,
        "seconds": round(time.monotonic() - progress.started, 1),
        "first_epoch_s": progress.first_epoch_s,
        "cheater_zero_s": progress.cheater_zero_s,
        "requests_ok": progress.requests_ok,
        "requests_failed": progress.requests_failed,
        "last_request_error": progress.last_error,
        "neurons": [
            {
                "uid": n.uid,
                "hotkey": n.hotkey,
                "role": roles.get(n.hotkey, "?"),
                "stake_wei": n.stake,
                "incentive": n.incentive / 65535,
                "dividends": n.dividends / 65535,
                "emission_wei": n.emission,
                "vtrust": n.validator_trust / 65535,
                "pass_rate": q.pass_rate if (q := quality.get(n.hotkey)) else None,
                "tokens_per_s": q.tokens_per_s if q else None,
                "paid_wei": paid.get(n.hotkey, 0),
            }
            for n in graph.neurons()
        ],
        **extra,
    }


def _live_table(progress: Progress, neurons: list[Neuron], block: int, next_epoch: int) -> Table:
    table = Table(
        "role",
        "address",
        "state",
        title=f"block {block} · epoch {progress.epochs} · next at {next_epoch}",
    )
    for n in neurons:
        if n.process is None:
            continue
        state = "running" if n.process.running else "[red]exited[/]"
        table.add_row(n.role + (f" ({n.cheat})" if n.cheat else ""), n.account.address, state)
    table.caption = (
        f"renter requests: {progress.requests_ok} paid, {progress.requests_failed} failed"
        + (f" · last error: {progress.last_error}" if progress.last_error else "")
    )
    return table


def run_localnet(config: LocalnetConfig, console: Console | None = None) -> int:
    """Run the subnet (see the module doc); returns the exit code."""
    console = console or cli_console(stderr=config.json_out)
    check_toolchain()
    if config.cheat != "none":
        from miner.cheats import CHEAT_KINDS

        if config.cheat not in CHEAT_KINDS:
            raise ConfigError(
                f"--cheat {config.cheat!r} is not a cheat; choose none or one of {', '.join(CHEAT_KINDS)}"
            )
    if not 1 <= config.port <= 65535:
        raise ConfigError(f"--port {config.port} is not a TCP port (1-65535)")
    keep = config.state_dir is not None
    state_dir = config.state_dir or Path(tempfile.mkdtemp(prefix="latent-localnet-"))
    try:
        with StateDirLock(state_dir), ManifestDirLock(manifest_dir_for(config, state_dir)):
            if not port_is_free(config.port):
                raise ConfigError(
                    f"port {config.port} is already in use; stop that process or pick --port"
                )
            if config.dashboard_port and not port_is_free(config.dashboard_port):
                raise ConfigError(
                    f"dashboard port {config.dashboard_port} is already in use; "
                    "pick --dashboard-port"
                )
            return _run_locked(config, console, state_dir, keep)
    finally:
        if not keep:
            shutil.rmtree(state_dir, ignore_errors=True)


def manifest_dir_for(config: LocalnetConfig, state_dir: Path) -> Path:
    """Where this localnet's manifest goes. The default port's is the one other commands
    read (``DEPLOYMENTS_DIR``: ``deploy/deployments``, or ``$LATENT_DEPLOYMENTS_DIR``);
    another port keeps its own under the state directory so two localnets never overwrite
    each other's. Either directory is locked while the localnet runs
    (:class:`ManifestDirLock`): a second localnet aimed at the same one is refused."""
    return DEPLOYMENTS_DIR if config.port == DEFAULT_PORT else state_dir / "deployments"


def _run_locked(config: LocalnetConfig, console: Console, state_dir: Path, keep: bool) -> int:
    roles = plan_roles(config.miners, config.validators)
    accounts = dev_accounts(10)
    neurons = [Neuron(r.name, accounts[r.account], r.account) for r in roles]
    miners = [n for n in neurons if n.role.startswith("miner")]
    for i, m in enumerate(miners):
        m.url = f"http://127.0.0.1:{free_port()}"
        if config.cheat != "none" and i == len(miners) - 1 and len(miners) > 1:
            m.cheat = config.cheat
    validator_urls = [
        f"http://127.0.0.1:{free_port()}" for n in neurons if n.role.startswith("validator")
    ]
    renter = next(n for n in neurons if n.role == "renter")
    renter.url = f"http://127.0.0.1:{free_port()}"
    renter.state = state_dir / "renter"
    manifest_dir = manifest_dir_for(config, state_dir)
    node = AnvilNode(
        chain_id=31337,
        port=config.port,
        block_time=config.block_time,
        state_path=state_dir / "anvil-state.json" if keep else None,
    )
    with node:
        w3 = connect(node.rpc_url, expected_chain_id=31337)
        manifest = setup_chain(w3, config, manifest_dir, neurons, console)
        _print_intro(config, console, node.rpc_url, manifest_dir, neurons, manifest)
        if config.once:
            return 0
        _ensure_model(config.model_dir, console, config.json_out)
        env = {"LATENT_DEPLOYMENTS_DIR": str(manifest_dir)}
        processes = _role_commands(config, neurons, node.rpc_url, state_dir, validator_urls)
        if config.renter:
            processes.append(_proxy_command(renter, node.rpc_url, state_dir, validator_urls))
        for process in processes:
            process.env.update(env)
        return asyncio.run(
            _run_roles(config, console, w3, manifest, neurons, processes, validator_urls)
        )


def role_rows(neurons: list[Neuron]) -> list[tuple[str, str, str]]:
    """(dev account, address, what it does) for every funded dev account, unused ones too."""
    by_index = {n.account_index: n for n in neurons}
    validators = [n for n in neurons if n.role.startswith("validator")]
    rows = []
    for index, account in enumerate(dev_accounts(10)):
        neuron = by_index.get(index)
        if neuron is None:
            what = "unused (funded: free for your own commands)"
        elif neuron.role == "owner":
            what = "owner: deployed the contracts, subnet owner"
        elif neuron.role.startswith("miner"):
            what = f"{neuron.role}: coldkey = hotkey, serves {neuron.url}"
            what += f" (cheats: {neuron.cheat})" if neuron.cheat else ""
        elif neuron.role.startswith("validator"):
            what = f"{neuron.role}: coldkey = hotkey, self-staked"
        elif neuron.role.startswith("payer"):
            number = int(neuron.role.split("-")[1])
            owner = validators[number - 1].account_index if number <= len(validators) else "?"
            what = f"{neuron.role}: pays miners for the validator on dev account {owner}"
        else:
            what = f"{neuron.role}: the renter proxy at {neuron.url}" if neuron.url else neuron.role
        rows.append((str(index), str(account.address), what))
    return rows


def usage_lines(rpc_url: str, manifest_dir: Path, *, default_port: bool) -> list[str]:
    """How other commands reach this localnet (printed at start)."""
    if default_port:
        lines = [
            f"other commands reach this localnet without flags ({rpc_url}, manifest "
            f"{manifest_dir / 'localnet.json'}), e.g.:"
        ]
    else:
        lines = [
            "other commands reach this localnet after (or with --rpc-url "
            f"{rpc_url} and this LATENT_DEPLOYMENTS_DIR):",
            f"  export LATENT_LOCALNET_RPC_URL={rpc_url} LATENT_DEPLOYMENTS_DIR={manifest_dir}",
            "then, e.g.:",
        ]
    lines += [
        "  latent metagraph",
        "  latent market",
        "  latent stake add 10 --dev-account 8 --hotkey-address ADDRESS   (sign with a dev "
        "account above)",
    ]
    return lines


def _print_intro(
    config: LocalnetConfig,
    console: Console,
    rpc_url: str,
    manifest_dir: Path,
    neurons: list[Neuron],
    manifest: Manifest,
) -> None:
    if config.json_out:
        return
    table = Table("dev account", "address", "role", title=f"localnet at {rpc_url}")
    for row in role_rows(neurons):
        table.add_row(*row)
    print_table(table, console)
    for name, entry in sorted(manifest.contracts.items()):
        console.print(f"  {name:<14} {entry.address}", soft_wrap=True)
    for line in usage_lines(rpc_url, manifest_dir, default_port=config.port == DEFAULT_PORT):
        console.print(line, soft_wrap=True, highlight=False)


async def _run_roles(
    config: LocalnetConfig,
    console: Console,
    w3: Web3,
    manifest: Manifest,
    neurons: list[Neuron],
    processes: list[RoleProcess],
    validator_urls: list[str],
) -> int:
    from latent.dashboard import serve_dashboard

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    progress = Progress()
    graph = MetagraphClient(w3, manifest.address("Metagraph"))
    epoch = EpochClient(w3, manifest.address("YumaConsensus"))
    escrow = EscrowClient(w3, manifest.address("PaymentEscrow"))
    roles = {str(n.account.address): n.role + (f" ({n.cheat})" if n.cheat else "") for n in neurons}
    by_role = {n.role: n for n in neurons}
    start_block = w3.eth.block_number
    with Supervisor() as supervisor:
        # Neurons first; the renter's proxy once miners answer (it discovers them then).
        neurons_first = [p for p in processes if p.name != "renter-proxy"]
        proxy = [p for p in processes if p.name == "renter-proxy"]
        for group in (neurons_first, proxy):
            for process in group:
                supervisor.start(process)
                owner = "renter" if process.name == "renter-proxy" else process.name
                if owner in by_role:
                    by_role[owner].process = process
            await asyncio.to_thread(wait_all_ready, group, 240.0)
        if not config.json_out:
            console.print(
                f"started {len(processes)} processes; logs in {processes[0].log_path.parent}"
            )
        async with contextlib.AsyncExitStack() as stack:
            dash_url = await stack.enter_async_context(
                serve_dashboard(
                    w3,
                    metagraph=manifest.address("Metagraph"),
                    epoch=manifest.address("YumaConsensus"),
                    escrow=manifest.address("PaymentEscrow"),
                    validator_urls=validator_urls,
                    network="localnet",
                    from_block=start_block,
                    port=config.dashboard_port,
                )
            )
            if not config.json_out:
                console.print(f"dashboard: {dash_url}")
            tasks = []
            if config.renter:
                tasks.append(
                    asyncio.create_task(send_traffic(by_role["renter"].url, progress, stop))
                )
            keeper = None
            if config.validators == 0:
                from validator.chain_duties import EpochKeeper

                keeper = EpochKeeper(epoch, dev_accounts(1)[0])
            code = await _watch(
                config, console, w3, graph, epoch, escrow, neurons, roles, progress,
                validator_urls, supervisor, stop, keeper, start_block, dash_url,
            )  # fmt: skip
            stop.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    return code


async def _watch(
    config: LocalnetConfig,
    console: Console,
    w3: Web3,
    graph: MetagraphClient,
    epoch: EpochClient,
    escrow: EscrowClient,
    neurons: list[Neuron],
    roles: dict[str, str],
    progress: Progress,
    validator_urls: list[str],
    supervisor: Supervisor,
    stop: asyncio.Event,
    keeper: Any,
    start_block: int,
    dash_url: str,
) -> int:
    """Follow blocks and epochs until ``--epochs`` or Ctrl-C; print tables; 1 if a role died."""
    yuma = epoch.contract
    seen_epochs: set[int] = set()
    cheater = next((n.account.address for n in neurons if n.cheat), None)
    live = (
        Live(console=console, refresh_per_second=2, transient=True)
        if (console.is_terminal and not config.json_out)
        else None
    )
    exit_code = 0
    with live or contextlib.nullcontext():
        while not stop.is_set():
            dead = supervisor.failed()
            if dead:
                console.print(f"[red]error:[/] {dead[0].name} exited: {dead[0].tail()}")
                exit_code = 1
                break
            block = await asyncio.to_thread(lambda: w3.eth.block_number)
            progress.block = block
            if keeper is not None:
                await asyncio.to_thread(keeper.run_if_due, block)
            logs = await asyncio.to_thread(yuma.logs, "EpochCompleted", start_block, "latest")
            for log in logs:
                eb = int(log["epochBlock"])
                if eb in seen_epochs:
                    continue
                seen_epochs.add(eb)
                progress.epochs += 1
                progress.epoch_blocks.append(eb)
                if progress.first_epoch_s is None:
                    progress.first_epoch_s = round(time.monotonic() - progress.started, 1)
                snap = await asyncio.to_thread(graph.snapshot)
                quality = await _quality(validator_urls)
                paid = await asyncio.to_thread(_settled_by_miner, escrow, start_block)
                cheat_uid = snap.uid_of(cheater) if cheater else None
                if (
                    progress.cheater_zero_s is None
                    and cheat_uid is not None
                    and snap.incentive[cheat_uid] == 0
                    and sum(snap.incentive) > 0
                ):
                    progress.cheater_zero_s = round(time.monotonic() - progress.started, 1)
                if not config.json_out:
                    table = metagraph_table(
                        snap, roles, quality, paid, f"epoch {progress.epochs} (block {eb})"
                    )
                    live.console.print(table) if live else print_table(table, console)
                if config.epochs is not None and progress.epochs >= config.epochs:
                    stop.set()
            if live is not None:
                next_epoch = await asyncio.to_thread(epoch.next_epoch_block)
                live.update(_live_table(progress, neurons, block, next_epoch))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)
    renter = next(n for n in neurons if n.role == "renter")
    if config.epochs is not None and renter.process is not None:
        # A finite run ends like a renter would: stop the proxy, settle exactly what its
        # receipts prove, request close (the accounting below then balances to the unit).
        await asyncio.to_thread(renter.process.stop)
        await asyncio.to_thread(_close_renter, renter, w3, console, config.json_out)
    snap = await asyncio.to_thread(graph.snapshot)
    quality = await _quality(validator_urls)
    paid = await asyncio.to_thread(_settled_by_miner, escrow, start_block)
    accounts = await asyncio.to_thread(
        _accounting, epoch, escrow, snap, start_block, renter.account.address, renter.state
    )
    summary = summary_json(
        snap, roles, quality, paid, progress,
        {"dashboard": dash_url, "rpc_url": w3.provider.endpoint_uri,  # type: ignore[attr-defined]
         "pids": [p.proc.pid for p in supervisor.processes if p.proc is not None],
         "exit_code": exit_code, **accounts},
    )  # fmt: skip
    if config.json_out:
        print(json.dumps(summary, indent=2))
    else:
        console.print(
            f"stopping localnet after {progress.epochs} epochs, {summary['seconds']} s; "
            f"{progress.requests_ok} paid renter requests"
        )
    return exit_code
