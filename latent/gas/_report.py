"""The committed gas report (``gas-report.json``) and the comparison against it.

Gas is deterministic for the same compiler, settings and anvil hardfork, so the check is
exact: any operation that costs more than the committed figure fails, an operation that
got cheaper is reported so the file can be refreshed with ``--write``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from chain.errors import ConfigError
from chain.paths import REPO_ROOT

GAS_REPORT = REPO_ROOT / "gas-report.json"
Report = dict[str, dict[str, int]]


@dataclass(frozen=True)
class GasChange:
    """One operation whose gas differs from the committed report."""

    area: str
    operation: str
    committed: int | None
    measured: int | None

    @property
    def worse(self) -> bool:
        """A regression: more gas than committed (new or vanished operations are not)."""
        return (
            self.committed is not None
            and self.measured is not None
            and self.measured > self.committed
        )

    def describe(self) -> str:
        if self.committed is None:
            return f"{self.area}.{self.operation}: new ({self.measured:,})"
        if self.measured is None:
            return f"{self.area}.{self.operation}: no longer measured (was {self.committed:,})"
        delta = self.measured - self.committed
        return f"{self.area}.{self.operation}: {self.committed:,} -> {self.measured:,} ({delta:+,})"


def compare_reports(committed: Report, measured: Report) -> list[GasChange]:
    """Every operation whose figure differs between the two reports, sorted."""
    changes: list[GasChange] = []
    for area in sorted(set(committed) | set(measured)):
        old, new = committed.get(area, {}), measured.get(area, {})
        for op in sorted(set(old) | set(new)):
            if old.get(op) != new.get(op):
                changes.append(GasChange(area, op, old.get(op), new.get(op)))
    return changes


def load_report(path: Path = GAS_REPORT) -> Report:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"no gas report at {path}; create it with `latent bench gas --write`"
        ) from None
    except ValueError as exc:
        raise ConfigError(f"{path} is not JSON ({exc})") from None
    return {area: {op: int(gas) for op, gas in ops.items()} for area, ops in data.items()}


def write_report(report: Report, path: Path = GAS_REPORT) -> None:
    path.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
