"""Bittensor wallet hotkeys: find, decrypt and load them as sr25519 signers (I/O edge).

Paths follow ``bittensor-wallet``: ``<wallet_path>/<wallet>/hotkeys/<hotkey>`` with
``wallet_path`` = ``$BT_WALLET_PATH`` or ``~/.bittensor/wallets``. A keyfile holds the JSON
``{"accountId", "publicKey", "privateKey", "secretPhrase", "secretSeed", "ss58Address"}``
either as plain text (what ``btcli`` writes for hotkeys by default) or encrypted:

- ``$NACL`` + NaCl secretbox, key = Argon2i(password, bittensor's fixed salt, SENSITIVE
  limits) — the current format;
- ``$ANSIBLE_VAULT;1.1;AES256`` — the legacy format (PBKDF2-SHA256 10,000 rounds, AES-256-CTR,
  HMAC-SHA256).

Latent only reads keyfiles; it never writes one (create hotkeys with ``btcli wallet
new_hotkey``). The password comes from the caller (a prompt) or ``$LATENT_WALLET_PASSWORD``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from pathlib import Path
from typing import Any

from substrateinterface import Keypair, KeypairType

from chain.bittensor.ss58 import SS58_FORMAT
from chain.errors import KeystoreError

NACL_PREFIX = b"$NACL"
ANSIBLE_PREFIX = b"$ANSIBLE_VAULT"
# bittensor-wallet's Argon2i salt for NaCl keyfiles (a constant of the format, not a secret)
NACL_SALT = b"\x13q\x83\xdf\xf1Z\t\xbc\x9c\x90\xb5Q\x879\xe9\xb1"
PASSWORD_ENV = "LATENT_WALLET_PASSWORD"


def default_wallet_path() -> Path:
    """``$BT_WALLET_PATH`` or ``~/.bittensor/wallets`` (bittensor-wallet's default)."""
    return Path(os.environ.get("BT_WALLET_PATH", Path.home() / ".bittensor" / "wallets"))


def hotkey_path(wallet: str, hotkey: str = "default", wallet_path: Path | None = None) -> Path:
    """Where bittensor-wallet keeps ``wallet``'s hotkey ``hotkey``."""
    for name, what in ((wallet, "wallet"), (hotkey, "hotkey")):
        if not name or "/" in name or name in (".", ".."):
            raise KeystoreError(f"{what} name {name!r} is not a plain file name")
    return (wallet_path or default_wallet_path()).expanduser() / wallet / "hotkeys" / hotkey


def is_encrypted(data: bytes) -> bool:
    return (
        data.startswith(NACL_PREFIX)
        or data.startswith(ANSIBLE_PREFIX)
        or data.startswith(b"gAAAAA")
    )


def decrypt_keyfile_data(data: bytes, password: str) -> bytes:
    """The plaintext JSON of an encrypted bittensor keyfile (NaCl or ansible vault)."""
    if data.startswith(NACL_PREFIX):
        from nacl import exceptions, pwhash, secret

        key = pwhash.argon2i.kdf(
            secret.SecretBox.KEY_SIZE,
            password.encode(),
            NACL_SALT,
            opslimit=pwhash.argon2i.OPSLIMIT_SENSITIVE,
            memlimit=pwhash.argon2i.MEMLIMIT_SENSITIVE,
        )
        try:
            return bytes(secret.SecretBox(key).decrypt(data[len(NACL_PREFIX) :]))
        except exceptions.CryptoError as exc:
            raise KeystoreError("wrong password for this hotkey file") from exc
    if data.startswith(ANSIBLE_PREFIX):
        return _decrypt_ansible_vault(data, password)
    if data.startswith(b"gAAAAA"):
        raise KeystoreError(
            "this keyfile uses bittensor's oldest (Fernet) encryption: re-encrypt it with a current "
            "btcli (btcli wallet regen_hotkey) and retry"
        )
    raise KeystoreError("the keyfile is not encrypted")


def _decrypt_ansible_vault(data: bytes, password: str) -> bytes:
    from Crypto.Cipher import AES
    from Crypto.Util import Counter

    lines = data.decode("ascii", "replace").strip().splitlines()
    header = lines[0].split(";")
    if len(header) < 3 or header[2].strip() != "AES256":
        raise KeystoreError(f"unsupported ansible vault header {lines[0]!r}")
    try:
        inner = bytes.fromhex("".join(x.strip() for x in lines[1:])).decode("ascii")
        salt_hex, mac_hex, body_hex = inner.split("\n")
        salt, mac, body = bytes.fromhex(salt_hex), bytes.fromhex(mac_hex), bytes.fromhex(body_hex)
    except ValueError as exc:
        raise KeystoreError("the ansible vault keyfile is malformed") from exc
    material = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 10_000, dklen=80)
    aes_key, mac_key, iv = material[:32], material[32:64], material[64:]
    if not hmac.compare_digest(hmac.new(mac_key, body, hashlib.sha256).digest(), mac):
        raise KeystoreError("wrong password for this hotkey file")
    ctr = Counter.new(128, initial_value=int.from_bytes(iv, "big"))
    padded = AES.new(aes_key, AES.MODE_CTR, counter=ctr).decrypt(body)
    pad = padded[-1]
    if not 1 <= pad <= 16:
        raise KeystoreError("the ansible vault keyfile is malformed (padding)")
    return padded[:-pad]


