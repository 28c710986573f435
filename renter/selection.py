"""Miner selection: a pure ranking over price, on-chain incentive and observed latency.

Policy (lowest score first; ties by hotkey so the order is deterministic)::

    eligible  = serves the model, both per-token prices <= max price, context fits
                max_tokens, not dropped (bad receipt), not cooling down after a failure
    cost      = worst-case price of this request at the miner's rates
                (prompt-size estimate x prompt price + max_tokens x completion price)
    cost_r    = cost / cheapest eligible cost                    (>= 1)
    latency_r = latency EMA / fastest eligible latency EMA       (>= 1; unmeasured = 1)
    incent_n  = incentive / highest eligible incentive           (in [0, 1])
    score     = cost_r * latency_r ** latency_weight / (1 + incentive_weight * incent_n)

Price dominates (it is what the renter pays), a miner twice as slow as the fastest costs
``2 ** 0.5 = 1.41x`` in score by default, and the validators' verdict (incentive) gives up to
25% off. An unmeasured miner counts as fast as the fastest so it gets tried once and
measured. The proxy walks the ranking and takes the first miner with a free channel, so load
spills to the next-best miner when the best one's channels are all busy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from renter.config import SelectionConfig
from renter.market import MinerOffer


@dataclass
class MinerHealth:
    """What the proxy has observed of one miner (mutable; owned by the proxy)."""

    #: EMA of seconds per request to first byte (non-streamed: to the whole answer).
    latency_s: float | None = None
    #: EMA of completion tokens per second after the first byte (streams) or overall.
    tokens_per_s: float | None = None
    #: EMA of time to first token (streams only).
    ttft_s: float | None = None
    requests: int = 0
    failures: int = 0
    #: Monotonic time until which the miner is skipped (after a failure).
    cooldown_until: float = 0.0
    #: A bad receipt: never used again.
    dropped: bool = False
    note: str = ""

    def observe(self, *, latency_s: float, tokens: int, total_s: float, alpha: float) -> None:
        """Fold one successful request into the EMAs."""
        self.requests += 1
        self.latency_s = _ema(self.latency_s, latency_s, alpha)
        if tokens > 0 and total_s > 0:
            self.tokens_per_s = _ema(self.tokens_per_s, tokens / total_s, alpha)

    def to_json(self) -> dict[str, object]:
        return {
            "latency_s": self.latency_s,
            "tokens_per_s": self.tokens_per_s,
            "ttft_s": self.ttft_s,
            "requests": self.requests,
            "failures": self.failures,
            "dropped": self.dropped,
            "note": self.note,
        }


def _ema(old: float | None, new: float, alpha: float) -> float:
    return new if old is None else (1 - alpha) * old + alpha * new


@dataclass(frozen=True)
class RankedMiner:
    """A candidate and its score (lower is better)."""

    offer: MinerOffer
    score: float
    cost: int


def eligible(
    offer: MinerOffer,
    *,
    model: str,
    max_price_per_token: int | None,
    max_tokens: int,
    health: MinerHealth | None,
    now: float,
) -> bool:
    """Whether ``offer`` may serve this request at all."""
    if offer.model != model:
        return False
    if max_price_per_token is not None and (
        offer.price_prompt > max_price_per_token or offer.price_completion > max_price_per_token
    ):
        return False
    if offer.context_length and max_tokens > offer.context_length:
        return False
    return not (health is not None and (health.dropped or health.cooldown_until > now))


def rank_miners(
    offers: Iterable[MinerOffer],
    *,
    model: str,
    prompt_tokens: int,
    max_tokens: int,
    max_price_per_token: int | None,
    health: Mapping[str, MinerHealth],
    config: SelectionConfig,
    now: float,
) -> list[RankedMiner]:
    """Eligible offers, best first (module docs)."""
    candidates = [
        o
        for o in offers
        if eligible(
            o,
            model=model,
            max_price_per_token=max_price_per_token,
            max_tokens=max_tokens,
            health=health.get(o.hotkey),
            now=now,
        )
    ]
    if not candidates:
        return []
    costs = {o.hotkey: o.max_price(prompt_tokens, max_tokens) for o in candidates}
    cheapest = min(costs.values())
    latencies = [
        h.latency_s
        for o in candidates
        if (h := health.get(o.hotkey)) is not None and h.latency_s is not None
    ]
    fastest = min(latencies) if latencies else None
    top_incentive = max(o.incentive for o in candidates)
    ranked = []
    for offer in candidates:
        cost = costs[offer.hotkey]
        cost_r = cost / cheapest if cheapest > 0 else (1.0 if cost == 0 else float(cost))
        h = health.get(offer.hotkey)
        latency_r = 1.0
        if fastest is not None and fastest > 0 and h is not None and h.latency_s is not None:
            latency_r = h.latency_s / fastest
        incentive_n = offer.incentive / top_incentive if top_incentive > 0 else 0.0
        score = (
            cost_r
            * latency_r**config.latency_weight
            / (1.0 + config.incentive_weight * incentive_n)
        )
        ranked.append(RankedMiner(offer=offer, score=score, cost=cost))
    ranked.sort(key=lambda r: (r.score, r.offer.hotkey))
    return ranked


__all__ = ["MinerHealth", "RankedMiner", "eligible", "rank_miners"]
