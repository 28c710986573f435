"""Properties of the pure weight helpers (chain/weights.py) and the rule models."""

from __future__ import annotations

import math

from eth_abi import encode
from eth_utils import keccak
from hypothesis import given
from hypothesis import strategies as st

from chain.metagraph_rules import decay_factor, permitted_uids, pow_q64, prune_uid
from chain.weights import (
    U16_MAX,
    WeightSet,
    commit_hash,
    max_upscale_u16,
    normalize,
    pack_row,
    pack_u16,
    prepare_weights,
    stored_row,
    unpack_row,
    unpack_u16,
)

scores = st.lists(st.floats(min_value=0, max_value=1e9, allow_nan=False), min_size=1, max_size=256)
weight_maps = st.dictionaries(st.integers(0, 255), st.integers(0, U16_MAX), min_size=1, max_size=64)
HOTKEY = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


@given(scores)
def test_normalize_sums_to_one_or_zero(values: list[float]) -> None:
    out = normalize(values)
    assert len(out) == len(values) and all(x >= 0 for x in out)
    if sum(values) > 0:
        assert math.isclose(sum(out), 1.0, rel_tol=1e-9)
    else:
        assert out == [0.0] * len(values)


@given(scores)
def test_max_upscale_largest_is_u16_max_and_order_kept(values: list[float]) -> None:
    out = max_upscale_u16(values)
    assert all(0 <= x <= U16_MAX for x in out)
    if max(values) > 0:
        assert out[values.index(max(values))] == U16_MAX
        for a, b, x, y in zip(values, values[1:], out, out[1:], strict=False):
            if a <= b:
                assert x <= y  # monotone
    else:
        assert out == [0] * len(values)


@given(st.lists(st.integers(0, U16_MAX), min_size=1, max_size=256))
def test_max_upscale_on_u16_matches_integer_floor(values: list[int]) -> None:
    top = max(values)
    expected = [v * U16_MAX // top for v in values] if top else [0] * len(values)
    assert max_upscale_u16(values) == expected


@given(st.lists(st.integers(0, U16_MAX), max_size=256))
def test_pack_roundtrip(values: list[int]) -> None:
    assert unpack_u16(pack_u16(values)) == values
    lanes = values + [0] * (256 - len(values))
    assert unpack_row(pack_row(lanes)) == lanes


@given(
    weight_maps,
    st.randoms(use_true_random=False),
    st.binary(min_size=32, max_size=32),
    st.integers(0, 2**64 - 1),
)
def test_commit_hash_of_a_map_is_order_independent_but_of_a_sequence_is_not(
    weights: dict[int, int], rnd: object, salt: bytes, key: int
) -> None:
    items = list(weights.items())
    rnd.shuffle(items)  # type: ignore[attr-defined]
    shuffled = prepare_weights(dict(items))
    canonical = prepare_weights(weights)
    assert shuffled == canonical
    assert commit_hash(HOTKEY, shuffled, salt, key) == commit_hash(HOTKEY, canonical, salt, key)
    # The contract hashes the bytes as given: reversing the entries changes the hash...
    if len(canonical.uids) > 1:
        reversed_set = WeightSet(canonical.uids[::-1], canonical.values[::-1])
        assert commit_hash(HOTKEY, reversed_set, salt, key) != commit_hash(
            HOTKEY, canonical, salt, key
        )
        # ...but not the row that gets stored.
        assert stored_row(reversed_set) == stored_row(canonical)


@given(weight_maps, st.binary(min_size=32, max_size=32), st.integers(0, 2**64 - 1))
def test_commit_hash_is_abi_encode_in_documented_order(
    weights: dict[int, int], salt: bytes, key: int
) -> None:
    ws = prepare_weights(weights)
    expected = keccak(
        encode(
            ["address", "bytes", "bytes", "bytes32", "uint64"],
            [HOTKEY, pack_u16(ws.uids), pack_u16(ws.values), salt, key],
        )
    )
    assert commit_hash(HOTKEY, ws, salt, key) == expected
    assert commit_hash(HOTKEY, ws, bytes(32), key) != commit_hash(HOTKEY, ws, b"\x01" * 32, key)


@given(weight_maps, st.sets(st.integers(0, 255)))
def test_stored_row_drops_then_upscales(weights: dict[int, int], dropped: set[int]) -> None:
    ws = prepare_weights(weights)
    row = stored_row(ws, frozenset(dropped))
    assert all(row[u] == 0 for u in dropped)
    kept = [weights[u] for u in ws.uids if u not in dropped]
    if kept and max(kept) > 0:
        assert max(row) == U16_MAX


@given(st.integers(1, 100_000))
def test_decay_factor_halves_within_half_life(half_life: int) -> None:
    f = decay_factor(half_life)
    assert pow_q64(f, half_life) <= 1 << 63 < pow_q64(f + 1, half_life)


@given(
    st.lists(st.tuples(st.integers(0, 5), st.integers(0, 50)), min_size=1, max_size=20),
    st.integers(0, 60),
    st.integers(0, 30),
)
def test_prune_uid_rule(neurons: list[tuple[int, int]], block: int, immunity: int) -> None:
    emission = [e for e, _ in neurons]
    registered = [r for _, r in neurons]
    uid = prune_uid(emission, registered, block, immunity)
    eligible = [u for u in range(len(neurons)) if block >= registered[u] + immunity]
    if not eligible:
        assert uid is None
    else:
        assert uid in eligible
        for other in eligible:
            assert (emission[uid], registered[uid], uid) <= (
                emission[other],
                registered[other],
                other,
            )


@given(st.lists(st.integers(0, 10), max_size=40), st.integers(1, 10))
def test_permits_are_top_k_positive(stakes: list[int], k: int) -> None:
    chosen = permitted_uids(stakes, k)
    assert len(chosen) == min(k, sum(1 for s in stakes if s > 0))
    for u in chosen:
        assert stakes[u] > 0
        for v in set(range(len(stakes))) - chosen:
            assert (stakes[u], -u) > (stakes[v], -v)
