"""Inference receipts: the miner hotkey's EIP-712 signature over what it served.

Every miner response carries a receipt so a renter can later prove what it was served,
and a validator can re-check it. The signed struct is::

    Receipt(bytes32 requestHash, bytes32 outputHash, bytes32 proofCommitment, uint256 price)

under the EIP-712 domain ``{name: "Latent", version: "1", chainId}`` (no verifying
contract: receipts are checked off-chain today; a contract may verify them later with the
same domain plus its own address in a new version).

Field definitions (normative; renters and validators recompute them):

- ``requestHash = keccak256(body)`` where ``body`` is the exact HTTP request body bytes as
  sent by the client (the same bytes a validator hashes for its challenge signature). A
  renter proxy keeps the bytes it sent; no JSON canonicalisation is involved.
- ``outputHash = keccak256(id_0 || id_1 || ... || id_{n-1})`` over the generated token ids
  (prompt excluded, in generation order), each id as a 4-byte big-endian unsigned integer
  (Solidity: ``keccak256(abi.encodePacked(uint32 ids...))``). No output => ``keccak256("")``.
- ``proofCommitment``: ``InferenceProof.commitment()`` (keccak256 of the proof's bytes).
- ``price``: what the miner charges for this response, in the payment token's base units
  (``prompt_tokens * price_per_prompt_token + completion_tokens * price_per_completion_token``;
  ``0`` for validator challenges, which are free).

JSON form (response field ``latent.receipt``, and base64url in the ``X-Latent-Receipt``
header): hex strings with ``0x`` for the hashes and signature, ``price`` as a decimal string
(JavaScript-safe), plus the ``miner`` address and ``chain_id`` for convenience; only the
signature is authoritative, ``verify_receipt`` checks the recovered signer.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from dataclasses import dataclass
from typing import Any

from eth_account.messages import SignableMessage, encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from chain.ecdsa import SignatureError, checksum_address, recover_digest_signer, sign_digest
from chain.errors import LatentError

RECEIPT_DOMAIN_NAME = "Latent"
RECEIPT_DOMAIN_VERSION = "1"
RECEIPT_TYPES: dict[str, list[dict[str, str]]] = {
    "Receipt": [
        {"name": "requestHash", "type": "bytes32"},
        {"name": "outputHash", "type": "bytes32"},
        {"name": "proofCommitment", "type": "bytes32"},
        {"name": "price", "type": "uint256"},
    ]
}
_UINT256_MAX = 2**256 - 1
_TOKEN_ID_MAX = 2**32 - 1


class ReceiptInvalid(LatentError):
    """A receipt is malformed, or its signature does not come from the expected miner."""


def request_hash(body: bytes) -> bytes:
    """``keccak256`` of the exact request body bytes (see module docs)."""
    return keccak(body)


def output_hash(output_token_ids: tuple[int, ...] | list[int]) -> bytes:
    """``keccak256`` of the generated token ids, each packed as 4-byte big-endian."""
    packed = bytearray()
    for token_id in output_token_ids:
        if not 0 <= token_id <= _TOKEN_ID_MAX:
            raise ReceiptInvalid(f"token id {token_id} does not fit in uint32")
        packed += token_id.to_bytes(4, "big")
    return keccak(bytes(packed))


@dataclass(frozen=True)
class Receipt:
    """A signed receipt. ``miner`` and ``chain_id`` name the expected signer and domain."""

    request_hash: bytes
    output_hash: bytes
    proof_commitment: bytes
    price: int
    miner: str
    chain_id: int
    signature: bytes

    def to_json(self) -> dict[str, Any]:
        """The JSON object carried in responses (hashes and signature as 0x-hex)."""
        return {
            "request_hash": "0x" + self.request_hash.hex(),
            "output_hash": "0x" + self.output_hash.hex(),
            "proof_commitment": "0x" + self.proof_commitment.hex(),
            "price": str(self.price),
            "miner": self.miner,
            "chain_id": self.chain_id,
            "signature": "0x" + self.signature.hex(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Receipt:
        """Parse :meth:`to_json` output; raises :class:`ReceiptInvalid` on malformed input."""
        try:
            receipt = cls(
                request_hash=_hex32(data["request_hash"]),
                output_hash=_hex32(data["output_hash"]),
                proof_commitment=_hex32(data["proof_commitment"]),
                price=int(str(data["price"]), 10),
                miner=checksum_address(str(data["miner"])),
                chain_id=int(data["chain_id"]),
                signature=bytes.fromhex(_strip0x(str(data["signature"]))),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ReceiptInvalid(f"malformed receipt: {exc}") from exc
        if not 0 <= receipt.price <= _UINT256_MAX:
            raise ReceiptInvalid(f"receipt price {receipt.price} is not a uint256")
        return receipt


def _strip0x(value: str) -> str:
    return value[2:] if value.startswith(("0x", "0X")) else value


def _hex32(value: Any) -> bytes:
    raw = bytes.fromhex(_strip0x(str(value)))
    if len(raw) != 32:
        raise ValueError(f"expected 32 bytes, got {len(raw)}")
    return raw


def _check_fields(
    *, request_hash: bytes, output_hash: bytes, proof_commitment: bytes, price: int
) -> None:
    """Raise :class:`ReceiptInvalid` unless the hashes are 32 bytes and ``price`` a uint256."""
    for name, value in (
        ("request_hash", request_hash),
        ("output_hash", output_hash),
        ("proof_commitment", proof_commitment),
    ):
        if len(value) != 32:
            raise ReceiptInvalid(f"{name} must be 32 bytes, got {len(value)}")
    if not 0 <= price <= _UINT256_MAX:
        raise ReceiptInvalid(f"price {price} is not a uint256")


def receipt_signable(
    *,
    request_hash: bytes,
    output_hash: bytes,
    proof_commitment: bytes,
    price: int,
    chain_id: int,
) -> SignableMessage:
    """The EIP-712 message a miner signs for these fields."""
    _check_fields(
        request_hash=request_hash,
        output_hash=output_hash,
        proof_commitment=proof_commitment,
        price=price,
    )
    return encode_typed_data(
        domain_data={
            "name": RECEIPT_DOMAIN_NAME,
            "version": RECEIPT_DOMAIN_VERSION,
            "chainId": chain_id,
        },
        message_types=RECEIPT_TYPES,
        message_data={
            "requestHash": request_hash,
            "outputHash": output_hash,
            "proofCommitment": proof_commitment,
            "price": price,
        },
    )


_RECEIPT_TYPEHASH = keccak(
    b"Receipt(bytes32 requestHash,bytes32 outputHash,bytes32 proofCommitment,uint256 price)"
)
_DOMAIN_TYPEHASH = keccak(b"EIP712Domain(string name,string version,uint256 chainId)")


@functools.lru_cache(maxsize=64)
def _domain_separator(chain_id: int) -> bytes:
    return keccak(
        _DOMAIN_TYPEHASH
        + keccak(RECEIPT_DOMAIN_NAME.encode())
        + keccak(RECEIPT_DOMAIN_VERSION.encode())
        + chain_id.to_bytes(32, "big")
    )


def receipt_digest(
    *,
    request_hash: bytes,
    output_hash: bytes,
    proof_commitment: bytes,
    price: int,
    chain_id: int,
) -> bytes:
    """The 32-byte EIP-712 digest of a receipt (what the hotkey's ECDSA signature covers).

    Computed directly (cached domain separator) because it is on every response's path; it
    equals the digest of :func:`receipt_signable` (tested).
    """
    _check_fields(
        request_hash=request_hash,
        output_hash=output_hash,
        proof_commitment=proof_commitment,
        price=price,
    )
    struct_hash = keccak(
        _RECEIPT_TYPEHASH
        + request_hash
        + output_hash
        + proof_commitment
        + price.to_bytes(32, "big")
    )
    return keccak(b"\x19\x01" + _domain_separator(chain_id) + struct_hash)


def sign_receipt(
    hotkey: LocalAccount,
    *,
    request_hash: bytes,
    output_hash: bytes,
    proof_commitment: bytes,
    price: int,
    chain_id: int,
) -> Receipt:
    """Sign a receipt with the miner's hotkey."""
    digest = receipt_digest(
        request_hash=request_hash,
        output_hash=output_hash,
        proof_commitment=proof_commitment,
        price=price,
        chain_id=chain_id,
    )
    return Receipt(
        request_hash=request_hash,
        output_hash=output_hash,
        proof_commitment=proof_commitment,
        price=price,
        miner=hotkey.address,
        chain_id=chain_id,
        signature=sign_digest(hotkey, digest),
    )


def recover_receipt_signer(receipt: Receipt) -> str:
    """The checksummed address that signed ``receipt`` (whatever ``receipt.miner`` says)."""
    digest = receipt_digest(
        request_hash=receipt.request_hash,
        output_hash=receipt.output_hash,
        proof_commitment=receipt.proof_commitment,
        price=receipt.price,
        chain_id=receipt.chain_id,
    )
    sig = receipt.signature
    if len(sig) != 65 or sig[64] not in (27, 28):
        raise ReceiptInvalid("receipt signature must be 65 bytes r || s || v with v in {27, 28}")
    try:
        return recover_digest_signer(digest, sig)
    except SignatureError as exc:
        raise ReceiptInvalid(f"receipt {exc}") from exc


def verify_receipt(
    receipt: Receipt,
    *,
    miner: str,
    chain_id: int,
    request_hash: bytes | None = None,
    output_hash: bytes | None = None,
    proof_commitment: bytes | None = None,
) -> None:
    """Check that ``miner`` signed ``receipt`` on ``chain_id`` and that it names what you hold.

    Pass the hashes you computed yourself (from the body you sent, the tokens you got, the
    proof you received); each one given must equal the receipt's. Raises
    :class:`ReceiptInvalid` with the first mismatch.
    """
    if receipt.chain_id != chain_id:
        raise ReceiptInvalid(f"receipt is for chain {receipt.chain_id}, expected {chain_id}")
    for name, expected, actual in (
        ("request hash", request_hash, receipt.request_hash),
        ("output hash", output_hash, receipt.output_hash),
        ("proof commitment", proof_commitment, receipt.proof_commitment),
    ):
        if expected is not None and expected != actual:
            raise ReceiptInvalid(f"receipt {name} does not match what was served")
    signer = recover_receipt_signer(receipt)
    if signer != checksum_address(miner):
        raise ReceiptInvalid(f"receipt signed by {signer}, expected miner {miner}")


def encode_receipt_header(receipt: Receipt) -> str:
    """Header form: unpadded base64url of the compact JSON form."""
    raw = json.dumps(receipt.to_json(), separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_receipt_header(value: str) -> Receipt:
    """Inverse of :func:`encode_receipt_header`; raises :class:`ReceiptInvalid` on garbage."""
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise ReceiptInvalid(f"receipt header is not base64url JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ReceiptInvalid("receipt header must encode a JSON object")
    return Receipt.from_json(data)
