"""``validator.state``: atomic save/load with a schema version."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from chain.errors import LatentError
from validator.scoring import CheckOutcome, ScoringConfig, update_records
from validator.state import CommitRecord, StateSchemaError, ValidatorState, load, save

HK = "0x" + "ab" * 20


def _state() -> ValidatorState:
    outcomes = [
        CheckOutcome(HK, True, True, False, "ok", 64, 1.5, 0.2),
        CheckOutcome(HK, False, False, False, "timeout"),
    ]
    records = update_records({}, outcomes, 4, {HK: 12}, ScoringConfig())
    commit = CommitRecord(
        salt=bytes(range(32)),
        uids=(0, 3),
        values=(65535, 123),
        version_key=2,
        commit_hash=b"\x11" * 32,
        sent_at_block=40,
        block=41,
        reveal_window=5,
    )
    return ValidatorState(
        records=records,
        round_index=5,
        commit=commit,
        last_commit_block=41,
        last_reveal_block=30,
        last_epoch_block=20,
    )


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "v" / "state.json"
    state = _state()
    save(path, state)
    assert json.loads(path.read_text())["schema"] == 1
    assert load(path) == state
    assert ValidatorState.load(path).to_status()["miners"][0]["pass_rate"] == 0.5


def test_missing_file_is_a_fresh_state(tmp_path: Path) -> None:
    assert load(tmp_path / "nothing.json") == ValidatorState()


def test_crash_between_write_and_replace_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.json"
    old = _state()
    old.save(path)
    before = path.read_bytes()
    new = _state()
    new.round_index = 99

    def crash(src: str, dst: str) -> None:
        raise OSError("killed before the rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        new.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert load(path) == old
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # no temp file left


def test_unknown_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"schema": 2, "round_index": 1}))
    with pytest.raises(StateSchemaError, match="schema 2") as info:
        load(path)
    assert isinstance(info.value, LatentError)
    assert "move the file aside" in str(info.value) or "move it aside" in str(info.value)


def test_garbage_is_refused_with_a_latent_error(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text("{not json")
    with pytest.raises(StateSchemaError):
        load(path)
    path.write_text(json.dumps({"schema": 1, "records": {HK: {"hotkey": HK}}}))
    with pytest.raises(StateSchemaError, match="malformed"):
        load(path)
