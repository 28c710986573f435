"""Coldkeys and hotkeys as encrypted eth-account keystores (geth v3 / Web3 Secret Storage).

Layout, after Bittensor's wallets: ``<wallet_dir>/<wallet>/coldkey.json`` holds the key
that owns funds and stake; ``<wallet_dir>/<wallet>/hotkeys/<name>.json`` hold the keys a
miner or validator box runs with (only the hotkey needs to live on that box).
``wallet_dir`` defaults to ``$LATENT_WALLET_DIR`` or ``~/.latent/wallets``.

No plaintext key is ever written: files hold only the scrypt-encrypted keystore, are
created with mode 0600, and the password comes from a prompt or from
``$LATENT_WALLET_PASSWORD`` (for unattended boxes). Dev accounts for localnet derive from
anvil's public mnemonic and must never hold real value.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address

from chain.errors import KeystoreError
from chain.jsonfile import write_text_atomic
from chain.node import DEV_MNEMONIC

Account.enable_unaudited_hdwallet_features()

KeyRole = Literal["coldkey", "hotkey"]
PASSWORD_ENV = "LATENT_WALLET_PASSWORD"


def default_wallet_dir() -> Path:
    """``$LATENT_WALLET_DIR`` or ``~/.latent/wallets``."""
    return Path(os.environ.get("LATENT_WALLET_DIR", Path.home() / ".latent" / "wallets"))


@dataclass(frozen=True)
class KeyInfo:
    """A key file on disk and its public address (no secret material)."""

    wallet: str
    role: KeyRole
    name: str
    address: str
    path: Path


def key_path(wallet_dir: Path, wallet: str, role: KeyRole, name: str = "default") -> Path:
    """Where the keystore for (wallet, role, name) lives."""
    _check_name(wallet, "wallet")
    if role == "coldkey":
        return wallet_dir / wallet / "coldkey.json"
    _check_name(name, "hotkey")
    return wallet_dir / wallet / "hotkeys" / f"{name}.json"


def _check_name(name: str, what: str) -> None:
    if not name or not all(c.isalnum() or c in "-_." for c in name) or name.startswith("."):
        raise KeystoreError(f"invalid {what} name {name!r}: use letters, digits, '-', '_' or '.'")


def create_key(
    wallet_dir: Path,
    wallet: str,
    role: KeyRole,
    password: str,
    *,
    name: str = "default",
    overwrite: bool = False,
    kdf_iterations: int | None = None,
) -> KeyInfo:
    """Generate a new key and store it encrypted; refuses to overwrite an existing file."""
    if not password:
        raise KeystoreError("an empty password would leave the key unprotected; choose one")
    path = key_path(wallet_dir, wallet, role, name)
    if path.exists() and not overwrite:
        raise KeystoreError(f"{path} already exists; refusing to overwrite a key")
    account: LocalAccount = Account.create()
    keystore = Account.encrypt(account.key, password, iterations=kdf_iterations)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_text_atomic(path, json.dumps(keystore))  # 0o600: only the owner reads a key
    return KeyInfo(wallet, role, name, account.address, path)


def read_address(path: Path) -> str:
    """The address recorded in a keystore file, without decrypting it."""
    try:
        data = json.loads(path.read_text())
        return to_checksum_address("0x" + str(data["address"]).removeprefix("0x"))
    except FileNotFoundError:
        raise KeystoreError(
            f"no keystore at {path}; create one with `latent wallet create`"
        ) from None
    except (OSError, ValueError, KeyError) as exc:
        raise KeystoreError(f"{path} is not a keystore file ({exc})") from None


def load_key(path: Path, password: str) -> LocalAccount:
    """Decrypt a keystore; a wrong password or missing file raises :class:`KeystoreError`."""
    read_address(path)  # uniform error for a missing or malformed file
    keystore = json.loads(path.read_text())
    try:
        secret = Account.decrypt(keystore, password)
    except ValueError:
        raise KeystoreError(f"wrong password for {path}") from None
    account: LocalAccount = Account.from_key(secret)
    return account


def list_keys(wallet_dir: Path) -> list[KeyInfo]:
    """Every coldkey and hotkey under ``wallet_dir`` with its address."""
    keys: list[KeyInfo] = []
    if not wallet_dir.is_dir():
        return keys
    for wallet in sorted(p for p in wallet_dir.iterdir() if p.is_dir()):
        cold = wallet / "coldkey.json"
        if cold.is_file():
            keys.append(KeyInfo(wallet.name, "coldkey", "default", read_address(cold), cold))
        for hot in sorted((wallet / "hotkeys").glob("*.json")):
            keys.append(KeyInfo(wallet.name, "hotkey", hot.stem, read_address(hot), hot))
    return keys


def password_from_env_or_prompt(prompt: str = "Wallet password", *, confirm: bool = False) -> str:
    """``$LATENT_WALLET_PASSWORD`` if set, else an interactive prompt (never echoed)."""
    env = os.environ.get(PASSWORD_ENV)
    if env:
        return env
    import getpass
    import sys

    if not sys.stdin.isatty():
        raise KeystoreError(f"no password: set {PASSWORD_ENV} or run from a terminal")
    password = getpass.getpass(f"{prompt}: ")
    if confirm and getpass.getpass("Repeat password: ") != password:
        raise KeystoreError("the passwords differ; nothing was written")
    return password


def dev_accounts(n: int = 10) -> list[LocalAccount]:
    """The first ``n`` accounts of anvil's public dev mnemonic (localnet only)."""
    return [
        Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}") for i in range(n)
    ]


def resolve_account(
    *,
    keystore: Path | None = None,
    wallet: str | None = None,
    hotkey: str | None = None,
    dev_account: int | None = None,
    allow_dev: bool = False,
    wallet_dir: Path | None = None,
) -> LocalAccount:
    """The signing account a command was pointed at, from exactly one source.

    ``--keystore PATH``; ``--wallet W`` (its coldkey) or ``--wallet W --hotkey H``; or
    ``--dev-account N`` (anvil's mnemonic; only where ``allow_dev``, i.e. local chains).
    Keystore passwords come from ``$LATENT_WALLET_PASSWORD`` or a prompt.
    """
    chosen = [x is not None for x in (keystore, wallet, dev_account)]
    if sum(chosen) > 1:
        raise KeystoreError("give only one of --keystore, --wallet or --dev-account")
    if dev_account is not None:
        if not allow_dev:
            raise KeystoreError(
                "dev accounts are for local chains only; use --wallet or --keystore"
            )
        if not 0 <= dev_account < 10:
            raise KeystoreError(f"--dev-account {dev_account}: dev accounts are 0-9")
        return dev_accounts(dev_account + 1)[dev_account]
    if wallet is not None:
        role: KeyRole = "hotkey" if hotkey else "coldkey"
        keystore = key_path(wallet_dir or default_wallet_dir(), wallet, role, hotkey or "default")
    if keystore is None:
        # Never guess a signer: a command that moves funds signs with the key it was told.
        dev = " or (local chains) --dev-account N" if allow_dev else ""
        raise KeystoreError(f"no signing key given: pass --wallet NAME, --keystore PATH{dev}")
    read_address(keystore)  # fail on a missing file before asking for a password
    return load_key(keystore, password_from_env_or_prompt(f"Password for {keystore.name}"))
