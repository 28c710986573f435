"""SS58 addresses and the Bittensor EVM address mirror (pure functions).

Subtensor's EVM maps an H160 address to the substrate account that holds its native
balance as ``AccountId32 = blake2_256(b"evm:" ++ h160)`` (frontier's
``HashedAddressMapping<BlakeTwo256>``); Bittensor shows accounts with SS58 prefix 42.
"""

from __future__ import annotations

import hashlib

from scalecodec.utils.ss58 import ss58_decode, ss58_encode

from chain.errors import ConfigError

SS58_FORMAT = 42  # generic substrate / Bittensor
_MIRROR_PREFIX = b"evm:"


def h160_bytes(address: str | bytes) -> bytes:
    """The 20 bytes of an EVM address given as ``0x``-hex (any case) or raw bytes."""
    if isinstance(address, bytes | bytearray):
        raw = bytes(address)
    else:
        text = address.lower().removeprefix("0x")
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raw = b""
    if len(raw) != 20:
        raise ConfigError(f"{address!r} is not a 20-byte EVM address (0x + 40 hex digits)")
    return raw


def h160_to_account_id(address: str | bytes) -> bytes:
    """The 32-byte substrate account that mirrors an EVM address: ``blake2_256("evm:" + h160)``."""
    return hashlib.blake2b(_MIRROR_PREFIX + h160_bytes(address), digest_size=32).digest()


def h160_to_ss58(address: str | bytes, ss58_format: int = SS58_FORMAT) -> str:
    """The SS58 mirror of an EVM address: where TAO sent to it lands on the substrate side."""
    return account_id_to_ss58(h160_to_account_id(address), ss58_format)


def account_id_to_ss58(account_id: bytes, ss58_format: int = SS58_FORMAT) -> str:
    """SS58 text of a 32-byte public key / account id."""
    if len(account_id) != 32:
        raise ConfigError(f"an account id has 32 bytes, got {len(account_id)}")
    return str(ss58_encode(account_id, ss58_format=ss58_format))


def ss58_to_account_id(address: str) -> bytes:
    """The 32-byte public key behind an SS58 address (checksum verified)."""
    try:
        return bytes.fromhex(ss58_decode(address))
    except (ValueError, IndexError) as exc:
        raise ConfigError(f"{address!r} is not a valid SS58 address: {exc}") from exc


def is_ss58(address: str) -> bool:
    """Whether ``address`` is a well-formed SS58 address with a valid checksum."""
    try:
        ss58_to_account_id(address)
    except ConfigError:
        return False
    return True
