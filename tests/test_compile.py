"""Compiler driver: cache hits and misses, OpenZeppelin imports, errors with file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

import chain.compile as compile_mod
from chain.compile import collect_sources, compile_contracts
from chain.errors import CompileError

GOOD = """// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
contract Coin is ERC20 {
    constructor() ERC20("Coin", "C") {}
}
"""


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    (contracts / "Coin.sol").write_text(GOOD)
    return contracts


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = compile_mod._run_compiler

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(compile_mod, "_run_compiler", counted)
    return calls


def test_cache_miss_then_hit_then_miss_on_change(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    calls = _counting(monkeypatch)
    first = compile_contracts(contracts_dir=tree, out_dir=out)
    assert len(calls) == 1
    assert first["Coin"].bytecode.startswith("0x60")
    assert "ERC20" not in first  # library contracts are compiled but not published

    second = compile_contracts(contracts_dir=tree, out_dir=out)
    assert len(calls) == 1, "unchanged sources must be served from the cache"
    assert second["Coin"] == first["Coin"]

    (tree / "Coin.sol").write_text(GOOD.replace('"C"', '"C2"'))
    third = compile_contracts(contracts_dir=tree, out_dir=out)
    assert len(calls) == 2, "a changed source must be recompiled"
    assert third["Coin"].source_hash != first["Coin"].source_hash
    assert third["Coin"].bytecode != first["Coin"].bytecode

    compile_contracts(contracts_dir=tree, out_dir=out, force=True)
    assert len(calls) == 3


def test_artifact_records_provenance(tree: Path, tmp_path: Path) -> None:
    art = compile_contracts(contracts_dir=tree, out_dir=tmp_path / "out")["Coin"]
    assert art.source_path == "contracts/Coin.sol"
    assert art.compiler_version.startswith(compile_mod.SOLC_VERSION)
    assert any(entry.get("name") == "transfer" for entry in art.abi)


def test_imports_resolved_transitively(tree: Path) -> None:
    sources = collect_sources(tree)
    assert "@openzeppelin/contracts/token/ERC20/ERC20.sol" in sources
    assert "@openzeppelin/contracts/token/ERC20/IERC20.sol" in sources  # imported by ERC20


def test_compile_error_names_file_and_line(tree: Path, tmp_path: Path) -> None:
    (tree / "Broken.sol").write_text(
        "// SPDX-License-Identifier: MIT\npragma solidity ^0.8.24;\ncontract Broken {\n"
        "    function f() public { undefinedThing(); }\n}\n"
    )
    with pytest.raises(CompileError, match=r"contracts/Broken\.sol:4: DeclarationError"):
        compile_contracts(contracts_dir=tree, out_dir=tmp_path / "out")


def test_missing_import_is_a_clear_error(tree: Path, tmp_path: Path) -> None:
    (tree / "Lost.sol").write_text('pragma solidity ^0.8.24;\nimport "./Nowhere.sol";\n')
    with pytest.raises(CompileError, match=r"cannot find source 'contracts/Nowhere\.sol'"):
        compile_contracts(contracts_dir=tree, out_dir=tmp_path / "out")


def test_project_contracts_compile(artifacts: dict[str, compile_mod.Artifact]) -> None:
    assert artifacts["SubnetToken"].bytecode.startswith("0x")
    names = [a.name for a in artifacts.values()]
    assert len(names) == len(set(names))


def test_shipped_artifacts_match_a_fresh_compile() -> None:
    """chain/abi/ (package data for boxes without a compiler) must equal what the sources
    compile to now: run `latent compile` after changing a contract."""
    from chain.compile import SHIPPED_CONTRACTS, compile_contracts, shipped_artifacts

    fresh = compile_contracts()
    shipped = shipped_artifacts()
    assert sorted(shipped) == sorted(SHIPPED_CONTRACTS), "run `latent compile` to ship the ABIs"
    for name in SHIPPED_CONTRACTS:
        stale = f"chain/abi/{name}.json is stale: run `latent compile` and commit it"
        assert shipped[name].abi == fresh[name].abi, stale
        assert shipped[name].bytecode == fresh[name].bytecode, stale
        assert shipped[name].deployed_bytecode == fresh[name].deployed_bytecode, stale


def test_every_shipped_contract_fits_the_code_size_limits() -> None:
    """EIP-170 / EIP-3860 as CI's bytecode-size check (`latent compile --check` for people)."""
    from chain.compile import SHIPPED_CONTRACTS, shipped_artifacts

    shipped = shipped_artifacts()
    assert [p for name in SHIPPED_CONTRACTS for p in shipped[name].size_problems()] == []


def test_size_check_names_an_oversized_contract() -> None:
    big = compile_mod.Artifact(
        name="Big",
        abi=[],
        bytecode="0x" + "00" * (compile_mod.INITCODE_SIZE_LIMIT + 1),
        deployed_bytecode="0x" + "00" * (compile_mod.CODE_SIZE_LIMIT + 1),
        source_path="contracts/Big.sol",
        source_hash="",
        compiler_version="",
    )
    assert big.runtime_size == compile_mod.CODE_SIZE_LIMIT + 1
    problems = big.size_problems()
    assert len(problems) == 2 and "EIP-170" in problems[0] and "EIP-3860" in problems[1]
    fits = compile_mod.Artifact(**{**big.__dict__, "deployed_bytecode": "0x" + "00" * 24_576})
    assert fits.size_problems() == problems[1:]
