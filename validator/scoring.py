"""Scoring: check outcomes -> per-round scores -> per-hotkey EMA records -> weights by uid.

Pure functions over plain data (no I/O, no clock, no chain); the validator's run loop feeds
them and persists the result (``validator.state``).

One round's score of a hotkey (:func:`round_scores`) is

    validity gate x speed x availability

* **validity gate**: any check that positively failed verification (``cheated``) zeroes the
  round; a hotkey with no valid check scores 0 (a timeout is an explicit zero, not a skip);
* **availability**: the fraction of the hotkey's checks that came back valid;
* **speed**: relative to the *median valid miner of the round*: ``speed_weight_tps x rel_tps +
  (1 - speed_weight_tps) x rel_ttft``, where ``rel_tps = tps / median tps`` (tokens/s: all
  completion tokens of the hotkey's valid checks over their total elapsed time) and
  ``rel_ttft = median TTFT / TTFT`` (mean time to first token of its valid checks), each
  clamped to ``[min_relative_speed, max_relative_speed]``; divided by
  ``max_relative_speed`` so the score stays in [0, 1] (the median miner scores
  ``1 / max_relative_speed``).

:func:`update_records` folds a round into the per-hotkey EMA (``ema_alpha`` on the newest
round). Records are keyed by **hotkey**, never by uid; a hotkey whose uid registration block
changed (pruned and registered again) starts from a fresh record, unregistered hotkeys are
dropped, a registered hotkey with a record but no outcome this round scores 0 for the round.
A cheat resets the score to 0 and keeps it at 0 for this round and the next
``cheat_penalty_rounds`` rounds whatever the later checks say.

:func:`weights_for_chain` turns the records into normalised weights by uid of the current
metagraph (``chain.weights.prepare_weights`` then makes them u16).
"""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from eth_utils import to_checksum_address

from chain.errors import ConfigError

__all__ = [
    "CheckOutcome",
    "MinerRecord",
    "ScoringConfig",
    "hotkey_key",
    "round_scores",
    "summarize_reasons",
    "update_records",
    "weights_for_chain",
]

_EVM_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


def hotkey_key(hotkey: str) -> str:
    """The canonical form records are keyed by: EVM addresses checksummed, SS58 as given."""
    return to_checksum_address(hotkey) if _EVM_ADDRESS.match(hotkey) else hotkey


@dataclass(frozen=True)
class CheckOutcome:
    """One check of one miner in one round."""

    hotkey: str
    """The miner's hotkey (EVM address or SS58); scores are keyed by it, never by uid."""
    responded: bool
    """False for a timeout, connection error or malformed answer: an explicit zero."""
    valid: bool
    """The proof verified (always False when ``responded`` is False)."""
    cheated: bool
    """Verification positively failed (wrong model, bad tokens, ...), not just a timeout."""
    reason: str
    """Why, for logs: ``"ok"``, ``"timeout"``, ``"hidden-state mismatch in chunk 0"``, ..."""
    completion_tokens: int = 0
    """Tokens generated in the answer."""
    elapsed_s: float = 0.0
    """Seconds from request start to the last byte."""
    ttft_s: float = 0.0
    """Seconds to the first token."""

    @property
    def passed(self) -> bool:
        """Counts toward availability and speed: answered, verified, and not a cheat."""
        return self.responded and self.valid and not self.cheated


@dataclass(frozen=True)
class ScoringConfig:
    """How checks turn into scores. Parsed once at the entry point, passed explicitly."""

    ema_alpha: float = 0.3
    """Weight of the newest round in the per-hotkey EMA (0 < alpha <= 1)."""
    cheat_penalty_rounds: int = 10
    """Rounds after the one with a caught cheat during which the hotkey scores 0 whatever
    its checks say (the round of the cheat itself also scores 0)."""
    speed_weight_tps: float = 0.7
    """Share of tokens/s in the speed factor; the rest is time to first token."""
    min_relative_speed: float = 0.1
    """Lower clamp of relative tokens/s and relative TTFT (a valid but slow miner keeps
    this much of the speed factor)."""
    max_relative_speed: float = 2.0
    """Upper clamp of relative tokens/s and relative TTFT; also the divisor that maps the
    speed factor into [0, 1], so being more than this many times faster than the median
    earns nothing more."""
    min_elapsed_s: float = 1e-3
    """Floor on elapsed seconds when computing tokens/s (a 0 s timing is a clock artefact)."""
    min_ttft_s: float = 1e-3
    """Floor on time to first token (same reason)."""

    def __post_init__(self) -> None:
        if not 0.0 < self.ema_alpha <= 1.0:
            raise ConfigError(f"ema_alpha must be in (0, 1], got {self.ema_alpha}")
        if self.cheat_penalty_rounds < 0:
            raise ConfigError(f"cheat_penalty_rounds must be >= 0, got {self.cheat_penalty_rounds}")
        if not 0.0 <= self.speed_weight_tps <= 1.0:
            raise ConfigError(f"speed_weight_tps must be in [0, 1], got {self.speed_weight_tps}")
        if not 0.0 < self.min_relative_speed <= self.max_relative_speed:
            raise ConfigError(
                "need 0 < min_relative_speed <= max_relative_speed, got "
                f"{self.min_relative_speed} and {self.max_relative_speed}"
            )
        if self.min_elapsed_s <= 0 or self.min_ttft_s <= 0:
            raise ConfigError("min_elapsed_s and min_ttft_s must be > 0")