def keypair_from_keyfile_json(data: bytes | str | dict[str, Any]) -> Keypair:
    """An sr25519 :class:`Keypair` from the JSON bittensor writes (seed preferred, then private key)."""
    try:
        obj = data if isinstance(data, dict) else json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise KeystoreError("the hotkey file is not bittensor keyfile JSON") from exc
    try:
        if obj.get("secretSeed"):
            kp = Keypair.create_from_seed(
                obj["secretSeed"], ss58_format=SS58_FORMAT, crypto_type=KeypairType.SR25519
            )
        elif obj.get("privateKey"):
            kp = Keypair.create_from_private_key(
                obj["privateKey"],
                public_key=obj.get("publicKey"),
                ss58_format=SS58_FORMAT,
                crypto_type=KeypairType.SR25519,
            )
        else:
            raise KeystoreError(
                "the hotkey file has no secret (secretSeed / privateKey): it holds only a public "
                "key; copy the full hotkey file to this machine"
            )
    except (ValueError, TypeError) as exc:
        raise KeystoreError(f"the hotkey file's key material is invalid: {exc}") from exc
    expected = obj.get("ss58Address")
    if expected and expected != kp.ss58_address:
        raise KeystoreError(
            f"the hotkey file says {expected} but its secret gives {kp.ss58_address}: the file is "
            "damaged; regenerate it (btcli wallet regen_hotkey)"
        )
    return kp


def load_hotkey(
    wallet: str,
    hotkey: str = "default",
    *,
    wallet_path: Path | None = None,
    password: str | None = None,
) -> Keypair:
    """Load a bittensor wallet's hotkey as an sr25519 signer.

    Encrypted files need ``password`` or ``$LATENT_WALLET_PASSWORD``.
    """
    path = hotkey_path(wallet, hotkey, wallet_path)
    return load_keyfile(path, password=password)


def load_keyfile(path: Path, *, password: str | None = None) -> Keypair:
    """Load one bittensor keyfile (plain JSON or encrypted) as an sr25519 signer."""
    try:
        data = Path(path).expanduser().read_bytes()
    except FileNotFoundError as exc:
        raise KeystoreError(
            f"no hotkey file at {path}: create one with `btcli wallet new_hotkey` or pass "
            "--wallet-path / --wallet / --hotkey"
        ) from exc
    except OSError as exc:
        raise KeystoreError(f"cannot read {path}: {exc}") from exc
    if is_encrypted(data):
        pw = password if password is not None else os.environ.get(PASSWORD_ENV)
        if pw is None:
            raise KeystoreError(
                f"{path} is encrypted: give its password at the prompt or in ${PASSWORD_ENV}"
            )
        data = decrypt_keyfile_data(data, pw)
    return keypair_from_keyfile_json(data)
