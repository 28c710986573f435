"""Compile ``contracts/`` with py-solc-x and cache the artifacts.

Compiler choice: a native ``solc`` on PATH whose version matches :data:`SOLC_VERSION` is
used when present; otherwise the npm ``solc`` package (the official compiler built to
WebAssembly, pinned in ``package.json``) is driven through ``chain/solcjs_shim.js``, which
answers ``--version`` and ``--standard-json`` like the native binary. Either way the call
goes through ``solcx.compile_standard``.

Imports are resolved here, not by the compiler: every source the tree reaches (project
files and ``@openzeppelin/contracts/...`` from ``node_modules``) is passed by content, so
the native and WebAssembly compilers see identical input and the cache key covers every
byte that affects the output.

Cache: ``build/artifacts/<Name>.json`` per contract plus ``build/artifacts/_index.json``
holding the input hash. The whole tree is recompiled when any source, the compiler
version or the settings change; otherwise artifacts are read from disk.

Shipped artifacts: the deployable contracts' ABI and bytecode are also package data
(``chain/abi/<Name>.json``), written by ``latent compile`` and checked against a fresh
compile by the tests (a stale file fails CI). :func:`artifact` uses them when no compiler
is available, so miner, validator and renter boxes need neither Node.js nor solc; where the
toolchain exists (development, deployment, tests) it compiles (cached), so a contract
change is seen at once.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chain.errors import CompileError
from chain.jsonfile import write_text_atomic
from chain.paths import ARTIFACTS_DIR, CONTRACTS_DIR, NODE_MODULES, REPO_ROOT

SOLC_VERSION = "0.8.30"
EVM_VERSION = "cancun"
#: Low enough that YumaConsensus stays under the 24,576-byte code limit (EIP-170); its hot
#: loops are assembly, which the runs setting hardly changes.
OPTIMIZER_RUNS = 500
CACHE_SCHEMA = 1
#: EIP-170: the most runtime code a contract may have.
CODE_SIZE_LIMIT = 24_576
#: EIP-3860: the most init code a creation transaction may carry.
INITCODE_SIZE_LIMIT = 49_152

_IMPORT_RE = re.compile(r"""^\s*import\s+(?:[^'"]*?\s+from\s+)?["']([^"']+)["']""", re.MULTILINE)
_SHIM = Path(__file__).resolve().parent / "solcjs_shim.js"


@dataclass(frozen=True)
class Artifact:
    """One compiled contract: what deploying and calling it needs, and where it came from."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str
    source_path: str
    source_hash: str
    compiler_version: str

    @property
    def runtime_size(self) -> int:
        """Bytes of deployed (runtime) code."""
        return len(self.deployed_bytecode.removeprefix("0x")) // 2

    @property
    def initcode_size(self) -> int:
        """Bytes of creation code (before constructor arguments)."""
        return len(self.bytecode.removeprefix("0x")) // 2

    def size_problems(self) -> list[str]:
        """Why this contract could not be deployed on mainnet-rule chains (empty: it can)."""
        problems = []
        if self.runtime_size > CODE_SIZE_LIMIT:
            problems.append(
                f"{self.name}: runtime code {self.runtime_size:,} bytes is over the EIP-170 "
                f"limit of {CODE_SIZE_LIMIT:,}"
            )
        if self.initcode_size > INITCODE_SIZE_LIMIT:
            problems.append(
                f"{self.name}: init code {self.initcode_size:,} bytes is over the EIP-3860 "
                f"limit of {INITCODE_SIZE_LIMIT:,}"
            )
        return problems

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "abi": self.abi,
            "bytecode": self.bytecode,
            "deployedBytecode": self.deployed_bytecode,
            "sourcePath": self.source_path,
            "sourceHash": self.source_hash,
            "compilerVersion": self.compiler_version,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Artifact:
        return cls(
            name=data["name"],
            abi=data["abi"],
            bytecode=data["bytecode"],
            deployed_bytecode=data["deployedBytecode"],
            source_path=data["sourcePath"],
            source_hash=data["sourceHash"],
            compiler_version=data["compilerVersion"],
        )


def _settings() -> dict[str, Any]:
    return {
        "optimizer": {"enabled": True, "runs": OPTIMIZER_RUNS},
        "evmVersion": EVM_VERSION,
        "outputSelection": {
            "*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}
        },
    }


def _resolve_import(importer: str, target: str) -> str:
    """Source unit name for ``import target`` written in the source unit ``importer``."""
    if target.startswith("./") or target.startswith("../"):
        parts: list[str] = importer.split("/")[:-1]
        for piece in target.split("/"):
            if piece == "..":
                if not parts:
                    raise CompileError(f"{importer}: import {target!r} climbs above the root")
                parts.pop()
            elif piece != ".":
                parts.append(piece)
        return "/".join(parts)
    return target


def _read_unit(unit: str, contracts_dir: Path) -> str:
    if unit.startswith("@"):
        path = NODE_MODULES / unit
        hint = "run `npm ci` (the README's set-up commands do it)"
    else:
        path = contracts_dir.parent / unit
        hint = "check the import path"
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CompileError(f"cannot find source {unit!r} ({path}): {hint}") from None


def collect_sources(contracts_dir: Path = CONTRACTS_DIR) -> dict[str, str]:
    """Every source unit reachable from ``contracts_dir``: unit name -> content."""
    if not contracts_dir.is_dir():
        raise CompileError(f"no contracts folder at {contracts_dir}")
    root = contracts_dir.parent
    pending = sorted(str(p.relative_to(root)) for p in contracts_dir.rglob("*.sol"))
    sources: dict[str, str] = {}
    while pending:
        unit = pending.pop()
        if unit in sources:
            continue
        text = _read_unit(unit, contracts_dir)
        sources[unit] = text
        for target in _IMPORT_RE.findall(text):
            resolved = _resolve_import(unit, target)
            if resolved not in sources:
                pending.append(resolved)
    return dict(sorted(sources.items()))


def find_solc() -> Path:
    """The compiler binary py-solc-x will run: native solc if it matches, else the npm shim."""
    native = shutil.which("solc")
    if native:
        try:
            out = subprocess.run(
                [native, "--version"], capture_output=True, text=True, timeout=30
            ).stdout
        except (OSError, subprocess.TimeoutExpired):
            out = ""
        if f"Version: {SOLC_VERSION}" in out:
            return Path(native)
    if not (NODE_MODULES / "solc" / "package.json").is_file():
        raise CompileError(
            f"no solc {SOLC_VERSION} found: install it with `npm ci` in {REPO_ROOT} "
            "(the README's set-up commands do it) or put a native solc on PATH"
        )
    if shutil.which("node") is None:
        raise CompileError("the npm solc compiler needs Node.js (`node`) on PATH")
    return _SHIM


def _input_hash(sources: dict[str, str], compiler: str) -> str:
    h = hashlib.sha256()
    h.update(
        json.dumps(
            {"schema": CACHE_SCHEMA, "compiler": compiler, "settings": _settings()}, sort_keys=True
        ).encode()
    )
    for unit, text in sources.items():
        h.update(unit.encode() + b"\0" + text.encode() + b"\0")
    return h.hexdigest()


def _format_errors(errors: list[dict[str, Any]], sources: dict[str, str]) -> str:
    lines = []
    for err in errors:
        if err.get("severity") != "error":
            continue
        loc = err.get("sourceLocation") or {}
        file = loc.get("file", "?")
        line = "?"
        start = loc.get("start")
        if isinstance(start, int) and start >= 0 and file in sources:
            # solc offsets are in bytes of the UTF-8 source
            line = str(sources[file].encode()[:start].count(b"\n") + 1)
        lines.append(f"{file}:{line}: {err.get('type', 'Error')}: {err.get('message', '').strip()}")
    # One line, so the CLI error stays one line; the first error is usually the cause.
    return "; ".join(lines) or "the compiler reported errors without a location"


def _run_compiler(solc: Path, sources: dict[str, str]) -> dict[str, Any]:
    import solcx
    from solcx.exceptions import SolcError

    input_json = {
        "language": "Solidity",
        "sources": {unit: {"content": text} for unit, text in sources.items()},
        "settings": _settings(),
    }
    env_before = os.environ.get("LATENT_NODE_MODULES")
    os.environ["LATENT_NODE_MODULES"] = str(NODE_MODULES)
    try:
        return solcx.compile_standard(input_json, solc_binary=solc)  # type: ignore[no-any-return]
    except SolcError as exc:
        # compile_standard raises on severity=error; re-run its parse to show file:line.
        errors: list[dict[str, Any]] = list(exc.error_dict or [])
        message = _format_errors(errors, sources) if errors else exc.message
        raise CompileError(f"Solidity compilation failed: {message}") from None
    except (OSError, ValueError) as exc:  # binary missing / not executable / bad output
        raise CompileError(f"could not run the Solidity compiler {solc}: {exc}") from None
    finally:
        if env_before is None:
            os.environ.pop("LATENT_NODE_MODULES", None)
        else:
            os.environ["LATENT_NODE_MODULES"] = env_before


def compiler_version(solc: Path | None = None) -> str:
    """Full version string (with commit) of the compiler that would be used.

    Asking the compiler starts a process (Node.js for the npm build, ~0.4 s), so the answer
    is remembered in ``build/`` per binary and its modification time: a cache hit in
    :func:`compile_contracts` then starts no process at all.
    """
    binary = solc or find_solc()
    # The shim's answer changes when the npm package does, not when the shim does.
    stamp_file = NODE_MODULES / "solc" / "package.json" if binary == _SHIM else binary
    key = f"{binary}:{stamp_file.stat().st_mtime_ns}"
    memo = ARTIFACTS_DIR.parent / "compiler-version.json"
    try:
        known = json.loads(memo.read_text())
        if known.get("key") == key:
            return str(known["version"])
    except (OSError, ValueError, KeyError):
        pass  # no memo yet, or a damaged one: ask the compiler
    import solcx.wrapper

    os.environ.setdefault("LATENT_NODE_MODULES", str(NODE_MODULES))
    version = solcx.wrapper.get_version_str_from_solc_binary(binary)
    memo.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(memo, json.dumps({"key": key, "version": version}), mode=0o644)
    return version


def _source_hash(text: str) -> str:
    return "0x" + hashlib.sha256(text.encode()).hexdigest()


def compile_contracts(
    *, force: bool = False, contracts_dir: Path = CONTRACTS_DIR, out_dir: Path = ARTIFACTS_DIR
) -> dict[str, Artifact]:
    """Compile every contract under ``contracts_dir`` (cached); name -> :class:`Artifact`.

    Raises :class:`CompileError` with ``file:line`` locations when the sources don't compile.
    """
    sources = collect_sources(contracts_dir)
    solc = find_solc()
    version = compiler_version(solc)
    key = _input_hash(sources, version)
    index_path = out_dir / "_index.json"
    if not force and index_path.is_file():
        try:
            index = json.loads(index_path.read_text())
            if index.get("inputHash") == key:
                return {
                    name: Artifact.from_json(json.loads((out_dir / f"{name}.json").read_text()))
                    for name in index["contracts"]
                }
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache is rebuilt below
    output = _run_compiler(solc, sources)
    project_prefix = contracts_dir.name + "/"
    artifacts: dict[str, Artifact] = {}
    for unit, contracts in output.get("contracts", {}).items():
        if not unit.startswith(project_prefix):
            continue  # library sources (OpenZeppelin) are compiled but not published
        for name, data in contracts.items():
            if name in artifacts:
                raise CompileError(
                    f"two contracts are named {name!r} ({artifacts[name].source_path} and {unit});"
                    " contract names must be unique"
                )
            artifacts[name] = Artifact(
                name=name,
                abi=data["abi"],
                bytecode="0x" + data["evm"]["bytecode"]["object"],
                deployed_bytecode="0x" + data["evm"]["deployedBytecode"]["object"],
                source_path=unit,
                source_hash=_source_hash(sources[unit]),
                compiler_version=version,
            )
    _write_cache(out_dir, key, artifacts)
    return artifacts


def _write_cache(out_dir: Path, key: str, artifacts: dict[str, Artifact]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, art in artifacts.items():
        write_text_atomic(out_dir / f"{name}.json", json.dumps(art.to_json(), indent=1), mode=0o644)
    # The index goes last: a reader that sees the new key also sees every artifact.
    write_text_atomic(
        out_dir / "_index.json",
        json.dumps({"inputHash": key, "contracts": sorted(artifacts)}),
        mode=0o644,
    )


#: What ``chain/abi/`` ships: the contracts a deployment consists of.
SHIPPED_CONTRACTS = ("SubnetToken", "Metagraph", "PaymentEscrow", "YumaConsensus")
SHIPPED_DIR = Path(__file__).resolve().parent / "abi"

_LOADED: dict[str, Artifact] | None = None


def shipped_artifacts(directory: Path = SHIPPED_DIR) -> dict[str, Artifact]:
    """The artifacts shipped as package data (empty when none are there)."""
    out: dict[str, Artifact] = {}
    for name in SHIPPED_CONTRACTS:
        path = directory / f"{name}.json"
        if path.is_file():
            out[name] = Artifact.from_json(json.loads(path.read_text()))
    return out


def write_shipped_artifacts(
    artifacts: dict[str, Artifact], directory: Path = SHIPPED_DIR
) -> list[Path]:
    """Write the deployable contracts' artifacts as package data; returns the files."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in SHIPPED_CONTRACTS:
        path = directory / f"{name}.json"
        write_text_atomic(path, json.dumps(artifacts[name].to_json(), indent=1) + "\n", mode=0o644)
        written.append(path)
    return written


def _load() -> dict[str, Artifact]:
    global _LOADED
    if _LOADED is None:
        try:
            _LOADED = compile_contracts()
        except CompileError as exc:
            shipped = shipped_artifacts()
            if not shipped:
                raise CompileError(
                    f"{exc}; and this installation ships no compiled contracts (chain/abi)"
                ) from None
            _LOADED = shipped
    return _LOADED


def artifact(name: str) -> Artifact:
    """The artifact for contract ``name``: compiled (cached) where a compiler exists, else
    the shipped one."""
    try:
        return _load()[name]
    except KeyError:
        raise CompileError(f"no contract named {name!r} under contracts/") from None


def all_artifacts() -> dict[str, Artifact]:
    """Every project artifact: compiled where a compiler exists, else the shipped ones."""
    return dict(_load())
