"""Pure Python models of the metagraph's rules, step for step with ``contracts/Metagraph.sol``.

Used by tests (the contract must agree exactly) and by clients that want to predict a price or
a pruned uid before sending a transaction.

Registration price (``contracts/libraries/BurnPrice.sol``): a per-block decay factor ``f`` in Q64
(the largest ``f < 2^64`` with ``pow_q64(f, half_life) <= 2^63``); the price at block ``b`` is
``clamp(stored * pow_q64(f, b - checkpoint) >> 64, min, max)``; a registration burns that price
and stores ``clamp(price * mult_bps // 10000, min, max)`` with the checkpoint at ``b``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

ONE_Q64 = 1 << 64
HALF_Q64 = 1 << 63
BPS = 10_000


def pow_q64(base: int, exponent: int) -> int:
    """``base^exponent`` in Q64 by square-and-multiply, each product rounded down."""
    result = ONE_Q64
    while exponent:
        if exponent & 1:
            result = (result * base) >> 64
        exponent >>= 1
        if exponent:
            base = (base * base) >> 64
    return result


@lru_cache(maxsize=64)
def decay_factor(half_life: int) -> int:
    """Largest Q64 ``f`` with ``pow_q64(f, half_life) <= 1/2`` (binary search, as on-chain)."""
    lo, hi = 0, ONE_Q64 - 1
    while hi - lo > 1:
        mid = (lo + hi) >> 1
        if pow_q64(mid, half_life) <= HALF_Q64:
            lo = mid
        else:
            hi = mid
    return lo


def _clamp(value: int, lo: int, hi: int) -> int:
    return max(lo, min(hi, value))


@dataclass(frozen=True)
class BurnModel:
    """The registration price state: stored price at ``block`` plus the parameters."""

    price: int
    block: int
    min_burn: int
    max_burn: int
    half_life: int
    increase_mult_bps: int

    def price_at(self, block: int) -> int:
        """What ``register`` burns at ``block`` (>= ``self.block``)."""
        decayed = (self.price * pow_q64(decay_factor(self.half_life), block - self.block)) >> 64
        return _clamp(decayed, self.min_burn, self.max_burn)

    def after_registration(self, block: int) -> tuple[int, BurnModel]:
        """(burned, next state) for one registration at ``block``."""
        burned = self.price_at(block)
        bumped = _clamp(burned * self.increase_mult_bps // BPS, self.min_burn, self.max_burn)
        return burned, replace(self, price=bumped, block=block)


def prune_uid(
    emission: Sequence[int], registered_at: Sequence[int], block: int, immunity_period: int
) -> int | None:
    """The uid a full subnet replaces at ``block``: lowest emission among non-immune uids, ties
    to the earlier registration, then the lower uid; ``None`` when every uid is immune."""
    candidates = [
        (emission[uid], registered_at[uid], uid)
        for uid in range(len(emission))
        if block >= registered_at[uid] + immunity_period
    ]
    return min(candidates)[2] if candidates else None


def permitted_uids(stakes: Sequence[int], max_validators: int) -> frozenset[int]:
    """Validator permits: the ``max_validators`` uids with the most positive stake (ties: lower uid)."""
    ranked = sorted((uid for uid, s in enumerate(stakes) if s > 0), key=lambda u: (-stakes[u], u))
    return frozenset(ranked[:max_validators])


def reveal_window(commit_block: int, tempo: int, reveal_period: int) -> int:
    """The window (``block // tempo``) in which a commit made at ``commit_block`` is revealed."""
    return commit_block // tempo + reveal_period


__all__ = [
    "BurnModel",
    "decay_factor",
    "permitted_uids",
    "pow_q64",
    "prune_uid",
    "reveal_window",
]