@dataclass(frozen=True)
class MinerRecord:
    """What the validator remembers about one hotkey."""

    hotkey: str
    score: float
    """EMA of the round scores, in [0, 1]."""
    rounds: int
    """Rounds folded into this record."""
    checks: int
    passes: int
    fails: int
    """Checks that answered but did not verify (cheats included)."""
    timeouts: int
    """Checks that got no usable answer."""
    penalty_until_round: int
    """Last round index of the cheat penalty (-1: never caught)."""
    last_tps: float
    """Tokens/s of the last round with a valid check."""
    last_ttft_s: float
    """Mean time to first token of the last round with a valid check."""
    last_reason: str
    """Summary of the last round's check reasons (``"ok x3, timeout x1"``)."""
    uid_registered_at: int
    """Block at which the hotkey's uid was registered: a re-registered hotkey starts fresh."""
    cheats: int = 0
    """Checks caught cheating."""

    @classmethod
    def fresh(cls, hotkey: str, registered_at: int) -> MinerRecord:
        """A hotkey never scored (or re-registered): score 0, nothing counted."""
        return cls(hotkey, 0.0, 0, 0, 0, 0, 0, -1, 0.0, 0.0, "", registered_at)

    def in_penalty(self, round_index: int) -> bool:
        return round_index <= self.penalty_until_round


@dataclass(frozen=True)
class _RoundStats:
    checks: int
    passes: int
    fails: int
    timeouts: int
    cheats: int
    tps: float  # 0 when no valid check
    ttft_s: float  # 0 when no valid check
    reasons: str


def _round_stats(outcomes: Sequence[CheckOutcome], config: ScoringConfig) -> _RoundStats:
    """Per-hotkey aggregates; order-independent (exact sums via ``math.fsum``)."""
    valid = [o for o in outcomes if o.passed]
    tps = ttft = 0.0
    if valid:
        elapsed = max(math.fsum(o.elapsed_s for o in valid), config.min_elapsed_s)
        tps = sum(max(0, o.completion_tokens) for o in valid) / elapsed
        ttft = max(math.fsum(o.ttft_s for o in valid) / len(valid), config.min_ttft_s)
    return _RoundStats(
        checks=len(outcomes),
        passes=len(valid),
        fails=sum(1 for o in outcomes if o.responded and not o.passed),
        timeouts=sum(1 for o in outcomes if not o.responded),
        cheats=sum(1 for o in outcomes if o.cheated),
        tps=tps,
        ttft_s=ttft,
        reasons=summarize_reasons(o.reason for o in outcomes),
    )


def summarize_reasons(reasons: Iterable[str]) -> str:
    """``"ok x2, timeout x1"``: counts of each reason, most frequent first, then by name."""
    counts = Counter(str(r) for r in reasons)
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{reason} x{n}" for reason, n in ordered)


def _group(outcomes: Sequence[CheckOutcome]) -> dict[str, list[CheckOutcome]]:
    grouped: dict[str, list[CheckOutcome]] = {}
    for outcome in outcomes:
        grouped.setdefault(hotkey_key(outcome.hotkey), []).append(outcome)
    return grouped


def _clamp(x: float, low: float, high: float) -> float:
    return min(high, max(low, x))


