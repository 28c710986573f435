"""``validator.scoring``: pure properties of round scores, EMA records and chain weights."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chain.errors import ConfigError, LatentError
from validator.scoring import (
    CheckOutcome,
    MinerRecord,
    ScoringConfig,
    round_scores,
    update_records,
    weights_for_chain,
)

HOTKEYS = [f"0x{i:040x}" for i in range(1, 7)]
CONFIG = ScoringConfig()


@st.composite
def outcomes_for(draw: st.DrawFn, hotkey: str) -> CheckOutcome:
    kind = draw(st.sampled_from(["ok", "ok", "ok", "timeout", "invalid", "cheat"]))
    if kind == "timeout":
        return CheckOutcome(hotkey, False, False, False, "timeout")
    if kind in ("invalid", "cheat"):
        return CheckOutcome(hotkey, True, False, kind == "cheat", kind)
    elapsed = draw(st.floats(0.0, 30.0))
    return CheckOutcome(
        hotkey,
        True,
        True,
        False,
        "ok",
        completion_tokens=draw(st.integers(0, 512)),
        elapsed_s=elapsed,
        ttft_s=draw(st.floats(0.0, elapsed)),
    )


@st.composite
def rounds(draw: st.DrawFn) -> list[CheckOutcome]:
    hotkeys = draw(st.lists(st.sampled_from(HOTKEYS), unique=True, max_size=len(HOTKEYS)))
    result: list[CheckOutcome] = []
    for hk in hotkeys:
        result += draw(st.lists(outcomes_for(hk), min_size=1, max_size=4))
    return result


configs = st.builds(
    ScoringConfig,
    ema_alpha=st.floats(0.01, 1.0),
    cheat_penalty_rounds=st.integers(0, 5),
    speed_weight_tps=st.floats(0.0, 1.0),
)


def ok(hotkey: str, tokens: int = 64, elapsed: float = 1.0, ttft: float = 0.1) -> CheckOutcome:
    return CheckOutcome(hotkey, True, True, False, "ok", tokens, elapsed, ttft)


@given(rounds(), configs)
def test_round_scores_lie_in_unit_interval(outcomes: list[CheckOutcome], cfg: ScoringConfig):
    scores = round_scores(outcomes, cfg)
    assert set(scores) == {o.hotkey for o in outcomes}
    assert all(0.0 <= s <= 1.0 for s in scores.values())


@given(rounds(), st.randoms(use_true_random=False))
def test_permuting_outcomes_changes_nothing(outcomes: list[CheckOutcome], rnd) -> None:
    shuffled = list(outcomes)
    rnd.shuffle(shuffled)
    assert round_scores(shuffled, CONFIG) == round_scores(outcomes, CONFIG)
    registered = dict.fromkeys(HOTKEYS, 5)
    assert update_records({}, shuffled, 0, registered, CONFIG) == update_records(
        {}, outcomes, 0, registered, CONFIG
    )


@given(rounds())
def test_a_cheat_or_no_valid_check_zeroes_the_round(outcomes: list[CheckOutcome]) -> None:
    scores = round_scores(outcomes, CONFIG)
    for hk in scores:
        mine = [o for o in outcomes if o.hotkey == hk]
        if any(o.cheated for o in mine) or not any(o.valid for o in mine):
            assert scores[hk] == 0.0


@given(rounds(), st.sampled_from(HOTKEYS), st.integers(1, 3))
def test_a_timed_out_miner_scores_zero_for_the_round(
    others: list[CheckOutcome], hotkey: str, checks: int
) -> None:
    outcomes = [o for o in others if o.hotkey != hotkey]
    outcomes += [CheckOutcome(hotkey, False, False, False, "timeout")] * checks
    assert round_scores(outcomes, CONFIG)[hotkey] == 0.0


@given(
    rounds(),
    st.integers(1, 512),
    st.floats(0.01, 30.0),
    st.floats(0.0, 1.0),
    st.floats(1.0, 4.0),
    st.floats(0.0, 1.0),
    st.integers(0, 2),
)
def test_a_faster_valid_miner_never_scores_less(
    others: list[CheckOutcome],
    tokens: int,
    elapsed: float,
    ttft_share: float,
    slowdown: float,
    ttft_gain: float,
    failures: int,
) -> None:
    fast, slow = "0x" + "a" * 40, "0x" + "b" * 40
    ttft = elapsed * ttft_share
    outcomes = [
        *others,
        ok(fast, tokens, elapsed, ttft * (1.0 - ttft_gain)),
        ok(slow, tokens, elapsed * slowdown, ttft),
    ]
    # Same availability for both.
    outcomes += [CheckOutcome(fast, False, False, False, "timeout")] * failures
    outcomes += [CheckOutcome(slow, False, False, False, "timeout")] * failures
    scores = round_scores(outcomes, CONFIG)
    fast_key, slow_key = (next(k for k in scores if k.lower() == h) for h in (fast, slow))
    assert scores[fast_key] >= scores[slow_key]
    assert scores[slow_key] > 0.0


def test_median_miner_and_clamps() -> None:
    cfg = ScoringConfig(speed_weight_tps=0.5, max_relative_speed=2.0, min_relative_speed=0.1)
    a, b, c = HOTKEYS[:3]
    scores = round_scores([ok(a, 100, 1.0, 0.1), ok(b, 1000, 1.0, 0.01), ok(c, 1, 1.0, 10.0)], cfg)
    assert scores[a] == pytest.approx(0.5)  # the median miner: 1 / max_relative_speed
    assert scores[b] == pytest.approx(1.0)  # 10x faster clamps at 2x
    assert scores[c] == pytest.approx(0.1 / 2.0)  # far slower clamps at 0.1x


def test_availability_scales_the_score() -> None:
    a, b = HOTKEYS[:2]
    timeout = CheckOutcome(a, False, False, False, "timeout")
    scores = round_scores([ok(a), ok(a), ok(a), timeout, ok(b)], CONFIG)
    assert scores[a] == pytest.approx(0.75 * scores[b])


@given(st.integers(0, 6), st.integers(0, 30))
def test_a_cheat_scores_zero_for_the_penalty_window(penalty: int, after: int) -> None:
    cfg = ScoringConfig(cheat_penalty_rounds=penalty, ema_alpha=0.5)
    hk, other = HOTKEYS[:2]
    registered = {hk: 3, other: 3}
    records = update_records({}, [ok(hk), ok(other)], 0, registered, cfg)
    assert records[hk].score > 0
    records = update_records(
        records, [CheckOutcome(hk, True, False, True, "bad tokens"), ok(other)], 1, registered, cfg
    )
    assert records[hk].score == 0.0 and records[hk].cheats == 1
    assert records[hk].penalty_until_round == 1 + penalty
    for r in range(2, 2 + after):
        records = update_records(records, [ok(hk), ok(other)], r, registered, cfg)
        if r <= 1 + penalty:
            assert records[hk].score == 0.0, r
        else:
            assert records[hk].score > 0.0, r


@given(rounds(), rounds(), configs)
def test_records_stay_in_range_and_drop_unregistered(
    first: list[CheckOutcome], second: list[CheckOutcome], cfg: ScoringConfig
) -> None:
    registered = dict.fromkeys(HOTKEYS[:4], 7)
    records = update_records({}, first, 0, registered, cfg)
    records = update_records(records, second, 1, registered, cfg)
    assert set(records) <= set(registered)
    for record in records.values():
        assert 0.0 <= record.score <= 1.0
        assert record.checks == record.passes + record.fails + record.timeouts
        assert record.rounds in (1, 2)


def test_missing_miner_decays_and_reregistered_hotkey_starts_fresh() -> None:
    hk, other = HOTKEYS[:2]
    cfg = ScoringConfig(ema_alpha=0.5)
    records = update_records({}, [ok(hk), ok(other)], 0, {hk: 10, other: 10}, cfg)
    first = records[hk].score
    records = update_records(records, [ok(other)], 1, {hk: 10, other: 10}, cfg)
    assert records[hk].score == pytest.approx(first / 2)
    assert records[hk].last_reason == "not checked"
    # Pruned, then registered again at block 50: a new uid, a new record.
    records = update_records(records, [ok(other)], 2, {hk: 50, other: 10}, cfg)
    assert records[hk].score == 0.0 and records[hk].rounds == 1 and records[hk].checks == 0
    assert records[hk].uid_registered_at == 50
    # Deregistered: dropped.
    assert hk not in update_records(records, [ok(hk)], 3, {other: 10}, cfg)


def test_hotkeys_are_canonical_whatever_case_callers_use() -> None:
    lower = "0x" + "ab" * 20
    upper = "0x" + "AB" * 20
    records = update_records({}, [ok(lower)], 0, {upper: 1}, CONFIG)
    (key,) = records
    assert key not in (lower, upper) and key.lower() == lower  # checksummed
    assert weights_for_chain(records, {upper: 4}) == {4: 1.0}


@given(
    st.dictionaries(st.sampled_from(HOTKEYS), st.floats(0.0, 1.0)),
    st.permutations(list(range(len(HOTKEYS)))),
)
def test_weights_sum_to_one_or_are_empty_and_follow_hotkeys(
    scores: dict[str, float], uid_order: list[int]
) -> None:
    records = {hk: MinerRecord.fresh(hk, 0) for hk in scores}
    records = {hk: MinerRecord(**{**r.__dict__, "score": scores[hk]}) for hk, r in records.items()}
    uid_of = {hk: uid_order[i] for i, hk in enumerate(HOTKEYS[:-1])}  # the last has no uid
    weights = weights_for_chain(records, uid_of)
    if weights:
        assert math.isclose(sum(weights.values()), 1.0)
        assert all(w > 0 for w in weights.values())
    else:
        assert all(scores.get(hk, 0.0) == 0.0 for hk in uid_of)
    # Keyed by hotkey: each uid carries its own hotkey's share whatever the uid order.
    total = math.fsum(s for hk, s in scores.items() if hk in uid_of and s > 0)
    for hk, uid in uid_of.items():
        if scores.get(hk, 0.0) > 0:
            assert weights[uid] == pytest.approx(scores[hk] / total)
        else:
            assert uid not in weights


def test_bad_config_is_a_latent_error() -> None:
    with pytest.raises(ConfigError):
        ScoringConfig(ema_alpha=0.0)
    with pytest.raises(LatentError):
        ScoringConfig(min_relative_speed=3.0, max_relative_speed=2.0)


def test_an_honest_but_slow_miner_keeps_a_lower_non_zero_weight() -> None:
    """Gauntlet case (h): every check of the slow miner passes, at a fifth of the speed and
    with a slower first token; after a few rounds it holds less weight than the fast miners,
    but not zero, and a cheater holds none."""
    fast, fast2, slow, cheat = (
        "0x" + "a1" * 20,
        "0x" + "a2" * 20,
        "0x" + "a3" * 20,
        "0x" + "a4" * 20,
    )
    cfg = ScoringConfig()
    records: dict[str, MinerRecord] = {}
    registered = {hk: 1 for hk in (fast, fast2, slow, cheat)}
    for round_index in range(5):
        outcomes = [
            CheckOutcome(fast, True, True, False, "ok", 64, 0.5, 0.05),
            CheckOutcome(fast2, True, True, False, "ok", 64, 0.55, 0.05),
            CheckOutcome(slow, True, True, False, "ok", 64, 2.5, 0.3),
            CheckOutcome(cheat, True, False, True, "hidden-state mismatch", 64, 0.4, 0.04),
        ]
        records = update_records(records, outcomes, round_index, registered, cfg)
    weights = weights_for_chain(records, {fast: 0, fast2: 1, slow: 2, cheat: 3})
    assert 3 not in weights
    assert 0 < weights[2] < min(weights[0], weights[1])
