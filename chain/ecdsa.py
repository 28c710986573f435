"""secp256k1 signing and signer recovery over 32-byte EIP-712 digests (the request path's crypto).

One implementation for receipts (:mod:`chain.receipts`) and vouchers (:mod:`chain.vouchers`):
straight through libsecp256k1 (coincurve) when it is installed, because it runs on every
response; eth-keys otherwise. Both give the same bytes as eth-account (RFC 6979 deterministic,
low-s, ``v`` in {27, 28}; tested in ``tests/miner/test_fast_paths.py``). Never pass raw data:
a digest must already be a domain-separated hash.
"""

from __future__ import annotations

import functools
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_keys.datatypes import Signature as KeySignature
from eth_keys.exceptions import BadSignature
from eth_keys.exceptions import ValidationError as KeyValidationError
from eth_typing import Hash32
from eth_utils import keccak, to_checksum_address

from chain.errors import LatentError

try:  # libsecp256k1 bindings: ~6x faster than eth_account's signing and recovery paths
    import coincurve as _coincurve
except ImportError:  # pragma: no cover - coincurve is a dependency; kept optional
    _coincurve = None  # type: ignore[assignment]

#: secp256k1 group order; canonical signatures have s <= N // 2 (EIP-2).
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


class SignatureError(LatentError):
    """A digest or signature is malformed, or the signature cannot be recovered."""


def sign_digest(account: LocalAccount, digest: bytes) -> bytes:
    """65-byte ``r || s || v`` (v in {27, 28}, low s) signature of a 32-byte digest.

    Byte-identical to ``account.unsafe_sign_hash(digest).signature``.
    """
    if len(digest) != 32:
        raise SignatureError(f"digest must be 32 bytes, got {len(digest)}")
    if _coincurve is None:  # pragma: no cover
        return bytes(account.unsafe_sign_hash(Hash32(digest)).signature)
    raw = _signing_key(bytes(account.key)).sign_recoverable(digest, hasher=None)
    return raw[:64] + bytes((raw[64] + 27,))


@functools.lru_cache(maxsize=8)
def _signing_key(secret: bytes) -> Any:
    """coincurve key for ``secret`` (building one derives two public keys: ~50 us; a miner
    signs with the same hotkey all day)."""
    assert _coincurve is not None
    return _coincurve.PrivateKey(secret)


@functools.lru_cache(maxsize=1024)
def checksum_address(address: str | bytes) -> str:
    """``eth_utils.to_checksum_address``, remembered: the request path checksums the same
    few addresses (the miner's) several times per response, at ~27 us each."""
    return str(to_checksum_address(address))


def recover_digest_signer(digest: bytes, signature: bytes) -> str:
    """The checksummed address whose key made ``signature`` (``r || s || v``) over ``digest``.

    Checks only what recovery needs (65 bytes, v in {27, 28}, a recoverable point); callers
    add their own policy (vouchers also refuse high s). Raises :class:`SignatureError`.
    """
    if len(signature) != 65 or signature[64] not in (27, 28):
        raise SignatureError("signature must be 65 bytes r || s || v with v in {27, 28}")
    try:
        if _coincurve is None:  # pragma: no cover
            key_sig = KeySignature(
                vrs=(
                    signature[64] - 27,
                    int.from_bytes(signature[:32], "big"),
                    int.from_bytes(signature[32:64], "big"),
                )
            )
            return str(key_sig.recover_public_key_from_msg_hash(digest).to_checksum_address())
        public = _coincurve.PublicKey.from_signature_and_message(
            signature[:64] + bytes((signature[64] - 27,)), digest, hasher=None
        )
    # libsecp256k1 / eth-keys refuse r = 0, r >= n, no curve point, ...
    except (ValueError, TypeError, BadSignature, KeyValidationError) as exc:
        raise SignatureError(f"signature cannot be recovered: {exc}") from None
    return checksum_address(keccak(public.format(compressed=False)[1:])[-20:])


__all__ = [
    "SECP256K1_N",
    "SignatureError",
    "checksum_address",
    "recover_digest_signer",
    "sign_digest",
]
