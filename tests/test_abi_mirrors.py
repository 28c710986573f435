"""The Python mirrors of contract types stay in step with the contracts: enum members (from
the interface sources, which the ABI does not name), struct fields (from the ABI)."""

from __future__ import annotations

import re
from dataclasses import fields
from enum import IntEnum

import pytest

from chain.compile import compile_contracts
from chain.epoch import Phase
from chain.metagraph import HyperParam, Hyperparameters, NeuronInfo
from chain.paths import CONTRACTS_DIR


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _solidity_enum(interface: str, enum: str) -> list[str]:
    source = (CONTRACTS_DIR / "interfaces" / f"{interface}.sol").read_text()
    body = re.search(rf"enum {enum}\s*\{{(.*?)\}}", source, re.S)
    assert body is not None, f"no enum {enum} in {interface}.sol"
    text = re.sub(r"//[^\n]*", "", body.group(1))
    return [m.strip() for m in text.split(",") if m.strip()]


def _abi_output_fields(contract: str, function: str) -> list[str]:
    abi = compile_contracts()[contract].abi
    (entry,) = [e for e in abi if e.get("type") == "function" and e["name"] == function]
    (output,) = entry["outputs"]
    components = output["components"]
    return [c["name"] for c in components]


@pytest.mark.parametrize(
    ("mirror", "interface", "enum"),
    [(HyperParam, "IMetagraph", "Param"), (Phase, "IYumaConsensus", "Phase")],
)
def test_enum_mirrors_match_the_interfaces(
    mirror: type[IntEnum], interface: str, enum: str
) -> None:
    members = _solidity_enum(interface, enum)
    assert [m.name for m in sorted(mirror, key=int)] == [_snake(m).upper() for m in members]


def test_struct_mirrors_match_the_abi() -> None:
    assert [f.name for f in fields(Hyperparameters)] == [
        _snake(n) for n in _abi_output_fields("Metagraph", "hyperparameters")
    ]
    view = [_snake(n) for n in _abi_output_fields("Metagraph", "neurons")]
    assert set(view) <= {f.name for f in fields(NeuronInfo)} | {"validator_permit"}
