"""Organic re-checks: a renter forwards a served answer, with its receipt, to a validator.

Validators accept ``POST /v1/recheck`` with a JSON body :meth:`RecheckSubmission.to_json`.
The receipt binds the miner to what it served (the exact request body, the output token ids,
the proof), so a renter cannot frame an honest miner: the validator verifies the receipt's
signature against the hotkey it names and each hash against the forwarded bytes, and then
re-runs the ordinary verification. Only requests whose *signed body* fixes the sampling seed
(or is greedy) are re-checked: a seed the miner reported but did not sign proves nothing.
Because any organic answer may be forwarded, a miner cannot be honest only when checked.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, Literal

from eth_utils import is_address, to_checksum_address

from protocol.openai import InvalidResponse, LatentField

__all__ = ["RECHECK_PATH", "RecheckSubmission"]

#: Where validators accept forwarded answers.
RECHECK_PATH = "/v1/recheck"


@dataclass(frozen=True)
class RecheckSubmission:
    """One served answer, forwarded for verification."""

    #: ``"text"`` for ``/v1/completions``, ``"chat"`` for ``/v1/chat/completions``.
    kind: Literal["text", "chat"]
    #: The exact request body bytes sent to the miner (the receipt's ``requestHash``).
    request_body: bytes
    #: The miner hotkey that served it (must have signed the receipt).
    miner: str
    #: The response's ``latent`` object as received.
    latent: LatentField

    def to_json(self) -> dict[str, Any]:
        """The wire form (body as base64)."""
        return {
            "kind": self.kind,
            "request_body": base64.b64encode(self.request_body).decode("ascii"),
            "miner": self.miner,
            "latent": self.latent.to_json(),
        }

    @classmethod
    def from_json(cls, data: Any) -> RecheckSubmission:
        """Parse the wire form; raises :class:`InvalidResponse` on anything malformed."""
        if not isinstance(data, dict):
            raise InvalidResponse("a re-check submission must be a JSON object")
        kind = data.get("kind")
        if kind not in ("text", "chat"):
            raise InvalidResponse("kind must be 'text' or 'chat'")
        miner = data.get("miner")
        if not isinstance(miner, str) or not is_address(miner):
            raise InvalidResponse("miner must be the hotkey address that served the answer")
        try:
            body = base64.b64decode(str(data.get("request_body", "")), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidResponse(f"request_body is not base64: {exc}") from None
        return cls(
            kind=kind,
            request_body=body,
            miner=to_checksum_address(miner),
            latent=LatentField.from_json(data.get("latent")),
        )
