"""Gas of metagraph operations, from real receipts: registration (free slot and replacement in
a full 256-uid subnet), stake / unstake / claim, permit recomputation, commit, and the reveal
of 256 weights (first reveal into an empty row, and the steady-state reveal that overwrites a
row, which is what a validator pays every tempo)."""

from __future__ import annotations

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3 import Web3

from chain.client import deploy_contract
from chain.metagraph import HyperParam, MetagraphClient
from chain.node import mine
from chain.token import ONE, SubnetTokenClient
from chain.weights import prepare_weights

UIDS = 256


def _gas(receipt: object) -> int:
    return int(receipt["gasUsed"])  # type: ignore[index]


def _bench_hotkey(name: str) -> LocalAccount:
    """A deterministic hotkey (it must sign its registration consent)."""
    return Account.from_key(keccak(name.encode()))


def _register_consenting(
    mg: MetagraphClient, coldkey: LocalAccount, hotkey: LocalAccount
) -> object:
    consent = mg.sign_consent(hotkey, coldkey.address, deadline=2**40)
    return mg.contract.transact(
        "registerWithConsent", hotkey.address, "", ONE, consent.deadline, consent.signature,
        sender=coldkey,
    )  # fmt: skip


def _to_next_window(w3: Web3, tempo: int) -> None:
    block = int(w3.eth.block_number)
    mine(w3, (block // tempo + 1) * tempo - block)


def measure(w3: Web3, accounts: list[LocalAccount]) -> dict[str, int]:
    owner, coldkey, validator, staker = accounts[0], accounts[1], accounts[2], accounts[3]
    token_contract, _ = deploy_contract(
        w3, "SubnetToken", owner.address, owner.address, sender=owner
    )
    token = SubnetTokenClient(w3, token_contract.address)
    contract, deploy_receipt = deploy_contract(
        w3, "Metagraph", token.address, owner.address, sender=owner
    )
    mg = MetagraphClient(w3, contract.address)
    gas = {"deploy": _gas(deploy_receipt)}
    tempo = 20
    for param, value in (
        (HyperParam.TEMPO, tempo),
        (HyperParam.WEIGHTS_RATE_LIMIT, 0),
        (HyperParam.IMMUNITY_PERIOD, 10),
        (HyperParam.UNBONDING_PERIOD, 5),
        (HyperParam.MAX_BURN, ONE),  # flat price: the bench registers 256 + 1 neurons
    ):
        mg.set_hyperparameter(owner, param, value)
    for account in (coldkey, staker):
        token.mint(account.address, 10_000 * ONE, sender=owner)
        token.approve(mg.address, 2**256 - 1, sender=account)

    # A coldkey registering another key: the hotkey's consent signature is checked too.
    # (a fixed deadline: the figure must not depend on the block time through calldata bytes)
    consent = mg.sign_consent(validator, coldkey.address, deadline=2**40)
    _, _, receipt = mg.register(coldkey, validator, "http://validator:8000", consent=consent)
    gas["register"] = _gas(receipt)
    for i in range(1, UIDS):
        _register_consenting(mg, coldkey, _bench_hotkey(f"bench-miner-{i}"))
    gas["stake"] = _gas(
        mg.contract.transact("addStake", validator.address, 100 * ONE, sender=staker)
    )
    gas["stake_again"] = _gas(
        mg.contract.transact("addStake", validator.address, ONE, sender=staker)
    )
    gas["unstake"] = _gas(
        mg.contract.transact("removeStake", validator.address, ONE, sender=staker)
    )
    mine(w3, 5)
    gas["claim"] = _gas(mg.contract.transact("claimUnbonded", sender=staker))
    gas["update_permits_256"] = _gas(mg.update_permits(staker))

    for label in ("reveal_256_first", "reveal_256"):
        weights = prepare_weights(
            {uid: 1 + (uid * 7919 + len(label)) % 1000 for uid in range(UIDS)}
        )
        salt = keccak(label.encode())
        receipt = mg.commit_weights(validator, weights, salt, 0)
        gas.setdefault("commit", _gas(receipt))
        _to_next_window(w3, tempo)
        gas[label] = _gas(mg.reveal_weights(validator, weights, salt, 0))
    mine(w3, 11)  # everyone leaves immunity; uid 0 (the validator) is the one replaced
    extra = _bench_hotkey("bench-late-miner")
    gas["register_replace_256"] = _gas(_register_consenting(mg, coldkey, extra))

    return gas
