"""``latent model ...``: build the models Latent serves (mounted by the lead as ``latent model``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from chain.paths import MODELS_DIR

# torch and transformers load inside the commands, so `latent --help` stays fast.

app = typer.Typer(help="Build and inspect models served by miners.", no_args_is_help=True)


#: Kept in step with ``miner.tiny_model.PRESETS`` (tested); listed here so --help stays fast.
MODEL_PRESETS = ("tiny", "small")


@app.command("tiny")
def tiny(
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Directory to write (default: models/<preset>)."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Weight seed; same seed, same bytes.")] = 0,
    preset: Annotated[
        str,
        typer.Option(
            "--preset",
            help="Architecture: tiny (tests, localnet) or small (hidden 512, 6 layers; benches).",
        ),
    ] = "tiny",
) -> None:
    """Build a deterministic generated model + tokenizer offline (no download)."""
    from chain.errors import ConfigError

    if preset not in MODEL_PRESETS:
        raise ConfigError(f"unknown --preset {preset!r}; choose one of {', '.join(MODEL_PRESETS)}")
    from miner.tiny_model import build_tiny_model, weights_hash

    path = build_tiny_model(
        out if out is not None else MODELS_DIR / preset, seed=seed, preset=preset
    )
    typer.echo(f"{preset} model written to {path}")
    typer.echo(f"weights hash: {weights_hash(path)}")


@app.command("hash")
def hash_(
    model_dir: Annotated[Path, typer.Argument(help="A save_pretrained directory.")],
) -> None:
    """Print the canonical sha256 of a model's safetensors weights (for on-chain pinning)."""
    from chain.errors import ConfigError

    if not model_dir.is_dir():
        raise ConfigError(f"no model directory at {model_dir}; pass a save_pretrained directory")
    if not any(model_dir.glob("*.safetensors")):
        raise ConfigError(f"no *.safetensors files in {model_dir}; is it a save_pretrained dir?")
    from miner.tiny_model import weights_hash

    typer.echo(weights_hash(model_dir))
