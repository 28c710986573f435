"""Pure parts of the bridge: quantisation, scores by hotkey, reveal schedule, SCALE, keyfiles."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.bittensor import keyfile, timelock
from chain.bittensor.errors import CommitRevealMismatch, TooFewWeights, WeightsRejected
from chain.bittensor.metagraph import Axon, Hyperparameters, Metagraph, Neuron
from chain.bittensor.scale import ScaleReader, encode_compact
from chain.bittensor.weights import clip_to_max_weight, conform, quantize, scores_to_uid_weights
from chain.errors import KeystoreError, LatentError


def hyper(**over) -> Hyperparameters:
    base = dict(
        netuid=1,
        tempo=360,
        weights_rate_limit=100,
        commit_reveal_enabled=False,
        commit_reveal_version=4,
        reveal_period_epochs=1,
        weights_version_key=0,
        min_allowed_weights=0,
        max_weight_limit=65535,
    )
    base.update(over)
    return Hyperparameters(**base)


weights_st = st.dictionaries(
    st.integers(0, 4095), st.floats(0, 1e9, allow_nan=False), min_size=1, max_size=64
).filter(lambda d: max(d.values()) > 0)


@settings(max_examples=100, deadline=None)
@given(weights=weights_st)
def test_quantised_vector_is_max_upscaled_sorted_and_zero_free(weights):
    out = conform(weights, hyper())
    assert max(out.values) == 65535
    assert list(out.uids) == sorted(out.uids) and 0 not in out.values
    assert set(out.uids) <= {u for u, w in weights.items() if w > 0}


@settings(max_examples=100, deadline=None)
@given(weights=weights_st, limit=st.integers(700, 65534))
def test_clipped_rows_respect_the_max_weight_limit(weights, limit):
    values = list(weights.values())
    clipped = clip_to_max_weight(values, limit / 65535)
    assert abs(sum(clipped) - 1) < 1e-9
    shares = [v / sum(values) for v in values if v > 0]
    # The SDK's algorithm (matched exactly, tests/subtensor/test_reference.py) subtracts an
    # absolute eps of 1e-7 from shares: the limit holds where every non-zero share dwarfs it
    # (found by hypothesis: shares of 1e-6 next to one of ~1 overshoot a 0.300 limit by 0.003).
    if len(shares) * limit / 65535 > 1 and min(shares) >= 1e-4:  # feasible, eps negligible
        assert max(clipped) <= limit / 65535 + 1e-6


def test_min_allowed_weights_and_zero_rows_are_refused():
    with pytest.raises(TooFewWeights, match="at least 3"):
        conform({0: 1.0, 1: 1.0}, hyper(min_allowed_weights=3))
    with pytest.raises(WeightsRejected, match="zero"):
        conform({0: 0.0}, hyper())
    with pytest.raises(WeightsRejected):
        quantize([1], [float("nan")])
    assert conform({7: 1.0}, hyper(min_allowed_weights=3), own_uid=7).uids == (7,)


def _neuron(uid: int, hotkey: str) -> Neuron:
    return Neuron(
        uid, hotkey, "c", True, Axon("0.0.0.0", 0, 4, 0, 0, 0), 0, 0, 0, 0, 0, 0, 0, 0, 0, False, 0
    )


def test_scores_by_hotkey_follow_the_uid_each_hotkey_holds_now():
    graph = Metagraph(1, 10, (_neuron(0, "a"), _neuron(1, "b")))
    assert scores_to_uid_weights({"b": 2.0, "a": -1.0, "gone": 5.0, 1: 3.0, 9: 1.0}, graph) == {
        1: 3.0,
        0: 0.0,
    }
    assert graph.uid_of("b") == 1 and graph.uid_of("gone") is None


def test_reveal_schedule_examples():
    state = timelock.EpochScheduleState(1000, 0, 50, 100, 5, 1040)
    # the commit lands in 1041 (epoch 50); epoch 51 fires at 1100
    assert timelock.predict_first_reveal_block(state, 1) == 1100
    assert timelock.predict_first_reveal_block(state, 2) == 1200
    pending = timelock.EpochScheduleState(1000, 1050, 50, 100, 5, 1040)
    assert timelock.predict_first_reveal_block(pending, 1) == 1050
    now = 1_800_000_000.0
    assert timelock.reveal_round(state, 1, 12.0, now) == int(
        (now + 63 * 12 - timelock.QUICKNET_GENESIS) // 3
    )
    assert timelock.round_time(1) == timelock.QUICKNET_GENESIS
    with pytest.raises(CommitRevealMismatch, match="tempo is 0"):
        timelock.predict_first_reveal_block(timelock.EpochScheduleState(0, 0, 0, 0, 0, 10), 1)
    with pytest.raises(CommitRevealMismatch):
        timelock.legacy_first_reveal_block(1, 0, 10, 1)


def test_payload_encoding():
    assert timelock.encode_payload(b"\x01\x02", [1, 256], [65535, 0], 7) == bytes.fromhex(
        "080102080100000108ffff00000700000000000000"
    )


@given(st.integers(0, 2**128 - 1))
def test_compact_round_trip(n):
    assert ScaleReader(encode_compact(n)).compact() == n


def test_keyfile_errors(tmp_path, monkeypatch):
    with pytest.raises(KeystoreError, match="btcli wallet new_hotkey"):
        keyfile.load_hotkey("nope", wallet_path=tmp_path)
    with pytest.raises(KeystoreError, match="plain file name"):
        keyfile.hotkey_path("../x")
    (tmp_path / "pub").write_text(json.dumps({"publicKey": "0x" + "00" * 32}))
    with pytest.raises(KeystoreError, match="only a public key"):
        keyfile.load_keyfile(tmp_path / "pub")
    (tmp_path / "bad").write_text(
        json.dumps({"secretSeed": "0x" + "01" * 32, "ss58Address": "5Wrong"})
    )
    with pytest.raises(KeystoreError, match="damaged"):
        keyfile.load_keyfile(tmp_path / "bad")
    (tmp_path / "enc").write_bytes(b"$NACL" + bytes(64))
    monkeypatch.delenv(keyfile.PASSWORD_ENV, raising=False)
    with pytest.raises(KeystoreError, match=keyfile.PASSWORD_ENV):
        keyfile.load_keyfile(tmp_path / "enc")
    (tmp_path / "old").write_bytes(b"gAAAAAB" + bytes(10))
    with pytest.raises(KeystoreError, match="re-encrypt"):
        keyfile.load_keyfile(tmp_path / "old", password="x")
    assert issubclass(KeystoreError, LatentError)
