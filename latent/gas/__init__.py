"""``latent bench gas``: gas per operation, measured from real receipts on a fresh anvil.

Each module in this package (one per area: token, escrow, metagraph, yuma...) exposes
``measure(w3, accounts) -> dict[str, int]``; :func:`measure_all` runs every one of them
against its own chain snapshot so areas do not disturb each other.
"""

from __future__ import annotations

import importlib
import pkgutil

from chain.keys import dev_accounts
from chain.node import AnvilNode, revert, snapshot


def scenario_modules() -> list[str]:
    """Names of the areas measured (modules of this package)."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def measure_all(areas: list[str] | None = None) -> dict[str, dict[str, int]]:
    """area -> operation -> gas used, on a fresh anvil node with dev accounts."""
    report: dict[str, dict[str, int]] = {}
    accounts = dev_accounts(10)
    with AnvilNode() as node:
        w3 = node.web3()
        for area in areas or scenario_modules():
            module = importlib.import_module(f"{__name__}.{area}")
            snap = snapshot(w3)
            try:
                report[area] = {k: int(v) for k, v in module.measure(w3, accounts).items()}
            finally:
                revert(w3, snap)
    return report
