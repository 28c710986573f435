"""The gas report comparison (the measurement itself runs in `latent bench gas --check`)."""

from __future__ import annotations

from latent.gas._report import compare_reports


def test_regressions_new_and_removed_operations() -> None:
    committed = {"escrow": {"settle": 40_000, "open": 90_000}, "token": {"permit": 54_699}}
    measured = {
        "escrow": {"settle": 40_001, "open": 80_000, "topUp": 30_000},
        "token": {"permit": 54_699},
    }
    changes = {(c.area, c.operation): c for c in compare_reports(committed, measured)}
    assert set(changes) == {("escrow", "settle"), ("escrow", "open"), ("escrow", "topUp")}
    assert changes["escrow", "settle"].worse
    assert not changes["escrow", "open"].worse  # cheaper is not a regression
    assert not changes["escrow", "topUp"].worse and "new" in changes["escrow", "topUp"].describe()
    assert compare_reports(committed, committed) == []
    gone = compare_reports(committed, {"token": {"permit": 54_699}})
    assert {c.operation for c in gone} == {"settle", "open"}
    assert all("no longer measured" in c.describe() for c in gone)
