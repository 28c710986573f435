"""Keystores: round trip, wrong password, missing file, no plaintext on disk."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from chain.errors import KeystoreError
from chain.keys import create_key, dev_accounts, list_keys, load_key, resolve_account

FAST_KDF = 2**10  # scrypt n for tests; real keys use eth-account's default (2**18)


def test_round_trip_and_listing(tmp_path: Path) -> None:
    cold = create_key(tmp_path, "alice", "coldkey", "pw-cold", kdf_iterations=FAST_KDF)
    hot = create_key(tmp_path, "alice", "hotkey", "pw-hot", name="miner1", kdf_iterations=FAST_KDF)
    assert load_key(cold.path, "pw-cold").address == cold.address
    assert load_key(hot.path, "pw-hot").address == hot.address
    assert cold.address != hot.address
    listed = {(k.role, k.name, k.address) for k in list_keys(tmp_path)}
    assert listed == {("coldkey", "default", cold.address), ("hotkey", "miner1", hot.address)}
    assert stat.S_IMODE(cold.path.stat().st_mode) == 0o600


def test_wrong_password(tmp_path: Path) -> None:
    info = create_key(tmp_path, "w", "coldkey", "right", kdf_iterations=FAST_KDF)
    with pytest.raises(KeystoreError, match="wrong password"):
        load_key(info.path, "wrong")


def test_missing_keystore(tmp_path: Path) -> None:
    with pytest.raises(KeystoreError, match=r"no keystore at .*latent wallet create"):
        load_key(tmp_path / "nope.json", "x")


def test_no_plaintext_key_on_disk(tmp_path: Path) -> None:
    info = create_key(tmp_path, "w", "hotkey", "pw", kdf_iterations=FAST_KDF)
    account = load_key(info.path, "pw")
    text = info.path.read_text()
    assert account.key.hex().removeprefix("0x") not in text
    assert json.loads(text)["crypto"]["kdf"] == "scrypt"


def test_refuses_overwrite_and_bad_names(tmp_path: Path) -> None:
    create_key(tmp_path, "w", "coldkey", "pw", kdf_iterations=FAST_KDF)
    with pytest.raises(KeystoreError, match="refusing to overwrite"):
        create_key(tmp_path, "w", "coldkey", "pw", kdf_iterations=FAST_KDF)
    with pytest.raises(KeystoreError, match="invalid wallet name"):
        create_key(tmp_path, "../escape", "coldkey", "pw", kdf_iterations=FAST_KDF)


def test_resolve_account_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    info = create_key(tmp_path, "w", "hotkey", "pw", name="h", kdf_iterations=FAST_KDF)
    monkeypatch.setenv("LATENT_WALLET_PASSWORD", "pw")
    got = resolve_account(wallet="w", hotkey="h", wallet_dir=tmp_path)
    assert got.address == info.address
    assert resolve_account(dev_account=2, allow_dev=True).address == dev_accounts(3)[2].address
    with pytest.raises(KeystoreError, match="local chains only"):
        resolve_account(dev_account=0, allow_dev=False)
    with pytest.raises(KeystoreError, match="only one of"):
        resolve_account(wallet="w", dev_account=0, allow_dev=True)
