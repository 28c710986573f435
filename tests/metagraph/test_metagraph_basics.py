"""Example-based checks of the metagraph contract: registration, endpoints, hyperparameters,
permits, weights (rate limit, version key, malformed input) and the snapshot reader."""

from __future__ import annotations

import pytest
from metagraph_env import MetagraphEnv
from web3 import Web3

from chain.errors import custom_error
from chain.metagraph import HyperParam, MetagraphReader
from chain.metagraph_rules import decay_factor
from chain.node import mine
from chain.weights import WeightSet, new_salt, unpack_row


def test_register_snapshot_and_endpoint(metagraph_env: MetagraphEnv, fresh_chain: Web3) -> None:
    env = metagraph_env
    coldkey, hotkey = env.accounts[1], env.accounts[2]
    supply = env.token.total_supply()
    price = env.client.registration_price()
    uid, burned, _ = env.client.register(coldkey, hotkey, "http://miner:8000")
    assert (uid, burned) == (0, price)
    assert env.token.total_supply() == supply - burned  # the burn is destroyed
    env.client.set_endpoint(hotkey, "http://miner:9000")
    snap = MetagraphReader(env.w3, env.client.address).snapshot()
    info = snap.by_hotkey(hotkey.address)
    assert info is not None and info.uid == 0
    assert info.coldkey == coldkey.address
    assert info.endpoint == "http://miner:9000"
    assert snap.registered_at[0] == snap.last_update[0] > 0
    with pytest.raises(custom_error("MetagraphHotkeyAlreadyRegistered")):
        env.client.register(coldkey, hotkey)
    with pytest.raises(custom_error("MetagraphHotkeyNotRegistered")):
        env.client.set_endpoint(env.accounts[3], "http://x")


def test_hotkey_bound_to_first_coldkey(metagraph_env: MetagraphEnv, fresh_chain: Web3) -> None:
    env = metagraph_env
    hk = env.accounts[5]
    env.client.set_hyperparameter(env.owner, HyperParam.MAX_UIDS, 1)
    env.client.set_hyperparameter(env.owner, HyperParam.IMMUNITY_PERIOD, 0)
    env.client.register(env.accounts[1], hk)
    env.client.register(env.accounts[1], env.accounts[6])  # prunes hk (only uid)
    with pytest.raises(custom_error("MetagraphHotkeyOwnedByOther")):
        env.client.register(env.accounts[2], hk)


def test_price_limit_and_decay_factor(metagraph_env: MetagraphEnv, fresh_chain: Web3) -> None:
    env = metagraph_env
    _price, _, factor = env.client.contract.call("burnState")
    assert factor == decay_factor(8)
    current = env.client.registration_price()
    with pytest.raises(custom_error("MetagraphPriceAboveLimit")):
        env.client.register(env.accounts[1], env.accounts[7], max_price=current - 1)


def test_hyperparameter_bounds_owner_and_event(
    metagraph_env: MetagraphEnv, fresh_chain: Web3
) -> None:
    env = metagraph_env
    receipt = env.client.set_hyperparameter(env.owner, HyperParam.KAPPA, 40_000)
    (event,) = env.client.contract.events(receipt, "HyperparameterSet")
    assert (event["param"], event["oldValue"], event["newValue"]) == (1, 32_767, 40_000)
    assert env.client.hyperparameters().kappa == 40_000
    with pytest.raises(custom_error("MetagraphHyperparameterOutOfBounds")):
        env.client.set_hyperparameter(env.owner, HyperParam.KAPPA, 65_536)
    with pytest.raises(custom_error("MetagraphHyperparameterOutOfBounds")):
        env.client.set_hyperparameter(env.owner, HyperParam.TEMPO, 0)
    with pytest.raises(custom_error("MetagraphHyperparameterOutOfBounds")):
        env.client.set_hyperparameter(env.owner, HyperParam.ALPHA_LOW, 60_000)  # > alpha_high
    with pytest.raises(custom_error("OwnableUnauthorizedAccount")):
        env.client.set_hyperparameter(env.accounts[1], HyperParam.KAPPA, 1)


def _setup_validator(env: MetagraphEnv) -> None:
    """accounts[2] registered and staked (uid 0), accounts[3] registered (uid 1), permits set."""
    env.client.register(env.accounts[1], env.accounts[2])
    env.client.register(env.accounts[1], env.accounts[3])
    env.client.add_stake(env.accounts[1], env.accounts[2].address, 10**18)
    env.client.update_permits(env.accounts[1])


