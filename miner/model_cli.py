"""``latent model ...``: build the models Latent serves (mounted by the lead as ``latent model``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from chain.paths import MODELS_DIR

# torch and transformers load inside the commands, so `latent --help` stays fast.
DEFAULT_TINY_MODEL_DIR = MODELS_DIR / "tiny"

app = typer.Typer(help="Build and inspect models served by miners.", no_args_is_help=True)


@app.command("tiny")
def tiny(
    out: Annotated[
        Path, typer.Option("--out", help="Directory to write.")
    ] = DEFAULT_TINY_MODEL_DIR,
    seed: Annotated[int, typer.Option("--seed", help="Weight seed; same seed, same bytes.")] = 0,
) -> None:
    """Build the tiny deterministic test model + tokenizer offline (no download)."""
    from miner.tiny_model import build_tiny_model, weights_hash

    path = build_tiny_model(out, seed=seed)
    typer.echo(f"tiny model written to {path}")
    typer.echo(f"weights hash: {weights_hash(path)}")


@app.command("hash")
def hash_(
    model_dir: Annotated[Path, typer.Argument(help="A save_pretrained directory.")],
) -> None:
    """Print the canonical sha256 of a model's safetensors weights (for on-chain pinning)."""
    from miner.tiny_model import weights_hash

    typer.echo(weights_hash(model_dir))
