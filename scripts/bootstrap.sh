# Sourced by scripts/latent and scripts/test: installs whatever is missing, idempotently.
#   - a Python virtual environment in .venv with the project installed (editable) and its
#     dev tools; reinstalled only when pyproject.toml changes;
#   - the npm toolchain (solc, anvil, OpenZeppelin) from package-lock.json with `npm ci`;
#     reinstalled only when the lock file changes.
# torch: 2.13.0 is installed first when no torch is present, so pip takes the local CPU
# build instead of pulling several GB of CUDA wheels; set LATENT_TORCH_SPEC to override.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# Everything set-up prints goes to stderr: stdout belongs to the command (`--json`).
log() { printf '[setup] %s\n' "$*" >&2; }

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    log "Python 3.11 or newer is needed (found: $("$PYTHON" --version 2>&1)); set PYTHON=/path/to/python3.11"
    exit 1
fi
command -v npm >/dev/null || { log "npm (Node.js 18+) is needed for solc and anvil"; exit 1; }

if [ ! -x .venv/bin/python ]; then
    log "creating virtual environment .venv"
    "$PYTHON" -m venv .venv
fi
py_stamp=".venv/.latent-installed"
# The editable install records the top-level packages it saw: a new one needs a reinstall.
py_want="$( (cat pyproject.toml; ls -d */__init__.py) | sha256sum | cut -c1-64)"
if [ "$(cat "$py_stamp" 2>/dev/null || true)" != "$py_want" ]; then
    log "installing Python dependencies (first run takes a few minutes)"
    .venv/bin/python -m pip install --quiet --upgrade pip >&2
    if ! .venv/bin/python -c 'import torch' 2>/dev/null; then
        .venv/bin/python -m pip install --quiet --prefer-binary "${LATENT_TORCH_SPEC:-torch==2.13.0}" >&2
    fi
    .venv/bin/python -m pip install --quiet --prefer-binary -e ".[dev,bittensor-ref]" >&2
    echo "$py_want" > "$py_stamp"
fi

npm_stamp="node_modules/.latent-installed"
npm_want="$(cat package-lock.json | sha256sum | cut -c1-64)"
if [ "$(cat "$npm_stamp" 2>/dev/null || true)" != "$npm_want" ]; then
    log "installing npm toolchain (solc, anvil, OpenZeppelin)"
    npm ci --no-audit --no-fund --loglevel=error >&2
    echo "$npm_want" > "$npm_stamp"
fi
# Debian's chromium renders the dashboard in its headless-browser test. Installed when
# missing and we are root with apt; tried once per .venv (remove the stamp to retry).
chromium_stamp=".venv/.latent-chromium-tried"
if [ -z "${LATENT_CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1 \
    && [ ! -e "$chromium_stamp" ]; then
    touch "$chromium_stamp"
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        log "installing chromium (Debian package) for the dashboard's browser test"
        export DEBIAN_FRONTEND=noninteractive
        if ! apt-get install -y -qq chromium >/dev/null 2>&1; then
            apt-get update -qq >/dev/null 2>&1 || true
            apt-get install -y -qq chromium >/dev/null 2>&1 \
                || log "could not install chromium; the dashboard browser test will be skipped"
        fi
    else
        log "chromium not found: the dashboard browser test will be skipped" \
            "(install it with: sudo apt-get install -y chromium, or set LATENT_CHROMIUM)"
    fi
fi
export PATH="$ROOT/.venv/bin:$PATH"
