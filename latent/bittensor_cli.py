"""``latent bittensor ...``: read a real Bittensor subnet and post weights to subtensor.

Commands (mounted by ``latent.cli``)::

    latent bittensor metagraph --netuid N [--network finney|test|local|URL] [--weights] [--json]
    latent bittensor weights show --netuid N [--uid U] [--network ...] [--json]
    latent bittensor weights set --netuid N --wallet W [--hotkey H] [--wallet-path DIR]
        (--weights "uid=score,..." | --scores FILE.json) [--version-key K] [--block-time S] [--json]
    latent bittensor address 0xH160

``weights set`` signs with the wallet's sr25519 hotkey (bittensor-wallet files, encrypted or
plain; password from the prompt or ``$LATENT_WALLET_PASSWORD``) and sends ``set_weights`` or a
timelocked commit, whichever the subnet runs. ``--scores`` takes a JSON object of hotkey (SS58)
or uid to score.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from chain.bittensor import client as subtensor_client
from chain.bittensor.metagraph import RAO_PER_TAO, Metagraph
from chain.bittensor.ss58 import h160_to_ss58
from chain.cli_output import cli_console, print_table
from chain.errors import ConfigError

app = typer.Typer(
    help="A real Bittensor subnet on subtensor: metagraph, weights.", no_args_is_help=True
)
weights_app = typer.Typer(help="Weights on a subtensor subnet.", no_args_is_help=True)
app.add_typer(weights_app, name="weights")
console = cli_console()

NetuidOpt = Annotated[int, typer.Option("--netuid", help="Subnet id.")]
NetworkOpt = Annotated[
    str, typer.Option("--network", help="finney, test, local, or a ws(s):// URL.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
BlockTimeOpt = Annotated[
    float,
    typer.Option(
        "--block-time", help="Seconds per block (12 on finney/test, 0.25 on fast-blocks)."
    ),
]


def open_client(network: str, block_time: float = subtensor_client.BLOCK_TIME_SECONDS) -> Any:
    """The :class:`SubtensorClient` for ``network`` (tests replace this)."""
    return subtensor_client.SubtensorClient(
        subtensor_client.connect(network), block_time=block_time
    )


@app.command("metagraph")
def metagraph_cmd(
    netuid: NetuidOpt,
    network: NetworkOpt = "finney",
    with_weights: Annotated[
        bool, typer.Option("--weights", help="Also read every validator's weight row.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Every uid of a subnet: hotkey, coldkey, stake, permit, incentive, dividends, axon."""
    graph: Metagraph = open_client(network).metagraph(netuid, with_weights=with_weights)
    if json_out:
        print(json.dumps(graph.to_json(), indent=2))
        return
    hp = graph.hyperparameters
    if hp is not None:
        console.print(
            f"subnet {netuid} at block {graph.block}: tempo {hp.tempo}, weights rate limit "
            f"{hp.weights_rate_limit}, commit-reveal "
            f"{'on (v' + str(hp.commit_reveal_version) + ', reveal after ' + str(hp.reveal_period_epochs) + ' epochs)' if hp.commit_reveal_enabled else 'off'}, "
            f"version key {hp.weights_version_key}, min weights {hp.min_allowed_weights}, "
            f"max weight {hp.max_weight_limit / 65535:.4f}",
            highlight=False,
        )
    table = Table(
        "uid",
        "hotkey",
        "coldkey",
        "stake (α)",
        "permit",
        "incentive",
        "dividends",
        "vtrust",
        "last update",
        "axon",
    )
    for n in graph.neurons:
        table.add_row(
            str(n.uid),
            n.hotkey,
            n.coldkey,
            f"{n.stake_rao / RAO_PER_TAO:,.4f}",
            "yes" if n.validator_permit else "",
            f"{n.incentive:.5f}",
            f"{n.dividends:.5f}",
            f"{n.validator_trust:.5f}",
            str(n.last_update),
            f"{n.axon.ip}:{n.axon.port}" if n.axon.served else "",
        )
    print_table(table, console)


