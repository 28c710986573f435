"""Attacks on registration and rewards (issue #13), each on a real subnet: hotkeys consent
to being registered, the subnet owner's share reaches only the owner, per-uid earnings of a
replaced epoch contract follow the hotkey that earned them, owner powers are bounded, and
the validator share falls back to stake when no permitted validator sets weights."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from chain.client import deploy_contract
from chain.epoch import EpochClient
from chain.errors import ConfigError, custom_error
from chain.metagraph import HyperParam, sign_hotkey_consent
from chain.node import mine, revert, snapshot
from latent.gas.yuma import Subnet, deploy_subnet

TOKEN = 10**18


@pytest.fixture
def subnet(w3: Web3, accounts: list[LocalAccount]) -> Iterator[Subnet]:
    snap = snapshot(w3)
    yield deploy_subnet(w3, accounts[0], accounts[1])
    revert(w3, snap)


def _wire_epoch(subnet: Subnet) -> None:
    subnet.metagraph.contract.transact(
        "setEpochContract", subnet.epoch.address, sender=subnet.owner
    )


def _paying_subnet(subnet: Subnet, keeper: LocalAccount) -> None:
    """Two validators and three miners with weights, one epoch run: everyone has earned."""
    subnet.set_params({HyperParam.MAX_VALIDATORS: 2})
    subnet.register(5)
    subnet.stake(0, 100 * TOKEN)
    subnet.stake(1, 50 * TOKEN)
    subnet.metagraph.update_permits(keeper)
    subnet.set_weights({0: {2: 1, 3: 2, 4: 3}, 1: {2: 1, 3: 2, 4: 3}})
    _wire_epoch(subnet)
    subnet.mine_to_next_epoch()
    subnet.epoch.run_epoch_until_done(keeper)


def test_nobody_registers_a_hotkey_without_its_consent(
    subnet: Subnet, accounts: list[LocalAccount]
) -> None:
    """The front-run: an attacker copies a miner's hotkey into its own registration. Today's
    contract made the attacker the hotkey's owner forever; now the registration needs the
    hotkey's signature naming the coldkey."""
    miner, attacker = Account.create(), accounts[4]
    subnet.token.transact("transfer", attacker.address, 10 * TOKEN, sender=subnet.coldkey)
    subnet.token.transact("approve", subnet.metagraph.address, 2**256 - 1, sender=attacker)
    mg = subnet.metagraph
    with pytest.raises(custom_error("MetagraphHotkeyConsentRequired")):
        mg.contract.transact("register", miner.address, "", TOKEN, sender=attacker)
    with pytest.raises(ConfigError, match="consent"):
        mg.register(attacker, miner.address)
    # A consent the miner gave to its own coldkey cannot be replayed by the attacker ...
    for_real_owner = mg.sign_consent(miner, subnet.coldkey.address)
    with pytest.raises(custom_error("MetagraphConsentInvalid")):
        mg.contract.transact(
            "registerWithConsent", miner.address, "", TOKEN, for_real_owner.deadline,
            for_real_owner.signature, sender=attacker,
        )  # fmt: skip
    # ... nor used after its deadline, nor twice (the nonce is spent).
    stale = mg.sign_consent(miner, subnet.coldkey.address, deadline=1)
    with pytest.raises(custom_error("MetagraphConsentExpired")):
        mg.register(subnet.coldkey, miner.address, consent=stale)
    uid, _, _ = mg.register(subnet.coldkey, miner.address, consent=for_real_owner)
    assert mg.hotkey_owner(miner.address) == subnet.coldkey.address
    assert mg.snapshot().coldkeys[uid] == subnet.coldkey.address
    assert mg.consent_nonce(miner.address) == 1


