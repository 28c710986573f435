"""``latent``: one command for miners, validators, renters and deployers.

Every deliberate failure is a :class:`chain.errors.LatentError`; :func:`main` prints its
message on one line (``error: ...``) and exits 1, never a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup

try:  # recent typer vendors click: its usage errors are not click's own classes
    import typer._click as click
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover - older typer uses click itself
    import click  # type: ignore[no-redef]
    from click.exceptions import ClickException  # type: ignore[assignment]
from rich.markup import escape
from rich.table import Table

from chain.cli_options import DevOpt, JsonOpt, KeystoreOpt, NetworkOpt, RpcOpt, WalletOpt
from chain.cli_output import cli_console, print_table
from chain.errors import ConfigError, LatentError


class GasRegression(LatentError):
    """An operation costs more gas than the committed report says."""


#: ``latent -h`` lists commands under their role, in this order; a command missing here is
#: listed under "Other" (so a new one is never hidden).
COMMAND_SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Subnet", ("register", "consent", "metagraph", "stake", "weights", "rewards")),
    ("Miner", ("miner", "model")),
    ("Validator", ("validator",)),
    ("Renter", ("renter", "market")),
    ("Chain & deploy", ("localnet", "deploy", "compile", "wallet", "dashboard", "bittensor")),
    ("Tools", ("bench", "sim")),
)


class RoleGroupedHelp(TyperGroup):
    """The root group: its help lists commands in role sections (:data:`COMMAND_SECTIONS`)
    with click's plain formatter (rich markup is off, so this reads the same in a pipe)."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        commands = {
            name: cmd
            for name in self.list_commands(ctx)
            if (cmd := self.get_command(ctx, name)) is not None and not cmd.hidden
        }
        if not commands:
            return
        width = max(len(name) for name in commands)  # one column for every section
        limit = formatter.width - 6 - width
        placed: set[str] = set()
        sections: list[tuple[str, list[str]]] = []
        for title, known in COMMAND_SECTIONS:
            present = [n for n in known if n in commands]
            placed.update(present)
            sections.append((title, present))
        sections.append(("Other", [n for n in commands if n not in placed]))
        for title, names in sections:
            if names:
                with formatter.section(title):
                    formatter.write_dl(
                        [(n.ljust(width), commands[n].get_short_help_str(limit)) for n in names]
                    )


app = typer.Typer(
    name="latent",
    cls=RoleGroupedHelp,
    help="Latent: GPU inference subnet settled on an EVM chain.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # plain click help: flags read as flags (no "<bool>"), nothing wraps into boxes at 80
    # columns or in a pipe
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"latent {version('latent-subnet')}")
        except PackageNotFoundError:  # running from a source tree that was never installed
            print("latent (not installed)")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_print_version, help="Print the version."
        ),
    ] = False,
) -> None:
    """Latent: GPU inference subnet settled on an EVM chain."""