def _commit_then_reveal_window(env: MetagraphEnv, weights: WeightSet, key: int = 0) -> bytes:
    salt = new_salt()
    env.client.commit_weights(env.accounts[2], weights, salt, key)
    tempo = env.client.hyperparameters().tempo
    block = env.w3.eth.block_number
    mine(env.w3, (block // tempo + 1) * tempo - block)  # latest block opens the next window
    return salt


def test_reveal_stores_upscaled_row_and_rate_limit(
    metagraph_env: MetagraphEnv, fresh_chain: Web3
) -> None:
    env = metagraph_env
    _setup_validator(env)
    assert MetagraphReader(env.w3, env.client.address).has_validator_permit(env.accounts[2].address)
    assert not MetagraphReader(env.w3, env.client.address).has_validator_permit(
        env.accounts[3].address
    )
    weights = WeightSet((1, 0), (100, 50))
    salt = _commit_then_reveal_window(env, weights)
    env.client.reveal_weights(env.accounts[2], weights, salt, 0)
    row = unpack_row(env.client.contract.call("weightRow", 0))
    assert row[:3] == [32_767, 65_535, 0]
    # What the epoch reads: stake | last update | row sum without the own lane | word mask.
    (key,) = env.client.contract.call("epochRowKeys", [0])
    assert key & (2**96 - 1) == 10**18
    assert (key >> 96) & (2**64 - 1) == env.w3.eth.block_number
    assert (key >> 160) & (2**32 - 1) == 65_535  # uid 0 is the validator itself
    assert key >> 192 == 1
    assert env.client.contract.call("epochWords", [0, 1], 0) == [row[0] | row[1] << 16, 0]
    env.client.set_hyperparameter(env.owner, HyperParam.WEIGHTS_RATE_LIMIT, 50)
    salt = _commit_then_reveal_window(env, weights)
    with pytest.raises(custom_error("MetagraphWeightsRateLimited")):
        env.client.reveal_weights(env.accounts[2], weights, salt, 0)


def test_reveal_content_checks(metagraph_env: MetagraphEnv, fresh_chain: Web3) -> None:
    env = metagraph_env
    _setup_validator(env)
    env.client.set_hyperparameter(env.owner, HyperParam.WEIGHTS_VERSION_KEY, 7)
    cases = [
        (WeightSet((0, 1), (1, 1)), 6, "MetagraphVersionKeyTooLow"),
        (WeightSet((0, 2), (1, 1)), 7, "MetagraphUidOutOfRange"),
    ]
    for weights, key, error in cases:
        salt = _commit_then_reveal_window(env, weights, key)
        with pytest.raises(custom_error(error)):
            env.client.reveal_weights(env.accounts[2], weights, salt, key)
    env.client.set_hyperparameter(env.owner, HyperParam.MIN_ALLOWED_WEIGHTS, 2)
    weights = WeightSet((1,), (1,))
    salt = _commit_then_reveal_window(env, weights, 7)
    with pytest.raises(custom_error("MetagraphTooFewWeights")):
        env.client.reveal_weights(env.accounts[2], weights, salt, 7)
    # duplicates cannot be built by WeightSet; send raw bytes
    salt = new_salt()
    dup_uids, dup_values = bytes.fromhex("00010001"), bytes.fromhex("00010001")
    from eth_abi import encode
    from eth_utils import keccak

    digest = keccak(
        encode(
            ["address", "bytes", "bytes", "bytes32", "uint64"],
            [env.accounts[2].address, dup_uids, dup_values, salt, 7],
        )
    )
    env.client.contract.transact("commitWeights", digest, sender=env.accounts[2])
    tempo = env.client.hyperparameters().tempo
    block = env.w3.eth.block_number
    mine(env.w3, (block // tempo + 1) * tempo - block)
    with pytest.raises(custom_error("MetagraphDuplicateUid")):
        env.client.contract.transact(
            "revealWeights", dup_uids, dup_values, salt, 7, sender=env.accounts[2]
        )


def test_permit_update_rate_limited_and_epoch_takeover(
    metagraph_env: MetagraphEnv, fresh_chain: Web3
) -> None:
    env = metagraph_env
    _setup_validator(env)
    with pytest.raises(custom_error("MetagraphPermitUpdateTooSoon")):
        env.client.update_permits(env.accounts[1])
    epoch = env.accounts[9]
    env.client.contract.transact("setEpochContract", epoch.address, sender=env.owner)
    mine(env.w3, 20)
    with pytest.raises(custom_error("MetagraphPermitsManagedByEpoch")):
        env.client.update_permits(env.accounts[1])
    with pytest.raises(custom_error("MetagraphNotEpoch")):
        env.client.contract.transact("recomputePermits", sender=env.accounts[1])
    env.client.contract.transact("recomputePermits", sender=epoch)
    assert env.client.contract.call("validatorPermits") == 1
