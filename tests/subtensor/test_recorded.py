"""Metagraph decoding on a recorded finney exchange, through the real substrate-interface."""

from __future__ import annotations

import pytest
from subtensor_env import recorded_exchange, replay_substrate

from chain.bittensor.client import SubtensorClient
from chain.bittensor.metagraph import decode_neurons_lite
from chain.bittensor.scale import ScaleDecodeError

BLOCK_HASH = "0xdb13c066e2c63969f140164fb3bfe7a0aaa7b71407fc0fe525d68e57329ef9d0"


def test_head_and_neurons_from_recorded_finney_exchange(recorded):
    substrate, transport = recorded
    client = SubtensorClient(substrate)
    block, block_hash = client.head()
    assert (block, block_hash) == (6_852_690, BLOCK_HASH)
    neurons = client.neurons(1, block_hash)
    assert len(neurons) == 1024
    assert [n.uid for n in neurons] == list(range(1024))
    first = neurons[0]
    assert first.hotkey == "5DkMmXtWf16RNdusZGCrJ7ca7ADPgRnZLVWCWbgA7s7sy1AQ"
    assert first.coldkey == "5EhQWxcFdYAk7B9tNdQnJQFzww5N3964rbsMk55SujcX3PwM"
    assert first.stake_rao == 2_557_172_316
    assert first.last_update == 2_543_521
    assert (first.axon.ip, first.axon.port, first.axon.version) == ("192.222.59.109", 6028, 9011001)
    assert len({n.hotkey for n in neurons}) == 1024  # keyed by hotkey: unique
    permits = [n for n in neurons if n.validator_permit]
    assert 0 < len(permits) <= 256
    assert all(0.0 <= n.incentive <= 1.0 and 0.0 <= n.dividends <= 1.0 for n in neurons)
    assert (
        "state_call",
        ["NeuronInfoRuntimeApi_get_neurons_lite", "0100", BLOCK_HASH],
    ) in transport.requests


def test_recorded_neurons_decode_like_the_sdk(sdk_codec):
    """Every field of every neuron equals the SDK's metadata-driven decoding of the same bytes."""
    raw = _recorded_neurons_bytes()
    ours = decode_neurons_lite(raw)
    output = sdk_codec.runtime_api_map["NeuronInfoRuntimeApi"]["get_neurons_lite"]["output"]
    theirs = sdk_codec.decode(output, raw)
    assert len(ours) == len(theirs)
    for mine, ref in zip(ours, sorted(theirs, key=lambda n: n["uid"]), strict=True):
        assert mine.uid == ref["uid"]
        assert mine.hotkey == ref["hotkey"] and mine.coldkey == ref["coldkey"]
        assert mine.active == ref["active"]
        assert mine.stake_rao == sum(amount for _, amount in ref["stake"])
        assert mine.emission_rao == ref["emission"]
        assert mine.last_update == ref["last_update"]
        assert mine.validator_permit == ref["validator_permit"]
        assert mine.pruning_score == ref["pruning_score"]
        for name in ("rank", "incentive", "consensus", "trust", "validator_trust", "dividends"):
            assert round(getattr(mine, name) * 65535) == ref[name], name
        axon = ref["axon_info"]
        assert (mine.axon.port, mine.axon.version, mine.axon.block, mine.axon.ip_type) == (
            axon["port"],
            axon["version"],
            axon["block"],
            axon["ip_type"],
        )


def test_truncated_or_padded_bytes_are_a_clear_error():
    raw = _recorded_neurons_bytes()
    with pytest.raises(ScaleDecodeError, match="upgrade Latent"):
        decode_neurons_lite(raw[:-1])
    with pytest.raises(ScaleDecodeError, match="bytes left"):
        decode_neurons_lite(raw + b"\x00")


def _recorded_neurons_bytes() -> bytes:
    calls = recorded_exchange()["state_call"]
    (result,) = [v["result"] for k, v in calls.items() if "get_neurons_lite" in k]
    return bytes.fromhex(result.removeprefix("0x"))


def test_weight_rows_from_a_recorded_query_map():
    """``Weights[23]`` as finney answered it (state_getKeysPaged + state_queryStorageAt)."""
    substrate, transport = replay_substrate(exchange="finney_netuid23_weights_exchange")
    head = "0x1b3f85dc8c83cada6d1782c955973a509a37c62af3d6ba29f5fd816aee37eb3b"
    assert SubtensorClient(substrate).weights(23, head) == {10: ((10, 65535),)}
    assert [m for m, _ in transport.requests].count("state_getKeysPaged") == 2
