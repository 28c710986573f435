"""Where the repository keeps things: one place, so nothing guesses paths twice."""

from __future__ import annotations

import os
from pathlib import Path

#: Repository root (the folder holding pyproject.toml). Overridable for installed copies.
REPO_ROOT = Path(os.environ.get("LATENT_ROOT", Path(__file__).resolve().parent.parent))
CONTRACTS_DIR = REPO_ROOT / "contracts"
NODE_MODULES = REPO_ROOT / "node_modules"
BUILD_DIR = REPO_ROOT / "build"
ARTIFACTS_DIR = BUILD_DIR / "artifacts"
DEPLOY_DIR = REPO_ROOT / "deploy"
MODELS_DIR = BUILD_DIR / "models"