@weights_app.command("show")
def weights_show(
    netuid: NetuidOpt,
    network: NetworkOpt = "finney",
    uid: Annotated[int | None, typer.Option("--uid", help="Only this validator's row.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Validators' stored weight rows (u16, max-upscaled by the chain)."""
    rows = open_client(network).weights(netuid)
    if uid is not None:
        rows = {uid: rows.get(uid, ())}
    if json_out:
        print(json.dumps({str(k): [list(e) for e in v] for k, v in rows.items()}, indent=2))
        return
    table = Table("validator uid", "weights (uid: u16)")
    for k, v in rows.items():
        table.add_row(str(k), ", ".join(f"{d}: {w}" for d, w in v))
    print_table(table, console)


def parse_weights(text: str) -> dict[int, float]:
    """``"0=1.0,5=0.25"`` -> {0: 1.0, 5: 0.25}."""
    out: dict[int, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        uid, sep, value = part.partition("=")
        try:
            if not sep:
                raise ValueError(part)
            out[int(uid)] = float(value)
        except ValueError as exc:
            raise ConfigError(
                f"--weights takes uid=score pairs separated by commas, got {part!r}"
            ) from exc
    return out


def read_scores(path: Path) -> dict[str | int, float]:
    """A JSON object of hotkey (SS58) or uid to score."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read scores from {path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a JSON object of hotkey or uid -> score")
    return {(int(k) if k.isdigit() else k): float(v) for k, v in raw.items()}


@weights_app.command("set")
def weights_set(
    netuid: NetuidOpt,
    wallet: Annotated[str, typer.Option("--wallet", help="bittensor wallet name.")],
    hotkey: Annotated[str, typer.Option("--hotkey", help="Hotkey name in the wallet.")] = "default",
    wallet_path: Annotated[
        Path | None,
        typer.Option("--wallet-path", help="Default: $BT_WALLET_PATH or ~/.bittensor/wallets."),
    ] = None,
    weights: Annotated[
        str | None, typer.Option("--weights", help='uid=score pairs, e.g. "0=1,5=0.5".')
    ] = None,
    scores: Annotated[
        Path | None, typer.Option("--scores", help="JSON file: hotkey (SS58) or uid -> score.")
    ] = None,
    version_key: Annotated[
        int | None, typer.Option("--version-key", help="Default: the subnet's weights_version_key.")
    ] = None,
    network: NetworkOpt = "finney",
    block_time: BlockTimeOpt = subtensor_client.BLOCK_TIME_SECONDS,
    json_out: JsonOpt = False,
) -> None:
    """Post weights with the wallet's hotkey: set_weights, or a timelocked commit under commit-reveal."""
    from chain.bittensor.keyfile import PASSWORD_ENV, hotkey_path, is_encrypted, load_keyfile
    from chain.bittensor.target import SubtensorWeightsTarget

    if (weights is None) == (scores is None):
        raise ConfigError("give exactly one of --weights or --scores")
    path = hotkey_path(wallet, hotkey, wallet_path)
    password = None
    if path.exists() and is_encrypted(path.read_bytes()):
        password = os.environ.get(PASSWORD_ENV) or typer.prompt(
            f"password for {path}", hide_input=True
        )
    signer = load_keyfile(path, password=password)
    client = open_client(network, block_time)
    if weights is not None:
        posted = client.post_weights(
            signer, netuid, parse_weights(weights), version_key=version_key
        )
    else:
        assert scores is not None
        target = SubtensorWeightsTarget(client, signer, netuid, version_key=version_key)
        posted = target.post_weights(read_scores(scores))
    if json_out:
        print(json.dumps(asdict(posted), indent=2))
        return
    what = (
        f"committed (timelocked, revealed by the chain at drand round {posted.reveal_round})"
        if posted.mode == "commit_timelocked_weights"
        else "set"
    )
    console.print(
        f"{len(posted.uids)} weights {what} on subnet {netuid} by {signer.ss58_address}; "
        f"extrinsic {posted.extrinsic_hash}",
        highlight=False,
    )


@app.command("address")
def address_cmd(h160: Annotated[str, typer.Argument(help="EVM address 0x...")]) -> None:
    """The SS58 account that mirrors an EVM address on subtensor (where its TAO lives)."""
    print(h160_to_ss58(h160))
