"""``latent bittensor ...`` end to end over the recorded finney exchange (no network)."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest
from substrateinterface import Keypair, KeypairType
from subtensor_env import replay_substrate
from typer.testing import CliRunner

import latent.bittensor_cli as bcli
from chain.bittensor.client import SubtensorClient
from latent.cli import app

BLOCK_HASH = "0xdb13c066e2c63969f140164fb3bfe7a0aaa7b71407fc0fe525d68e57329ef9d0"
# Hyperparameters are not in the recording: the test states them (storage answers built
# with the recorded runtime's own encoding) and checks they come out as stated.
STATED = {
    "Tempo": 360,
    "WeightsSetRateLimit": 100,
    "CommitRevealWeightsEnabled": True,
    "RevealPeriodEpochs": 1,
    "WeightsVersionKey": 2013,
    "MinAllowedWeights": 1,
    "MaxWeightsLimit": 65535,
    "MaxAllowedUids": 1024,
}


@cache
def _stated_storage() -> dict[tuple[str, str], Any]:
    substrate, _ = replay_substrate()
    substrate.init_runtime(block_hash=BLOCK_HASH)
    extra: dict[tuple[str, str], Any] = {}
    items = [(k, [1], v) for k, v in STATED.items()] + [("CommitRevealWeightsVersion", [], 4)]
    for item, params, value in items:
        fn = substrate.get_metadata_storage_function("SubtensorModule", item)
        key = substrate.create_storage_key("SubtensorModule", item, params).to_hex()
        obj = substrate.runtime_config.create_scale_object(fn.get_value_type_string())
        extra[("state_getStorageAt", json.dumps([key, BLOCK_HASH]))] = obj.encode(value).to_hex()
    return extra


@pytest.fixture
def recorded_cli(monkeypatch):
    extra = _stated_storage()
    monkeypatch.setattr(
        bcli,
        "open_client",
        lambda network, block_time=12.0: SubtensorClient(replay_substrate(extra)[0]),
    )
    return CliRunner()


def test_metagraph_json_from_the_recorded_exchange(recorded_cli):
    result = recorded_cli.invoke(
        app, ["bittensor", "metagraph", "--netuid", "1", "--network", "finney", "--json"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["block"] == 6_852_690 and len(out["neurons"]) == 1024
    assert out["neurons"][0]["hotkey"] == "5DkMmXtWf16RNdusZGCrJ7ca7ADPgRnZLVWCWbgA7s7sy1AQ"
    hp = out["hyperparameters"]
    assert (
        hp["tempo"],
        hp["weights_version_key"],
        hp["commit_reveal_enabled"],
        hp["commit_reveal_version"],
    ) == (
        360,
        2013,
        True,
        4,
    )


def test_metagraph_table(recorded_cli):
    result = recorded_cli.invoke(app, ["bittensor", "metagraph", "--netuid", "1"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "commit-reveal on (v4, reveal after 1 epochs)" in text and "version key 2013" in text


def test_weights_set_signs_with_a_bittensor_hotkey_file(tmp_path, monkeypatch):
    from test_errors_and_posting import SIGNER, _subnet

    hotkeys = tmp_path / "val" / "hotkeys"
    hotkeys.mkdir(parents=True)
    (hotkeys / "default").write_text(
        json.dumps({"secretSeed": "0x" + "07" * 32, "ss58Address": SIGNER.ss58_address})
    )
    sub = _subnet()
    monkeypatch.setattr(bcli, "open_client", lambda network, block_time=12.0: SubtensorClient(sub))
    result = CliRunner().invoke(
        app,
        [
            "bittensor",
            "weights",
            "set",
            "--netuid",
            "3",
            "--wallet",
            "val",
            "--wallet-path",
            str(tmp_path),
            "--weights",
            "0=1,2=0.5",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["values"] == [65535, 32768]
    assert isinstance(SIGNER, Keypair) and SIGNER.crypto_type == KeypairType.SR25519


def test_bad_weights_flag_and_address():
    runner = CliRunner()
    result = runner.invoke(app, ["bittensor", "address", "0x" + "00" * 19 + "01"])
    assert result.exit_code == 0 and result.output.strip().startswith("5")
    with pytest.raises(Exception, match="uid=score"):
        bcli.parse_weights("0:1")
