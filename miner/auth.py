"""Validator challenge authentication: free access for hotkeys holding a validator permit.

The challenge format (headers, signed text) is ``protocol.challenge``.
Each nonce is accepted
once; nonces whose timestamp is more than ``nonce_window_s`` away from the miner's clock are
rejected, so only nonces inside the window need remembering (bounded memory, also capped by
``max_tracked_nonces``). The permit itself is read through an injected :class:`PermitChecker`
(the metagraph reader implements it), cached per hotkey.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Callable, Mapping
from typing import Protocol

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_keys.exceptions import BadSignature
from eth_keys.exceptions import ValidationError as KeyValidationError
from eth_utils import is_address, to_checksum_address

from chain.errors import LatentError
from miner.config import AuthConfig
from protocol.challenge import challenge_message, nonce_timestamp
from protocol.headers import NONCE_HEADER, SIGNATURE_HEADER, VALIDATOR_HEADER


class PermitChecker(Protocol):
    """Answers whether a hotkey currently holds a validator permit (metagraph reader)."""

    def has_validator_permit(self, hotkey: str) -> bool:
        """True when ``hotkey`` holds a validator permit now."""
        ...


class ChallengeRejected(LatentError):
    """A validator challenge failed; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, *, status: int, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


class ValidatorAuth:
    """Verifies challenge headers; remembers used nonces inside the time window."""

    def __init__(
        self,
        *,
        miner: str,
        permits: PermitChecker,
        config: AuthConfig,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._miner = to_checksum_address(miner)
        self._permits = permits
        self._config = config
        self._clock = clock
        self._seen: set[str] = set()
        self._expiry_heap: list[tuple[float, str]] = []
        self._permit_cache: dict[str, tuple[bool, float]] = {}

    @property
    def tracked_nonces(self) -> int:
        """How many nonces are remembered right now."""
        return len(self._seen)

    async def authenticate(self, headers: Mapping[str, str], body: bytes) -> str:
        """Return the validator hotkey if the challenge headers are valid for ``body``.

        Raises :class:`ChallengeRejected` with 401 (malformed, bad signature, stale or reused
        nonce), 403 (no validator permit) or 429 (nonce memory full).
        """
        claimed = headers.get(VALIDATOR_HEADER) or ""
        nonce = headers.get(NONCE_HEADER) or ""
        signature_hex = headers.get(SIGNATURE_HEADER) or ""
        if not (claimed and nonce and signature_hex):
            raise ChallengeRejected(
                f"validator challenges need {VALIDATOR_HEADER}, {NONCE_HEADER} and "
                f"{SIGNATURE_HEADER} headers",
                status=401,
                code="challenge_malformed",
            )
        if not is_address(claimed):
            raise ChallengeRejected(
                f"{VALIDATOR_HEADER} is not an address", status=401, code="challenge_malformed"
            )
        validator = to_checksum_address(claimed)
        stamp = nonce_timestamp(nonce)
        if stamp is None:
            raise ChallengeRejected(
                "nonce must be '<unix seconds>-<32..64 lowercase hex chars>'",
                status=401,
                code="challenge_malformed",
            )
        now = self._clock()
        if abs(now - stamp) > self._config.nonce_window_s:
            raise ChallengeRejected(
                f"nonce timestamp {stamp} is outside the {self._config.nonce_window_s:.0f} s "
                "window; check the validator's clock and use a fresh nonce",
                status=401,
                code="challenge_stale",
            )
        signer = _recover(
            challenge_message(miner=self._miner, nonce=nonce, body=body), signature_hex
        )
        if signer != validator:
            raise ChallengeRejected(
                "challenge signature does not match the validator hotkey, miner and body",
                status=401,
                code="challenge_bad_signature",
            )
        key = f"{validator}:{nonce}"
        self._prune(now)
        if key in self._seen:
            raise ChallengeRejected(
                "challenge nonce already used", status=401, code="challenge_replayed"
            )
        if len(self._seen) >= self._config.max_tracked_nonces:
            raise ChallengeRejected(
                "too many challenges in flight; retry shortly", status=429, code="challenge_busy"
            )
        # Record the nonce before the first await: a copy of this challenge sent concurrently
        # finds it taken instead of passing the check above while we wait for the permit.
        self._seen.add(key)
        heapq.heappush(self._expiry_heap, (stamp + self._config.nonce_window_s, key))
        if not await self._has_permit(validator, now):
            # Refused for the permit, not for the nonce: the nonce stays burnt (a validator
            # that gains a permit signs a fresh one).
            raise ChallengeRejected(
                f"{validator} holds no validator permit", status=403, code="no_validator_permit"
            )
        return validator

    def _prune(self, now: float) -> None:
        while self._expiry_heap and self._expiry_heap[0][0] < now:
            _, key = heapq.heappop(self._expiry_heap)
            self._seen.discard(key)

    async def _has_permit(self, hotkey: str, now: float) -> bool:
        cached = self._permit_cache.get(hotkey)
        if cached is not None and cached[1] > now:
            return cached[0]
        # The metagraph reader does blocking chain I/O; keep it off the event loop.
        allowed = bool(await asyncio.to_thread(self._permits.has_validator_permit, hotkey))
        if len(self._permit_cache) > 4 * self._config.max_tracked_nonces:
            self._permit_cache.clear()
        self._permit_cache[hotkey] = (allowed, now + self._config.permit_cache_ttl_s)
        return allowed


def _recover(message: str, signature_hex: str) -> str | None:
    try:
        signature = bytes.fromhex(signature_hex.removeprefix("0x"))
        return str(Account.recover_message(encode_defunct(text=message), signature=signature))
    except (ValueError, TypeError, BadSignature, KeyValidationError):
        return None