def test_the_owner_share_reaches_only_the_owner(
    subnet: Subnet, accounts: list[LocalAccount]
) -> None:
    """The old attack: register the Metagraph owner's address as a hotkey with yourself as its
    coldkey, then claim the owner's 18% as that hotkey's coldkey. Registration now needs the
    owner's consent, and even a consented registration never redirects the owner's share."""
    keeper, attacker = accounts[2], accounts[4]
    _paying_subnet(subnet, keeper)
    owner = subnet.owner
    owed = subnet.epoch.claimable(owner.address)
    assert owed > 0
    subnet.token.transact("transfer", attacker.address, 10 * TOKEN, sender=subnet.coldkey)
    subnet.token.transact("approve", subnet.metagraph.address, 2**256 - 1, sender=attacker)
    with pytest.raises(custom_error("MetagraphHotkeyConsentRequired")):
        subnet.metagraph.contract.transact("register", owner.address, "", TOKEN, sender=attacker)
    # Suppose the owner did consent (e.g. tricked, or running a miner under its own address
    # for another coldkey): the coldkey still cannot take the owner's share.
    consent = sign_hotkey_consent(
        owner, coldkey=attacker.address, nonce=0, deadline=2**40,
        metagraph=subnet.metagraph.address, chain_id=subnet.w3.eth.chain_id,
    )  # fmt: skip
    subnet.metagraph.register(attacker, owner.address, consent=consent)
    with pytest.raises(custom_error("YumaConsensusNotAuthorized")):
        subnet.epoch.contract.transact("claim", owner.address, False, sender=attacker)
    before = int(subnet.token.call("balanceOf", owner.address))
    subnet.epoch.contract.transact("claim", owner.address, False, sender=owner)
    assert int(subnet.token.call("balanceOf", owner.address)) - before >= owed


def test_earnings_of_a_replaced_epoch_contract_follow_the_hotkey(
    subnet: Subnet, accounts: list[LocalAccount]
) -> None:
    """After the epoch contract is replaced, the old contract still holds per-uid earnings.
    A hotkey that takes such a uid later must not claim them; the hotkey that earned them
    keeps them."""
    keeper = accounts[2]
    subnet.set_params({HyperParam.MAX_UIDS: 5, HyperParam.IMMUNITY_PERIOD: 0})
    _paying_subnet(subnet, keeper)
    old = subnet.epoch
    new_contract, _ = deploy_contract(
        subnet.w3, "YumaConsensus", subnet.metagraph.address, subnet.token.address, 10**18,
        sender=subnet.owner,
    )  # fmt: skip
    receipt = subnet.metagraph.contract.transact(
        "setEpochContract", new_contract.address, sender=subnet.owner
    )
    (proposed,) = subnet.metagraph.contract.events(receipt, "EpochContractProposed")
    with pytest.raises(custom_error("MetagraphEpochSwitchNotReady")):
        subnet.metagraph.contract.transact(
            "setEpochContract", new_contract.address, sender=subnet.owner
        )
    mine(subnet.w3, proposed["readyBlock"] - subnet.w3.eth.block_number)
    subnet.metagraph.contract.transact(
        "setEpochContract", new_contract.address, sender=subnet.owner
    )
    assert subnet.metagraph.contract.call("epochContract") == new_contract.address
    subnet.epoch = EpochClient(subnet.w3, new_contract.address)
    uid = subnet.metagraph.contract.call("nextRegistrationUid")  # the uid the next one prunes
    earner = subnet.hotkeys[uid]
    earned = old.claimable(earner.address)
    assert earned > 0
    subnet.register(1)
    newcomer = subnet.hotkeys[uid]
    assert newcomer.address != earner.address
    assert old.claimable(newcomer.address) == 0
    assert old.claimable(earner.address) == earned
    assert old.claim(earner, earner.address) == earned


def test_owner_powers_are_bounded(subnet: Subnet) -> None:
    mg, owner = subnet.metagraph, subnet.owner
    for param in (HyperParam.UNBONDING_PERIOD, HyperParam.IMMUNITY_PERIOD):
        receipt = mg.set_hyperparameter(owner, param, 50_400)
        assert mg.contract.events(receipt, "HyperparameterSet")[0]["newValue"] == 50_400
        with pytest.raises(custom_error("MetagraphHyperparameterOutOfBounds")):
            mg.set_hyperparameter(owner, param, 50_401)
    # The first epoch contract takes effect at once; a replacement waits EPOCH_SWITCH_DELAY.
    _wire_epoch(subnet)
    other = Account.create().address
    receipt = mg.contract.transact("setEpochContract", other, sender=owner)
    (event,) = mg.contract.events(receipt, "EpochContractProposed")
    delay = int(mg.contract.call("EPOCH_SWITCH_DELAY"))
    assert event["readyBlock"] == subnet.w3.eth.block_number + delay
    assert mg.contract.call("epochContract") == subnet.epoch.address
