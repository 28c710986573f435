"""``latent bench gauntlet`` and ``latent bench verify`` (mounted by ``latent.cli``).

Kept apart from the benchmarks themselves so that importing the CLI does not import torch.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from chain.cli_options import JsonOpt
from chain.cli_output import cli_console, print_table
from chain.errors import ConfigError

__all__ = ["bench_gauntlet", "bench_verify"]

ModelOpt = Annotated[
    Path | None, typer.Option("--model", help="Model directory (default: build --preset).")
]
PresetOpt = Annotated[
    str,
    typer.Option("--preset", help="Generated model to build when --model is absent: tiny|small."),
]
ThreadsOpt = Annotated[
    int | None,
    typer.Option("--threads", help="torch CPU threads (1 is fastest for the tiny model)."),
]


@contextmanager
def _model_dir(model: Path | None, preset: str) -> Iterator[tuple[Path, str | None]]:
    """``(directory, preset label)``: ``model`` as given, or ``preset`` built into a
    temporary directory (removed afterwards)."""
    if model is not None:
        yield model, None
        return
    from miner.tiny_model import PRESETS, build_tiny_model

    if preset not in PRESETS:
        raise ConfigError(f"unknown --preset {preset!r}; choose one of {', '.join(PRESETS)}")
    with tempfile.TemporaryDirectory(prefix="latent-bench-") as tmp:
        yield build_tiny_model(Path(tmp) / preset, seed=0, preset=preset), preset


def _set_threads(threads: int | None) -> None:
    if threads is not None:
        if threads < 1:
            raise ConfigError("--threads must be >= 1")
        import torch

        torch.set_num_threads(threads)


def bench_gauntlet(
    json_out: JsonOpt = False,
    checks: Annotated[int, typer.Option("--checks", help="Checks per cheat.")] = 100,
    honest_checks: Annotated[
        int, typer.Option("--honest-checks", help="Checks of the honest miner.")
    ] = 1000,
    model: ModelOpt = None,
    preset: PresetOpt = "tiny",
    seed: Annotated[int, typer.Option("--seed", help="Challenge seed.")] = 0,
    with_checks: Annotated[
        bool, typer.Option("--with-checks", help="Include every check's record in the JSON.")
    ] = False,
    threads: ThreadsOpt = None,
) -> None:
    """Detection rate of every cheating miner and the honest false-positive rate."""
    from validator.gauntlet import run_gauntlet

    if checks < 0 or honest_checks < 1:
        raise ConfigError("--checks must be >= 0 and --honest-checks >= 1")
    _set_threads(threads)
    with _model_dir(model, preset) as (model_dir, label):
        report = run_gauntlet(
            model_dir,
            checks_per_cheat=checks,
            honest_checks=honest_checks,
            seed=seed,
            preset=label,
            progress=None if json_out else (lambda line: typer.echo(line, err=True)),
        )
    if json_out:
        print(json.dumps(report.to_json(with_checks=with_checks), indent=2))
        return
    from rich.table import Table

    table = Table("miner", "checks", "rejected", "rate", "tokens/s", "TTFT ms", "top reason")
    for s in (report.honest, *report.cheats.values()):
        table.add_row(
            s.name,
            str(s.checks),
            str(s.rejected),
            f"{s.rejection_rate:.1%}",
            f"{s.tokens_per_s:.0f}",
            f"{s.ttft_s_mean * 1e3:.1f}",
            next(iter(s.reasons), ""),
        )
    console = cli_console()
    print_table(table, console)
    console.print(
        f"verify {report.verify_s['mean'] * 1e3:.1f} ms per check (mean); "
        f"wall {report.wall_s:.0f} s"
    )


def bench_verify(
    json_out: JsonOpt = False,
    model: ModelOpt = None,
    preset: PresetOpt = "tiny",
    new_tokens: Annotated[
        str, typer.Option("--new-tokens", help="Comma-separated completion lengths.")
    ] = "64,256,1024",
    repeats: Annotated[int, typer.Option("--repeats", help="Best of this many runs.")] = 3,
    mix: Annotated[int, typer.Option("--mix", help="Challenges in the throughput mix.")] = 48,
    threads: ThreadsOpt = None,
) -> None:
    """Verify time / generate time per completion length, and checks per minute."""
    from validator.bench_verify import run_verify_bench

    try:
        lengths = tuple(int(x) for x in new_tokens.split(",") if x.strip())
    except ValueError:
        raise ConfigError(
            f"--new-tokens must be comma-separated integers, got {new_tokens!r}"
        ) from None
    _set_threads(threads)
    with _model_dir(model, preset) as (model_dir, label):
        report = run_verify_bench(
            model_dir, new_tokens=lengths, repeats=repeats, mix_checks=mix, preset=label
        )
    if json_out:
        print(json.dumps(report, indent=2))
        return
    from rich.table import Table

    table = Table("new tokens", "mode", "generate s", "verify s", "verify/generate")
    for row in report["lengths"]:
        table.add_row(
            str(row["new_tokens"]),
            row["mode"],
            f"{row['generate_s']:.3f}",
            f"{row['verify_s']:.4f}",
            f"{row['verify_over_generate']:.3f}",
        )
    console = cli_console()
    print_table(table, console)
    t = report["throughput"]
    console.print(
        f"throughput: {t['checks_per_minute']:.0f} checks/min "
        f"({t['verify_ms_mean']:.1f} ms per check, mix of {t['checks']})"
    )