wallet_app = typer.Typer(help="Coldkeys and hotkeys (encrypted keystores).", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks (print JSON with --json).", no_args_is_help=True)
app.add_typer(wallet_app, name="wallet")
app.add_typer(bench_app, name="bench")


def _mount_roles() -> None:
    """Each role's commands live with the role; they are mounted here."""
    from latent.bench_proxy import bench_proxy
    from latent.bittensor_cli import app as bittensor_app
    from latent.dashboard.cli import dashboard
    from latent.neuron_cli import mount as mount_neuron_commands
    from latent.rewards_cli import app as rewards_app
    from latent.sim import sim
    from miner.bench_serve import bench_serve
    from miner.cli import app as miner_app
    from miner.model_cli import app as model_app
    from miner.settlement import settle_command
    from renter.cli import app as renter_app
    from renter.proxy_cli import market_command
    from validator.bench_cli import bench_gauntlet, bench_verify
    from validator.cli import app as validator_app

    mount_neuron_commands(app)  # register, stake, metagraph, weights
    miner_app.command("settle")(settle_command)
    app.add_typer(miner_app, name="miner")
    app.add_typer(validator_app, name="validator")
    app.add_typer(renter_app, name="renter")
    app.add_typer(rewards_app, name="rewards")
    app.add_typer(model_app, name="model")
    app.add_typer(bittensor_app, name="bittensor")
    bench_app.command("serve")(bench_serve)
    bench_app.command("gauntlet")(bench_gauntlet)
    bench_app.command("verify")(bench_verify)
    bench_app.command("proxy")(bench_proxy)
    app.command("market")(market_command)
    app.command("sim")(sim)
    app.command("dashboard")(dashboard)


_mount_roles()

console = cli_console()
err_console = cli_console(stderr=True)


# --------------------------------------------------------------------------- compile


@app.command("compile")
def compile_cmd(
    force: Annotated[bool, typer.Option("--force", help="Ignore the cache.")] = False,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Write nothing; fail if a contract is over the code-size limits (EIP-170, "
            "EIP-3860).",
        ),
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Compile contracts/ (cached) and refresh the shipped ABIs in chain/abi/."""
    from chain.compile import CODE_SIZE_LIMIT, compile_contracts, write_shipped_artifacts
    from chain.errors import CompileError

    arts = compile_contracts(force=force)
    if not check:
        write_shipped_artifacts(arts)  # package data: role boxes need no compiler
    deployable = {n: a for n, a in sorted(arts.items()) if a.bytecode not in ("", "0x")}
    if json_out:
        print(
            json.dumps(
                {
                    n: {
                        "source": a.source_path,
                        "sourceHash": a.source_hash,
                        "bytecodeBytes": a.runtime_size,
                        "initcodeBytes": a.initcode_size,
                        "marginBytes": CODE_SIZE_LIMIT - a.runtime_size,
                        "compiler": a.compiler_version,
                    }
                    for n, a in deployable.items()
                },
                indent=2,
            )
        )
    else:
        table = Table("contract", "source", "runtime bytes", "margin", "init bytes")
        for name, art in deployable.items():
            table.add_row(
                name,
                art.source_path,
                f"{art.runtime_size:,}",
                f"{CODE_SIZE_LIMIT - art.runtime_size:,}",
                f"{art.initcode_size:,}",
            )
        print_table(table, console)
    problems = [p for art in deployable.values() for p in art.size_problems()]
    if check and problems:
        raise CompileError("; ".join(problems))


# --------------------------------------------------------------------------- deploy


@app.command("deploy")
def deploy_cmd(
    network: NetworkOpt = "localnet",
    rpc_url: RpcOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Estimate gas; send nothing.")] = False,
    keystore: KeystoreOpt = None,
    wallet: WalletOpt = None,
    dev_account: DevOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Deploy the contracts (idempotent) and record them in deploy/deployments/NETWORK.json."""
    from chain.client import connect
    from chain.keys import read_address, resolve_account
    from chain.manifest import manifest_path
    from chain.networks import get_network
    from deploy.deployer import deploy_plan, estimate_plan

    net = get_network(network, rpc_url=rpc_url)
    w3 = connect(net.rpc_url, expected_chain_id=net.chain_id)
    if dry_run:
        if keystore is not None:
            sender = read_address(keystore)
        else:
            sender = resolve_account(
                wallet=wallet, dev_account=dev_account, allow_dev=net.dev_accounts
            ).address
        steps = estimate_plan(w3, net, sender)
        gas_price = int(w3.eth.gas_price)
        total = sum(s.gas for s in steps)
        if json_out:
            print(
                json.dumps(
                    {
                        "network": net.name,
                        "chainId": net.chain_id,
                        "gasPriceWei": gas_price,
                        "contracts": {s.name: s.gas for s in steps},
                        "totalGas": total,
                    },
                    indent=2,
                )
            )
            return
        table = Table(
            "contract", "estimated gas", title=f"dry run on {net.name} (chain {net.chain_id})"
        )
        for s in steps:
            table.add_row(s.name, f"{s.gas:,}")
        table.add_row(
            "total",
            f"{total:,}  (≈ {total * gas_price / 1e18:.6f} native at {gas_price / 1e9:.3g} gwei)",
        )
        print_table(table, console)
        return
    account = resolve_account(
        keystore=keystore, wallet=wallet, dev_account=dev_account, allow_dev=net.dev_accounts
    )
    manifest, steps = deploy_plan(w3, net, account)
    if json_out:
        print(json.dumps(manifest.to_json(), indent=2))
        return
    table = Table(
        "contract", "address", "action", "gas", title=f"{net.name} (chain {net.chain_id})"
    )
    for s in steps:
        table.add_row(s.name, s.address, s.action, f"{s.gas:,}" if s.gas else "-")
    print_table(table, console)
    console.print(f"manifest: {manifest_path(net.name)}")


# --------------------------------------------------------------------------- localnet


@app.command("localnet")
def localnet_cmd(
    port: Annotated[int, typer.Option("--port", help="RPC port for anvil.")] = 8545,
    block_time: Annotated[float, typer.Option("--block-time", help="Seconds per block.")] = 1.0,
    state: Annotated[
        Path | None,
        typer.Option("--state", help="Directory keeping chain and neuron state across restarts."),
    ] = None,
    epochs: Annotated[
        int | None, typer.Option("--epochs", min=1, help="Exit after N epochs with a summary.")
    ] = None,
    cheat: Annotated[
        str,
        typer.Option(
            "--cheat", help="What the cheating miner does (bench gauntlet kinds, or none)."
        ),
    ] = "other-weights",
    miners: Annotated[int, typer.Option("--miners", min=1, help="Miners to start.")] = 4,
    validators: Annotated[
        int, typer.Option("--validators", min=0, help="Validators to start.")
    ] = 2,
    tempo: Annotated[int, typer.Option("--tempo", min=2, help="Blocks per epoch.")] = 20,
    dashboard_port: Annotated[
        int, typer.Option("--dashboard-port", help="Dashboard port (0: any free port).")
    ] = 8080,
    no_renter: Annotated[
        bool, typer.Option("--no-renter", help="No renter proxy and no paid traffic.")
    ] = False,
    once: Annotated[
        bool, typer.Option("--once", help="Exit after deploying and registering.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Run the whole subnet here: chain, miners (one cheating), validators, a paying renter,
    and the dashboard."""
    from latent.localnet import LocalnetConfig, run_localnet

    code = run_localnet(
        LocalnetConfig(
            port=port,
            block_time=block_time,
            state_dir=state,
            once=once,
            epochs=epochs,
            miners=miners,
            validators=validators,
            cheat=cheat,
            tempo=tempo,
            dashboard_port=dashboard_port,
            renter=not no_renter,
            json_out=json_out,
        )
    )
    if code:
        raise typer.Exit(code)


# --------------------------------------------------------------------------- wallet


@wallet_app.command("create")
def wallet_create(
    wallet: Annotated[str, typer.Option("--wallet", help="Wallet name.")] = "default",
    hotkey: Annotated[
        str | None, typer.Option("--hotkey", help="Create this hotkey instead of the coldkey.")
    ] = None,
    wallet_dir: Annotated[Path | None, typer.Option(help="Wallets folder.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Create an encrypted coldkey (or, with --hotkey, a hotkey) in a wallet."""
    from chain.keys import create_key, default_wallet_dir, password_from_env_or_prompt

    password = password_from_env_or_prompt("New key password", confirm=True)
    info = create_key(
        wallet_dir or default_wallet_dir(),
        wallet,
        "hotkey" if hotkey else "coldkey",
        password,
        name=hotkey or "default",
    )
    if json_out:
        print(
            json.dumps(
                {
                    "wallet": info.wallet,
                    "role": info.role,
                    "name": info.name,
                    "address": info.address,
                    "path": str(info.path),
                }
            )
        )
        return
    console.print(f"created {info.role} {info.wallet}/{info.name}: {info.address}  ({info.path})")


@wallet_app.command("list")
def wallet_list(
    wallet_dir: Annotated[Path | None, typer.Option(help="Wallets folder.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """List every key with its address (nothing is decrypted)."""
    from chain.keys import default_wallet_dir, list_keys

    keys = list_keys(wallet_dir or default_wallet_dir())
    if json_out:
        print(
            json.dumps(
                [
                    {
                        "wallet": k.wallet,
                        "role": k.role,
                        "name": k.name,
                        "address": k.address,
                        "path": str(k.path),
                    }
                    for k in keys
                ],
                indent=2,
            )
        )
        return
    table = Table("wallet", "role", "name", "address")
    for k in keys:
        table.add_row(k.wallet, k.role, k.name, k.address)
    print_table(table, console)


@wallet_app.command("show")
def wallet_show(
    wallet: Annotated[str, typer.Option("--wallet", help="Wallet name.")] = "default",
    hotkey: Annotated[str | None, typer.Option("--hotkey", help="Show this hotkey.")] = None,
    wallet_dir: Annotated[Path | None, typer.Option(help="Wallets folder.")] = None,
    unlock: Annotated[
        bool, typer.Option("--unlock", help="Decrypt to check the password.")
    ] = False,
) -> None:
    """Show a key's address; with --unlock, also check that the password opens it."""
    from chain.keys import (
        default_wallet_dir,
        key_path,
        load_key,
        password_from_env_or_prompt,
        read_address,
    )

    path = key_path(
        wallet_dir or default_wallet_dir(),
        wallet,
        "hotkey" if hotkey else "coldkey",
        hotkey or "default",
    )
    address = read_address(path)
    if unlock:
        load_key(path, password_from_env_or_prompt(f"Password for {path.name}"))
        console.print("password ok")
    console.print(f"{address}  ({path})")


# --------------------------------------------------------------------------- bench


@bench_app.command("gas")
def bench_gas(
    json_out: JsonOpt = False,
    area: Annotated[list[str] | None, typer.Option("--area", help="Only these areas.")] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Fail if any figure exceeds gas-report.json.")
    ] = False,
    write: Annotated[
        bool, typer.Option("--write", help="Store the figures in gas-report.json.")
    ] = False,
) -> None:
    """Gas per operation, measured from real receipts on a fresh anvil."""
    from latent.gas import measure_all, scenario_modules
    from latent.gas._report import GAS_REPORT, compare_reports, load_report, write_report

    unknown = sorted(set(area or []) - set(scenario_modules()))
    if unknown:
        raise ConfigError(
            f"unknown --area {', '.join(unknown)}; choose from {', '.join(scenario_modules())}"
        )
    report = measure_all(area)
    if json_out:
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        table = Table("area", "operation", "gas")
        for name, ops in sorted(report.items()):
            for op, gas in sorted(ops.items()):
                table.add_row(name, op, f"{gas:,}")
        print_table(table, console)
    if check:
        committed = load_report()
        if area:
            committed = {a: ops for a, ops in committed.items() if a in area}
        changes = compare_reports(committed, report)
        for change in changes:
            err_console.print(("REGRESSION " if change.worse else "changed ") + change.describe())
        if any(c.worse for c in changes):
            raise GasRegression(
                f"gas grew above {GAS_REPORT.name}; optimise or refresh it with --write"
            )
    if write:
        merged = {**load_report(), **report} if area and GAS_REPORT.is_file() else report
        write_report(merged)
        err_console.print(f"wrote {GAS_REPORT}")


# --------------------------------------------------------------------------- entry point


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the app; every refusal is one line on stderr, never a
    traceback.

    A ``LatentError`` (the command ran and refused) prints ``error: MESSAGE`` and exits 1. A
    usage error found by the parser (missing or unknown option, bad value) prints
    ``error: MESSAGE (see 'latent CMD -h')`` and exits 2, click's code for usage errors, so
    scripts can tell "you called it wrong" from "it failed"."""
    try:
        app(args=argv, prog_name="latent", standalone_mode=False)
    except LatentError as exc:
        _print_error(str(exc))
        sys.exit(1)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except ClickException as exc:
        message = exc.format_message().strip().rstrip(".")
        ctx = getattr(exc, "ctx", None)
        if ctx is not None and exc.exit_code == 2:
            message += f" (see '{ctx.command_path} -h')"
        _print_error(" ".join(message.split()))
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)


def _print_error(message: str) -> None:
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
