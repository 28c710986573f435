"""``latent validator run|status``: score the miners, post weights, keep the epoch.

``run`` parses the flags once into a :class:`validator.service.ValidatorConfig`, loads the
hotkey (it signs weights) and a separate *payer* account (it pays miners like a renter; it
must not be the hotkey, or miners could recognise checks), the reference model through
``from_pretrained`` (local files only), and runs rounds, chain duties and the HTTP endpoint
(``/metrics``, ``/status``, ``POST /v1/recheck``) in one asyncio loop until SIGINT/SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from chain.cli_options import (
    DevOpt,
    JsonOpt,
    KeystoreOpt,
    NetworkOpt,
    RpcOpt,
    WalletOpt,
    dev_account_option,
)
from chain.cli_output import cli_console, print_table
from chain.errors import ConfigError

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount
    from web3 import Web3

    from validator.service import ValidatorConfig

app = typer.Typer(help="Score miners, post weights, run due epochs.", no_args_is_help=True)
log = logging.getLogger("latent.validator")


@app.callback()
def _validator() -> None:
    """Score miners, post weights, run due epochs (``run``, ``status``)."""


def _default_state(hotkey: str) -> Path:
    return Path.home() / ".latent" / "validator" / hotkey / "state.json"


@app.command("run")
def run(
    model: Annotated[
        Path,
        typer.Option(
            "--model",
            envvar="LATENT_VALIDATOR_MODEL",
            help="The subnet's reference model directory.",
        ),
    ],
    model_id: Annotated[
        str | None,
        typer.Option("--model-id", help="Model name miners serve (default: the directory name)."),
    ] = None,
    network: NetworkOpt = "localnet",
    rpc_url: RpcOpt = None,
    keystore: KeystoreOpt = None,
    wallet: WalletOpt = None,
    hotkey: Annotated[str, typer.Option("--hotkey", help="Hotkey name in the wallet.")] = "default",
    dev_account: DevOpt = None,
    payer_keystore: Annotated[
        Path | None,
        typer.Option("--payer-keystore", help="Keystore of the account that pays miners."),
    ] = None,
    payer_wallet: Annotated[
        str | None, typer.Option("--payer-wallet", help="Wallet whose coldkey pays miners.")
    ] = None,
    payer_dev_account: Annotated[
        int | None,
        dev_account_option("--payer-dev-account", "Payer: anvil dev account 0-9 (localnet)."),
    ] = None,
    deposit: Annotated[
        str, typer.Option("--deposit", help="Tokens deposited per miner channel (and per top-up).")
    ] = "20",
    state: Annotated[
        Path | None,
        typer.Option("--state", help="State file (default ~/.latent/validator/HOTKEY/state.json)."),
    ] = None,
    host: Annotated[
        str, typer.Option("--host", help="Address of /metrics, /status, /v1/recheck.")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", help="Port of the HTTP endpoint (0: any free port).")
    ] = 9100,
    checks_per_miner: Annotated[int, typer.Option("--checks-per-miner", min=1, max=64)] = 2,
    round_interval: Annotated[
        float, typer.Option("--round-interval", help="Seconds between rounds.")
    ] = 10.0,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds a miner has to answer.")
    ] = 30.0,
    no_epochs: Annotated[
        bool, typer.Option("--no-epochs", help="Do not trigger due Yuma epochs (keeper duty).")
    ] = False,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Challenge generator seed (tests).")
    ] = None,
) -> None:
    """Score every serving miner each round, commit and reveal weights, run due epochs."""
    from chain.keys import resolve_account
    from chain.target import open_target
    from chain.token import parse_token_amount
    from validator.service import ValidatorConfig

    if not 0 <= port <= 65535:
        raise ConfigError(f"--port {port} is not a TCP port (0-65535)")
    if round_interval <= 0 or timeout <= 0:
        raise ConfigError("--round-interval and --timeout must be positive")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    target = open_target(network, rpc_url)
    allow_dev = target.network.dev_accounts
    account = resolve_account(
        keystore=keystore,
        wallet=wallet,
        hotkey=hotkey if wallet else None,
        dev_account=dev_account,
        allow_dev=allow_dev,
    )
    if payer_keystore is None and payer_wallet is None and payer_dev_account is None:
        raise ConfigError(
            "validators pay miners like renters, so checks look like renter traffic: pass "
            "--payer-wallet, --payer-keystore or (localnet) --payer-dev-account with an account "
            "that is not the hotkey and holds tokens"
        )
    payer = resolve_account(
        keystore=payer_keystore,
        wallet=payer_wallet,
        hotkey=None,
        dev_account=payer_dev_account,
        allow_dev=allow_dev,
    )
    if payer.address == account.address:
        raise ConfigError("the payer must not be the hotkey: miners would recognise the checks")
    config = ValidatorConfig(
        state_path=state or _default_state(account.address),
        model_id=model_id or model.name,
        checks_per_miner=checks_per_miner,
        round_interval_s=round_interval,
        request_timeout_s=timeout,
        seed=seed,
    )
    addresses = {
        name: target.address(name, flag=flag)
        for name, flag in (
            ("Metagraph", "metagraph"),
            ("PaymentEscrow", "escrow"),
            ("SubnetToken", "token"),
        )
    }
    epoch_address = target.optional_address("YumaConsensus")
    from protocol.serving import run_async  # uvloop when installed, as for the miner

    run_async(
        serve_validator(
            config,
            model_dir=model,
            w3=target.w3,
            addresses=addresses,
            epoch_address=epoch_address or None,
            hotkey=account,
            payer=payer,
            deposit=parse_token_amount(deposit, 18),
            host=host,
            port=port,
            run_epochs=not no_epochs,
        )
    )


async def serve_validator(
    config: ValidatorConfig,
    *,
    model_dir: Path,
    w3: Web3,
    addresses: dict[str, str],
    epoch_address: str | None,
    hotkey: LocalAccount,
    payer: LocalAccount,
    deposit: int,
    host: str = "127.0.0.1",
    port: int = 0,
    run_epochs: bool = True,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Build every part and run until SIGINT/SIGTERM (or ``stop``); ``on_ready`` gets the
    HTTP endpoint's URL once it listens."""
    import httpx

    from chain.epoch import EpochClient
    from chain.escrow import EscrowClient
    from chain.funding import EscrowFunder
    from chain.metagraph import MetagraphClient
    from chain.token import SubnetTokenClient
    from protocol.serving import serve_in_loop
    from validator.chain_view import LatentChain
    from validator.client import ChannelPayer, MinerClient
    from validator.service import Validator
    from validator.state import ValidatorState
    from validator.verify import AnswerVerifier, load_reference

    model, tokenizer = await asyncio.to_thread(load_reference, model_dir)
    state = await asyncio.to_thread(ValidatorState.load, config.state_path)
    metagraph = MetagraphClient(w3, addresses["Metagraph"])
    epoch = EpochClient(w3, epoch_address) if epoch_address else None
    chain = LatentChain(
        w3,
        metagraph,
        epoch,
        hotkey,
        state,
        state_path=str(config.state_path),
        run_epochs=run_epochs,
    )
    escrow = EscrowClient(w3, addresses["PaymentEscrow"])
    payer_state = config.state_path.with_name("channels.json")
    channel_payer = ChannelPayer(
        EscrowFunder(escrow, SubnetTokenClient(w3, addresses["SubnetToken"]), payer),
        state_path=payer_state,
        deposit=deposit,
        top_up_below=deposit // 4,
    )
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with httpx.AsyncClient(timeout=config.request_timeout_s) as http:
        client = MinerClient(http, channel_payer, timeout_s=config.request_timeout_s)
        verifier = AnswerVerifier(model, tokenizer, chain_id=escrow.chain_id)
        validator = Validator(config, chain=chain, verifier=verifier, client=client, state=state)
        async with serve_in_loop(validator.app(), host=host, port=port) as url:
            log.info("validator %s: state %s, endpoint %s", hotkey.address, config.state_path, url)
            if on_ready is not None:
                on_ready(url)
            await validator.run(stop)
    log.info("validator stopped; state saved in %s", config.state_path)


@app.command("status")
def status(
    state: Annotated[Path, typer.Option("--state", help="The validator's state file.")],
    json_out: JsonOpt = False,
) -> None:
    """Per-miner score, pass rate, tokens/s, TTFT, last commit and reveal."""
    from rich.table import Table

    from validator.state import ValidatorState

    if not state.exists():
        raise ConfigError(
            f"no validator state at {state}; pass the --state file `validator run` uses"
        )
    data = ValidatorState.load(state).to_status()
    if json_out:
        print(json.dumps(data, indent=2))
        return
    table = Table("hotkey", "score", "checks", "pass rate", "tok/s", "TTFT s", "last reason")
    for row in data["miners"]:
        table.add_row(
            row["hotkey"],
            f"{row['score']:.3f}",
            str(row["checks"]),
            f"{row['pass_rate']:.0%}",
            f"{row['tokens_per_s']:.1f}",
            f"{row['ttft_s']:.3f}",
            row["last_reason"][:40],
        )
    console = cli_console()
    print_table(table, console)
    console.print(
        f"round {data['round']}; last commit {data.get('last_commit')}; last reveal {data.get('last_reveal')}"
    )
