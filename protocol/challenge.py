"""Signed challenges of the free validator lane (the miner checks them in ``miner.auth``).

A validator's challenge is an ordinary OpenAI request plus three headers:

- ``X-Latent-Validator``: the validator hotkey address;
- ``X-Latent-Nonce``: ``"<unix seconds>-<32..64 lowercase hex chars of randomness>"``;
- ``X-Latent-Signature``: 0x-hex EIP-191 (``personal_sign``) signature by the hotkey over
  the text returned by :func:`challenge_message`::

      Latent validator challenge
      miner: <miner hotkey, checksummed>
      nonce: <nonce>
      body: 0x<keccak256 of the exact request body bytes>

Binding the miner address stops a captured challenge from being replayed at another miner;
binding the body hash stops it from being reused for another prompt. This lane is never the
validator's only source of checks: its requests are recognisable, so the validator's scored
checks go through ordinary paid channels (``validator/`` docs).
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Mapping

from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address

from protocol.headers import NONCE_HEADER, SIGNATURE_HEADER, VALIDATOR_HEADER

__all__ = [
    "challenge_headers",
    "challenge_message",
    "has_challenge_headers",
    "new_nonce",
    "nonce_timestamp",
]

_NONCE_RE = re.compile(r"^(\d{1,12})-([0-9a-f]{32,64})$")


def challenge_message(*, miner: str, nonce: str, body: bytes) -> str:
    """The exact text a validator signs for a challenge (see module docs)."""
    return (
        "Latent validator challenge\n"
        f"miner: {to_checksum_address(miner)}\n"
        f"nonce: {nonce}\n"
        f"body: 0x{keccak(body).hex()}"
    )


def new_nonce(now: float | None = None) -> str:
    """A fresh challenge nonce stamped with ``now`` (unix seconds)."""
    stamp = int(time.time() if now is None else now)
    return f"{stamp}-{secrets.token_hex(16)}"


def nonce_timestamp(nonce: str) -> int | None:
    """The unix-seconds stamp of a well-formed nonce, or None when it is malformed."""
    match = _NONCE_RE.match(nonce)
    return None if match is None else int(match.group(1))


def challenge_headers(
    validator: LocalAccount, *, miner: str, body: bytes, nonce: str | None = None
) -> dict[str, str]:
    """Headers that authenticate ``body`` as a challenge by ``validator`` to ``miner``."""
    nonce = nonce or new_nonce()
    signed = validator.sign_message(
        encode_defunct(text=challenge_message(miner=miner, nonce=nonce, body=body))
    )
    return {
        VALIDATOR_HEADER: validator.address,
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: "0x" + bytes(signed.signature).hex(),
    }


def has_challenge_headers(headers: Mapping[str, str]) -> bool:
    """True when any challenge header is present (the request claims to be a validator's)."""
    return any(headers.get(name) is not None for name in (VALIDATOR_HEADER, NONCE_HEADER))
