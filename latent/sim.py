"""``latent sim``: Yuma Consensus over scripted validators and miners (float64 model).

Miners have a true quality that drifts every epoch (one miner is bad: it serves nothing
useful). Validators, all staked and permitted:

* ``honest``: scores every miner each epoch (true quality with measurement noise);
* ``lazy``: set weights once at the start and never again (stale weights);
* ``copier``: never measures; copies the stake-weighted consensus of the weights it can
  see. Under commit-reveal it only sees weights once revealed, so it submits the
  consensus of the previous epoch, one epoch late;
* ``colluder``: a group that scores honestly but also votes up the bad miner.

The core (:func:`simulate`) is pure; the typer command prints tables or JSON.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import asdict, dataclass, field
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from chain.cli_options import JsonOpt
from chain.cli_output import cli_console, print_table
from chain.yuma.reference import epoch as yuma_epoch
from chain.yuma.reference import weighted_median
from chain.yuma.types import U16_MAX, EpochInputs, YumaParams

KINDS = ("honest", "lazy", "copier", "colluder")


@dataclass(frozen=True)
class ValidatorSpec:
    """One scripted validator."""

    name: str
    #: honest | lazy | copier | colluder.
    kind: str
    #: Stake in tokens.
    stake: float


def default_validators() -> list[ValidatorSpec]:
    """Two honest validators holding the majority, a lazy one, a copier, two colluders."""
    return [
        ValidatorSpec("honest-1", "honest", 300.0),
        ValidatorSpec("honest-2", "honest", 250.0),
        ValidatorSpec("lazy", "lazy", 100.0),
        ValidatorSpec("copier", "copier", 150.0),
        ValidatorSpec("colluder-1", "colluder", 100.0),
        ValidatorSpec("colluder-2", "colluder", 100.0),
    ]


@dataclass(frozen=True)
class SimConfig:
    """Simulation parameters."""

    #: Number of epochs to run.
    epochs: int = 30
    #: Good miners (one bad miner is added).
    good_miners: int = 6
    #: Seed of every random draw.
    seed: int = 7
    #: Blocks per epoch.
    tempo: int = 20
    #: Tokens minted per block.
    block_emission: float = 1.0
    #: Relative score noise of an honest measurement.
    noise: float = 0.05
    #: Relative quality drift of each good miner per epoch.
    drift: float = 0.35
    #: Whether weights are committed and revealed an epoch later.
    commit_reveal: bool = True
    params: YumaParams = field(default_factory=YumaParams)
    validators: list[ValidatorSpec] = field(default_factory=default_validators)


@dataclass(frozen=True)
class EpochRecord:
    """What one epoch paid."""

    epoch: int
    #: Validator name -> dividends (fraction of the validator pool).
    dividends: dict[str, float]
    #: Validator name -> validator trust.
    vtrust: dict[str, float]
    #: Validator name -> tokens earned this epoch per staked token.
    yield_per_stake: dict[str, float]
    #: Miner name -> incentive.
    incentive: dict[str, float]


@dataclass(frozen=True)
class SimResult:
    """All epochs plus per-validator totals."""

    records: list[EpochRecord]
    #: Validator name -> total tokens earned per staked token over the run.
    total_yield: dict[str, float]
    #: Validator name -> kind.
    kinds: dict[str, str]

    def mean_yield(self, kind: str) -> float:
        """Mean total yield per stake of the validators of one kind."""
        values = [y for name, y in self.total_yield.items() if self.kinds[name] == kind]
        return sum(values) / len(values) if values else 0.0


def _to_u16(scores: list[float]) -> list[int]:
    """Max-upscale to u16 like the chain stores weights."""
    top = max(scores, default=0.0)
    if top <= 0.0:
        return [0] * len(scores)
    return [round(max(s, 0.0) / top * U16_MAX) for s in scores]


def _stake_weighted_consensus(
    rows: list[list[int]], stakes: list[float], kappa: int, n: int
) -> list[float]:
    """The kappa-median a copier computes from the weight rows it can see."""
    normalised = []
    for row in rows:
        total = sum(row)
        normalised.append([w / total if total else 0.0 for w in row])
    return [weighted_median([r[j] for r in normalised], stakes, kappa) for j in range(n)]


def simulate(config: SimConfig) -> SimResult:
    """Run ``config.epochs`` epochs of the float64 Yuma model; pure and deterministic."""
    for spec in config.validators:
        if spec.kind not in KINDS:
            raise ValueError(f"unknown validator kind {spec.kind!r}; use one of {KINDS}")
    rng = random.Random(config.seed)
    specs = config.validators
    v = len(specs)
    miner_names = [f"miner-{k}" for k in range(config.good_miners)] + ["bad-miner"]
    m = len(miner_names)
    n = v + m  # uids 0..v-1 are validators, v.. are miners
    bad = n - 1
    quality = [rng.uniform(0.5, 1.5) for _ in range(config.good_miners)] + [0.0]

    def measure(noise: float) -> list[float]:
        scores = [0.0] * n
        for k in range(m):
            scores[v + k] = quality[k] * (1.0 + rng.gauss(0.0, noise))
        return scores

    weights: list[list[int]] = [[0] * n for _ in range(v)]
    last_update = [0] * v
    revealed: list[list[int]] = [[0] * n for _ in range(v)]  # what a copier can see
    bonds: list[list[float]] | None = None
    stakes = [spec.stake for spec in specs]
    records: list[EpochRecord] = []
    total = dict.fromkeys((s.name for s in specs), 0.0)

    for t in range(config.epochs):
        block = (t + 1) * config.tempo
        visible = revealed if config.commit_reveal else None
        submitted: list[list[int]] = []
        for i, spec in enumerate(specs):
            if spec.kind == "honest" or (spec.kind == "lazy" and t == 0):
                row = _to_u16(measure(config.noise))
            elif spec.kind == "colluder":
                scores = measure(config.noise)
                scores[bad] = max(scores) * 1.5
                row = _to_u16(scores)
            elif spec.kind == "copier":
                source = visible if visible is not None else submitted_so_far(submitted, weights)
                consensus = _stake_weighted_consensus(source, stakes, config.params.kappa, n)
                row = _to_u16(consensus) if any(consensus) else _to_u16(measure(1.0))
            else:  # lazy after the first epoch keeps its old weights
                submitted.append(weights[i])
                continue
            submitted.append(row)
            last_update[i] = block - 1
        # Under commit-reveal the weights in force this epoch are the ones committed in
        # the previous epoch, revealed now; the copier's view lags by one more epoch.
        revealed = weights
        weights = submitted

        inp = EpochInputs(
            n=n,
            validator_uids=list(range(v)),
            stakes=[round(s * 10**6) for s in stakes],
            permits=[True] * v,
            last_update=list(last_update),
            registration_blocks=[0] * n,
            weights=weights,
            bonds=[[0] * n for _ in range(v)],
            current_block=block,
            last_epoch_block=block - config.tempo,
            minted=0,
            params=config.params,
        )
        out = yuma_epoch(inp, bonds=bonds)
        bonds = out.bonds
        pool = config.block_emission * config.tempo
        validator_pool = pool * 0.41
        yields = {}
        for i, spec in enumerate(specs):
            earned = validator_pool * out.dividends[i] / spec.stake
            yields[spec.name] = earned
            total[spec.name] += earned
        records.append(
            EpochRecord(
                epoch=t,
                dividends={s.name: out.dividends[i] for i, s in enumerate(specs)},
                vtrust={s.name: out.validator_trust[i] for i, s in enumerate(specs)},
                yield_per_stake=yields,
                incentive={name: out.incentive[v + k] for k, name in enumerate(miner_names)},
            )
        )
        # Miner quality drifts (the reason stale or copied weights lose value).
        for k in range(config.good_miners):
            quality[k] = max(0.05, quality[k] * math.exp(rng.gauss(0.0, config.drift)))

    return SimResult(records, total, {s.name: s.kind for s in specs})


def submitted_so_far(submitted: list[list[int]], previous: list[list[int]]) -> list[list[int]]:
    """Without commit-reveal a copier sees the weights already set this epoch (and the
    previous ones of validators that have not set theirs yet)."""
    return submitted + previous[len(submitted) :]


def render(result: SimResult, console: Console) -> None:
    """Per-epoch dividends and incentive tables, then the yield summary."""
    names = list(result.kinds)
    table = Table(title="dividends per epoch (validator trust in brackets)")
    table.add_column("epoch", justify="right")
    for name in names:
        table.add_column(name, justify="right")
    for r in result.records:
        table.add_row(
            str(r.epoch),
            *(f"{r.dividends[nm]:.3f} ({r.vtrust[nm]:.2f})" for nm in names),
        )
    print_table(table, console)

    miners = list(result.records[0].incentive) if result.records else []
    table = Table(title="miner incentive per epoch")
    table.add_column("epoch", justify="right")
    for name in miners:
        table.add_column(name, justify="right")
    for r in result.records:
        table.add_row(str(r.epoch), *(f"{r.incentive[nm]:.3f}" for nm in miners))
    print_table(table, console)

    honest = result.mean_yield("honest")
    table = Table(title="total validator yield (tokens per staked token)")
    for col in ("validator", "kind", "yield", "vs honest"):
        table.add_column(col, justify="right" if col in ("yield", "vs honest") else "left")
    for name in names:
        y = result.total_yield[name]
        rel = f"{y / honest:.1%}" if honest else "-"
        table.add_row(name, result.kinds[name], f"{y:.4f}", rel)
    print_table(table, console)
    if honest and "copier" in result.kinds.values():
        console.print(
            f"weight copier earned {result.mean_yield('copier') / honest:.1%} of an honest "
            "validator's yield per staked token"
        )


def sim(
    epochs: Annotated[int, typer.Option(min=1, help="Epochs to run.")] = 30,
    miners: Annotated[int, typer.Option(min=1, help="Good miners (plus one bad).")] = 6,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
    commit_reveal: Annotated[
        bool, typer.Option(help="Weights revealed one epoch late (copiers lag).")
    ] = True,
    liquid_alpha: Annotated[bool, typer.Option(help="Per-entry liquid alpha bond EMA.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Simulate Yuma Consensus epochs over honest, lazy, copier and colluding validators."""
    config = SimConfig(
        epochs=epochs,
        good_miners=miners,
        seed=seed,
        commit_reveal=commit_reveal,
        params=YumaParams(liquid_alpha=liquid_alpha),
    )
    result = simulate(config)
    if json_out:
        payload = {
            "config": {k: v for k, v in asdict(config).items() if k != "validators"},
            "validators": [asdict(s) for s in config.validators],
            "epochs": [asdict(r) for r in result.records],
            "total_yield": result.total_yield,
            "mean_yield": {k: result.mean_yield(k) for k in KINDS},
        }
        typer.echo(json.dumps(payload, indent=2))
        return
    render(result, cli_console())


app = typer.Typer(help="Simulate Yuma Consensus (float64 model).", no_args_is_help=False)
app.command("sim")(sim)
