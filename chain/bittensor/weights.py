"""Scores -> the u16 weight vector subtensor takes (pure functions).

Subtensor stores each row max-upscaled (largest entry = 65535) and checks it against the
subnet's ``max_weight_limit`` (largest / sum <= limit / 65535) and ``min_allowed_weights``
(number of non-zero entries). The quantisation is the SDK's (``bittensor.intents.weights``):
``round(w / max(w) * 65535)`` with zeros dropped, after clipping to the max-weight limit by
redistributing mass, so the same scores give the same call bytes as ``bittensor``'s
``set_weights`` (``tests/bittensor/test_reference.py``). A lone weight on the validator's own
uid is exempt from both checks, as on chain.

Project weights for Latent's own Metagraph use floor rounding (``chain.weights``); this module
is only for subtensor.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate

from chain.bittensor.errors import TooFewWeights, WeightsRejected
from chain.bittensor.metagraph import U16_MAX, Hyperparameters, Metagraph


@dataclass(frozen=True)
class SubtensorWeights:
    """Parallel u16 uid / value lists in ascending uid order, as the extrinsic takes them."""

    uids: tuple[int, ...]
    values: tuple[int, ...]

    def as_dict(self) -> dict[int, int]:
        return dict(zip(self.uids, self.values, strict=True))


def quantize(uids: Sequence[int], weights: Sequence[float]) -> SubtensorWeights:
    """Max-upscale to u16 (``round(w / max * 65535)``), dropping entries that round to zero."""
    if len(uids) != len(weights):
        raise WeightsRejected(f"{len(uids)} uids but {len(weights)} weights")
    if any(not math.isfinite(w) or w < 0 for w in weights):
        raise WeightsRejected("weights must be finite and >= 0")
    top = max(weights, default=0.0)
    if top == 0:
        return SubtensorWeights((), ())
    pairs = [(int(u), round((w / top) * U16_MAX)) for u, w in zip(uids, weights, strict=True)]
    kept = [(u, v) for u, v in pairs if v != 0]
    return SubtensorWeights(tuple(u for u, _ in kept), tuple(v for _, v in kept))


def clip_to_max_weight(weights: Sequence[float], limit: float) -> list[float]:
    """Sum-normalise so that no entry exceeds ``limit`` (a fraction of the total).

    Entries above a cutoff are lowered to it and the row renormalised, the cutoff chosen so
    the largest entry lands on the limit (mass is redistributed, not dropped). When no
    distribution can satisfy the limit (``n * limit <= 1``) the row becomes uniform. Like the
    SDK's ``normalize_max_weight`` (which this equals), the cutoff subtracts an absolute eps
    of 1e-7: with shares near that size the limit may be overshot slightly (0.3036 for a
    0.3002 limit with shares of 1e-6 beside one of ~1); kept so the bridge sends what the
    official SDK sends.
    """
    n = len(weights)
    total = float(sum(weights))
    if n == 0 or total <= 0:
        raise WeightsRejected("every score is zero: there is nothing to set")
    if n * limit <= 1:
        return [1.0 / n] * n
    shares = sorted(w / total for w in weights)
    if shares[-1] <= limit:
        return [w / total for w in weights]
    eps = 1e-7
    running = list(accumulate(shares))
    kept = sum(1 for i, s in enumerate(shares) if s / ((n - i - 1) * s + running[i] + eps) < limit)
    cutoff = (limit * running[kept - 1] - eps) / (1 - limit * (n - kept)) * total
    clipped = [min(float(w), cutoff) for w in weights]
    clipped_total = sum(clipped)
    return [w / clipped_total for w in clipped]


def conform(
    weights: Mapping[int, float], hyper: Hyperparameters, own_uid: int | None = None
) -> SubtensorWeights:
    """Weights by uid -> the u16 vector subtensor accepts for this subnet, or a typed refusal.

    Clips to ``max_weight_limit``, quantises, and checks ``min_allowed_weights`` on what will
    actually be sent (a single weight on ``own_uid`` is exempt, as on chain).
    """
    uids = sorted(int(u) for u in weights)
    if any(not 0 <= u <= U16_MAX for u in uids):
        raise WeightsRejected("uids must be u16 values")
    values = [float(weights[u]) for u in uids]
    self_only = own_uid is not None and uids == [own_uid]
    if not self_only and hyper.max_weight_limit < U16_MAX:
        values = clip_to_max_weight(values, hyper.max_weight_limit / U16_MAX)
    out = quantize(uids, values)
    if not out.uids:
        raise WeightsRejected("every score is zero: there is nothing to set")
    if not self_only and len(out.uids) < hyper.min_allowed_weights:
        raise TooFewWeights(
            f"subnet {hyper.netuid} needs at least {hyper.min_allowed_weights} non-zero weights, "
            f"these scores give {len(out.uids)}: score more miners (give every registered "
            "miner you checked a score above zero)"
        )
    return out


def scores_to_uid_weights(
    scores: Mapping[str | int, float], metagraph: Metagraph
) -> dict[int, float]:
    """Scores keyed by hotkey (SS58) or uid -> weights keyed by the uid each hotkey holds now.

    Hotkeys no longer registered are dropped (their uid may belong to someone else); negative
    or non-finite scores count as zero; registered miners without a score get nothing.
    """
    by_hotkey = {n.hotkey: n.uid for n in metagraph.neurons}
    known_uids = {n.uid for n in metagraph.neurons}
    out: dict[int, float] = {}
    for key, score in scores.items():
        uid = by_hotkey.get(key) if isinstance(key, str) else int(key)
        if uid is None or uid not in known_uids:
            continue
        value = float(score)
        out[uid] = value if math.isfinite(value) and value > 0 else 0.0
    return out
