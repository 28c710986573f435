"""Every refusal subtensor can give maps to a typed LatentError with advice; posting weights
picks the right extrinsic and refuses early with the chain's own error classes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from substrateinterface import Keypair, KeypairType
from substrateinterface.exceptions import SubstrateRequestException
from subtensor_env import metadata_hex

from chain.bittensor import errors as E
from chain.bittensor.client import SubtensorClient, network_url
from chain.bittensor.target import SubtensorWeightsTarget
from chain.errors import LatentError

CATEGORIES = {
    "HotKeyNotRegisteredInSubNet": E.NotRegistered,
    "NeuronNoValidatorPermit": E.NoValidatorPermit,
    "SettingWeightsTooFast": E.WeightsRateLimited,
    "CommittingWeightsTooFast": E.WeightsRateLimited,
    "TooManyUnrevealedCommits": E.WeightsRateLimited,
    "WeightVecLengthIsLow": E.TooFewWeights,
    "IncorrectWeightVersionKey": E.StaleVersionKey,
    "NotEnoughStakeToSetWeights": E.NotEnoughStake,
    "DuplicateUids": E.WeightsRejected,
    "UidVecContainInvalidOne": E.WeightsRejected,
    "MaxWeightExceeded": E.WeightsRejected,
    "WeightVecNotEqualSize": E.WeightsRejected,
    "UidsLengthExceedUidsInSubNet": E.WeightsRejected,
    "CommitRevealEnabled": E.CommitRevealMismatch,
    "CommitRevealDisabled": E.CommitRevealMismatch,
    "IncorrectCommitRevealVersion": E.CommitRevealMismatch,
    "MechanismDoesNotExist": E.SubnetNotFound,
    "SubnetNotExists": E.SubnetNotFound,
}


def _pallet_errors() -> list[tuple[str, list[str]]]:
    from scalecodec.base import RuntimeConfigurationObject, ScaleBytes
    from scalecodec.type_registry import load_type_registry_preset

    rc = RuntimeConfigurationObject()
    rc.update_type_registry(load_type_registry_preset("core"))
    md = rc.create_scale_object("MetadataVersioned", data=ScaleBytes(metadata_hex(14)))
    md.decode()
    rc.add_portable_registry(md)
    (pallet,) = [p for p in md.pallets if p.name == "SubtensorModule"]
    return [(e.name, list(e.docs)) for e in pallet.errors]


def test_every_subtensor_pallet_error_maps_to_a_typed_error_with_advice():
    names = _pallet_errors()
    assert len(names) > 100  # the recorded runtime (spec 343) has 123
    for name, docs in names:
        err = E.from_receipt_error({"type": "Module", "name": name, "docs": docs})
        assert isinstance(err, LatentError) and isinstance(err, E.SubtensorError)
        assert type(err).__name__ == name and err.chain_error == name
        assert str(err).startswith(f"subtensor refused: {name}")
        assert str(err).endswith(E.advice_for(name)) and len(E.advice_for(name)) > 15  # what to do
        assert E.error_class(name) is type(err)
    for name, category in CATEGORIES.items():
        assert name in {n for n, _ in names}
        assert isinstance(E.from_dispatch_error(name), category), name


@pytest.mark.parametrize(
    ("rpc_error", "category", "name"),
    [
        (
            {"code": 1010, "message": "Invalid Transaction", "data": "Custom error: 6"},
            E.WeightsRateLimited,
            "RateLimitExceeded",
        ),
        (
            {"code": 1010, "message": "Invalid Transaction", "data": "Custom error: 10"},
            E.NotRegistered,
            "HotKeyNotRegisteredInNetwork",
        ),
        (
            {"code": 1010, "message": "Invalid Transaction", "data": "Custom error: 3"},
            E.SubnetNotFound,
            "SubnetNotExists",
        ),
        (
            {
                "code": 1010,
                "message": "Invalid Transaction",
                "data": "Inability to pay some fees (e.g. account balance too low)",
            },
            E.TransactionRejected,
            "Payment",
        ),
        (
            {"code": 1010, "message": "Invalid Transaction", "data": "Transaction is outdated"},
            E.TransactionRejected,
            "Stale",
        ),
        (
            {
                "code": 1010,
                "message": "Invalid Transaction",
                "data": "Transaction has a bad signature",
            },
            E.TransactionRejected,
            "BadProof",
        ),
        (
            {
                "code": 1010,
                "message": "Invalid Transaction",
                "data": "Transaction has an ancient birth block",
            },
            E.TransactionRejected,
            "AncientBirthBlock",
        ),
        (
            {
                "code": 1010,
                "message": "Invalid Transaction",
                "data": "Transaction would exhaust the block limits",
            },
            E.TransactionRejected,
            "ExhaustsResources",
        ),
        (
            {
                "code": 1014,
                "message": "Priority is too low: (0 vs 0)",
                "data": "The transaction has too low priority to replace another transaction already in the pool.",
            },
            E.TransactionRejected,
            "Priority",
        ),
        (
            {"code": 1010, "message": "Invalid Transaction", "data": "Custom error: 200"},
            E.TransactionRejected,
            "Custom(200)",
        ),
    ],
)
def test_pool_refusals_map_to_typed_errors(rpc_error, category, name):
    err = E.from_rpc_error(rpc_error)
    assert isinstance(err, category) and err.chain_error == name
    assert ": " in str(err) and len(str(err)) > 40


# --------------------------------------------------------------------------- posting


@dataclass
class FakeReceipt:
    is_success: bool = True
    error_message: dict[str, Any] | None = None
    extrinsic_hash: str = "0x" + "11" * 32
    block_hash: str = "0x" + "22" * 32


@dataclass
class FakeSubstrate:
    """The SubstrateInterface methods the client uses, over a dict of storage values."""

    storage: dict[tuple[str, tuple[Any, ...]], Any]
    block: int = 1000
    has_schedule: bool = False
    receipt: FakeReceipt = field(default_factory=FakeReceipt)
    submit_error: Exception | None = None
    composed: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def rpc_request(self, method: str, params: list[Any]) -> dict[str, Any]:
        if method == "chain_getHead":
            return {"result": "0xhead"}
        if method == "chain_getHeader":
            return {"result": {"number": hex(self.block)}}
        raise AssertionError(method)

    def query(self, module: str, item: str, params: list[Any], block_hash: Any = None) -> Any:
        return self.storage.get((item, tuple(params)))

    def init_runtime(self, block_hash: Any = None) -> None:
        return None

    def get_metadata_storage_function(self, module: str, item: str) -> Any:
        return object() if self.has_schedule else None

    def compose_call(
        self, call_module: str, call_function: str, call_params: dict[str, Any]
    ) -> Any:
        self.composed.append((call_function, call_params))
        return (call_function, call_params)

    def create_signed_extrinsic(self, call: Any, keypair: Any, era: Any = None) -> Any:
        return ("signed", call)

    def submit_extrinsic(self, extrinsic: Any, wait_for_inclusion: bool = False) -> FakeReceipt:
        if self.submit_error is not None:
            raise self.submit_error
        return self.receipt


SIGNER = Keypair.create_from_seed("0x" + "07" * 32, ss58_format=42, crypto_type=KeypairType.SR25519)


def _subnet(**over: Any) -> FakeSubstrate:
    hyper = {
        "Tempo": 100,
        "WeightsSetRateLimit": 50,
        "CommitRevealWeightsEnabled": False,
        "RevealPeriodEpochs": 1,
        "WeightsVersionKey": 5,
        "MinAllowedWeights": 2,
        "MaxWeightsLimit": 65535,
        "MaxAllowedUids": 256,
    }
    hyper.update(over)
    storage: dict[tuple[str, tuple[Any, ...]], Any] = {(k, (3,)): v for k, v in hyper.items()}
    storage[("CommitRevealWeightsVersion", ())] = 4
    storage[("Uids", (3, SIGNER.ss58_address))] = 1
    storage[("LastUpdate", (3,))] = [0, 900, 0]
    return FakeSubstrate(storage)


def test_plain_set_weights_when_commit_reveal_is_off():
    sub = _subnet()
    posted = SubtensorClient(sub).post_weights(SIGNER, 3, {0: 1.0, 2: 0.5})
    assert posted.mode == "set_weights" and posted.version_key == 5
    assert sub.composed == [
        ("set_weights", {"netuid": 3, "dests": [0, 2], "weights": [65535, 32768], "version_key": 5})
    ]


def test_timelocked_commit_when_commit_reveal_is_on():
    sub = _subnet(CommitRevealWeightsEnabled=True)
    posted = SubtensorClient(sub).post_weights(SIGNER, 3, {0: 1.0, 2: 0.5})
    assert posted.mode == "commit_timelocked_weights" and posted.reveal_round
    ((function, params),) = sub.composed
    assert function == "commit_timelocked_weights"
    assert params["reveal_round"] == posted.reveal_round and params["commit_reveal_version"] == 4
    assert params["commit"].startswith("0x") and len(params["commit"]) > 400


@pytest.mark.parametrize(
    ("change", "weights", "version_key", "error"),
    [
        ({"Uids": None}, {0: 1.0, 2: 1.0}, None, E.NotRegistered),
        ({"LastUpdate": [0, 990, 0]}, {0: 1.0, 2: 1.0}, None, E.WeightsRateLimited),
        ({}, {0: 1.0}, None, E.TooFewWeights),
        ({}, {0: 1.0, 2: 1.0}, 4, E.StaleVersionKey),
        ({}, {0: 0.0, 2: 0.0}, None, E.WeightsRejected),
    ],
    ids=["not-registered", "too-fast", "too-few", "stale-version", "all-zero"],
)
def test_refused_before_signing_with_the_chains_error_classes(change, weights, version_key, error):
    sub = _subnet()
    for item, value in change.items():
        key = ("Uids", (3, SIGNER.ss58_address)) if item == "Uids" else (item, (3,))
        sub.storage[key] = value
    with pytest.raises(error) as info:
        SubtensorClient(sub).post_weights(SIGNER, 3, weights, version_key=version_key)
    assert sub.composed == []
    assert len(str(info.value)) > 40


def test_lone_self_weight_is_exempt_from_min_allowed_weights():
    sub = _subnet()
    assert SubtensorClient(sub).post_weights(SIGNER, 3, {1: 1.0}).uids == (1,)


def test_refusal_at_dispatch_and_in_the_pool_are_typed():
    sub = _subnet()
    sub.receipt = FakeReceipt(
        is_success=False,
        error_message={"type": "Module", "name": "NeuronNoValidatorPermit", "docs": []},
    )
    with pytest.raises(E.NoValidatorPermit, match="stake"):
        SubtensorClient(sub).post_weights(SIGNER, 3, {0: 1.0, 2: 1.0})
    sub = _subnet()
    sub.submit_error = SubstrateRequestException(
        {"code": 1010, "message": "Invalid Transaction", "data": "Custom error: 6"}
    )
    with pytest.raises(E.WeightsRateLimited):
        SubtensorClient(sub).post_weights(SIGNER, 3, {0: 1.0, 2: 1.0})


def test_target_posts_scores_keyed_by_hotkey():
    from chain.bittensor.metagraph import Axon, Metagraph, Neuron

    def neuron(uid: int, hotkey: str) -> Neuron:
        axon = Axon("0.0.0.0", 0, 4, 0, 0, 0)
        return Neuron(uid, hotkey, "c", True, axon, 0, 0, 0, 0, 0, 0, 0, 0, 0, False, 0)

    graph = Metagraph(
        3, 1000, (neuron(0, "hk-a"), neuron(1, SIGNER.ss58_address), neuron(2, "hk-c"))
    )
    sub = _subnet()
    target = SubtensorWeightsTarget(SubtensorClient(sub), SIGNER, 3)
    posted = target.post_weights({"hk-c": 2.0, "hk-a": 1.0, "hk-gone": 9.0}, metagraph=graph)
    assert (posted.uids, posted.values) == ((0, 2), (32768, 65535))
    with pytest.raises(E.WeightsRejected, match="positive score"):
        target.post_weights({"hk-gone": 1.0}, metagraph=graph)


def test_network_names_and_urls():
    assert network_url("finney").startswith("wss://")
    assert network_url("test").startswith("wss://test.")
    assert network_url("ws://10.0.0.1:9944") == "ws://10.0.0.1:9944"
    with pytest.raises(E.SubtensorConnectionError, match="finney, test, local"):
        network_url("mainnet")