def _scores_from_stats(stats: Mapping[str, _RoundStats], config: ScoringConfig) -> dict[str, float]:
    eligible = [s for s in stats.values() if s.passes and not s.cheats]
    if not eligible:
        return dict.fromkeys(stats, 0.0)
    median_tps = statistics.median(sorted(s.tps for s in eligible))
    median_ttft = statistics.median(sorted(s.ttft_s for s in eligible))
    low, high = config.min_relative_speed, config.max_relative_speed
    w = config.speed_weight_tps
    scores: dict[str, float] = {}
    for hotkey, s in stats.items():
        if s.cheats or not s.passes:
            scores[hotkey] = 0.0
            continue
        # A median of 0 tokens/s (every valid answer empty) makes every miner equally fast.
        rel_tps = _clamp(s.tps / median_tps, low, high) if median_tps > 0 else 1.0
        rel_ttft = _clamp(median_ttft / s.ttft_s, low, high)
        speed = (w * rel_tps + (1.0 - w) * rel_ttft) / high
        availability = s.passes / s.checks
        scores[hotkey] = _clamp(availability * speed, 0.0, 1.0)
    return scores


def round_scores(outcomes: Sequence[CheckOutcome], config: ScoringConfig) -> dict[str, float]:
    """Score in [0, 1] of every hotkey with at least one outcome this round.

    validity gate (any cheat or no valid check -> 0) x speed relative to the round's median
    valid miner x availability (valid checks / checks). Independent of the outcomes' order.
    """
    stats = {hk: _round_stats(group, config) for hk, group in _group(outcomes).items()}
    return _scores_from_stats(stats, config)


def update_records(
    records: Mapping[str, MinerRecord],
    outcomes: Sequence[CheckOutcome],
    round_index: int,
    registered: Mapping[str, int],
    config: ScoringConfig,
) -> dict[str, MinerRecord]:
    """Fold round ``round_index`` into the per-hotkey records.

    ``registered`` maps every hotkey registered now to the block its uid was registered at
    (``Metagraph.registered_at``). Hotkeys not in it are dropped (outcomes included); a
    record whose registration block differs starts fresh; a registered hotkey with a record
    but no outcome scores 0 this round; a cheat zeroes the score now and for the next
    ``cheat_penalty_rounds`` rounds.
    """
    reg = {hotkey_key(hk): int(block) for hk, block in registered.items()}
    grouped = _group(outcomes)
    stats = {hk: _round_stats(group, config) for hk, group in grouped.items()}
    scores = _scores_from_stats(stats, config)
    alpha = config.ema_alpha
    updated: dict[str, MinerRecord] = {}
    for hk in sorted(set(grouped) | {hotkey_key(h) for h in records}):
        if hk not in reg:
            continue
        previous = records.get(hk)
        if previous is None:
            previous = next((r for h, r in records.items() if hotkey_key(h) == hk), None)
        if previous is None or previous.uid_registered_at != reg[hk]:
            previous = MinerRecord.fresh(hk, reg[hk])
        s = stats.get(hk)
        record = previous
        if s is not None and s.cheats:
            record = replace(
                record, score=0.0, penalty_until_round=round_index + config.cheat_penalty_rounds
            )
        raw = 0.0 if s is None or record.in_penalty(round_index) else scores[hk]
        score = _clamp((1.0 - alpha) * record.score + alpha * raw, 0.0, 1.0)
        record = replace(record, score=score, rounds=record.rounds + 1)
        if s is not None:
            record = replace(
                record,
                checks=record.checks + s.checks,
                passes=record.passes + s.passes,
                fails=record.fails + s.fails,
                timeouts=record.timeouts + s.timeouts,
                cheats=record.cheats + s.cheats,
                last_reason=s.reasons,
            )
            if s.passes:
                record = replace(record, last_tps=s.tps, last_ttft_s=s.ttft_s)
        else:
            record = replace(record, last_reason="not checked")
        updated[hk] = record
    return updated


def weights_for_chain(
    records: Mapping[str, MinerRecord], uid_of: Mapping[str, int]
) -> dict[int, float]:
    """Scores normalised to sum to 1, by uid of the current metagraph (``uid_of``: hotkey ->
    uid). Hotkeys without a uid and zero scores are left out; all-zero gives ``{}``."""
    uids = {hotkey_key(hk): int(uid) for hk, uid in uid_of.items()}
    raw: dict[int, float] = {}
    for hk, record in records.items():
        uid = uids.get(hotkey_key(hk))
        if uid is None or not record.score > 0.0:
            continue
        raw[uid] = raw.get(uid, 0.0) + record.score
    total = math.fsum(raw.values())
    if not total > 0.0:
        return {}
    return {uid: raw[uid] / total for uid in sorted(raw)}
