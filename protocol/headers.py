"""HTTP header names of the subnet's wire protocol."""

from __future__ import annotations

#: A renter's (or validator's) payment voucher for a channel (``chain.vouchers`` encoding).
VOUCHER_HEADER = "X-Latent-Voucher"
#: The miner's signed receipt for the response (``chain.receipts`` header encoding).
RECEIPT_HEADER = "X-Latent-Receipt"
#: The proof of inference, base64 (only when small enough for a header; always in the body).
PROOF_HEADER = "X-Latent-Proof"
#: Free validator lane (``protocol.challenge``): the validator hotkey, its nonce, its signature.
VALIDATOR_HEADER = "X-Latent-Validator"
NONCE_HEADER = "X-Latent-Nonce"
SIGNATURE_HEADER = "X-Latent-Signature"

__all__ = [
    "NONCE_HEADER",
    "PROOF_HEADER",
    "RECEIPT_HEADER",
    "SIGNATURE_HEADER",
    "VALIDATOR_HEADER",
    "VOUCHER_HEADER",
]
