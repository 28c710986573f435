"""Gas of the Yuma epoch: the math alone (``YumaEpoch`` over memory arrays, through
``YumaHarness``) and the on-chain, chunked epoch (``YumaConsensus``) on a real subnet.

The math scenario is a realistic epoch: every validator scores every miner uid (true
quality plus noise, max-upscaled u16 like the chain stores weights), validator uids get no
weight, and bonds come from a first epoch so the measured one carries bonds over.

The on-chain scenario builds a subnet of the same shape with real transactions (register,
stake, commit/reveal), runs two epochs and reports the second (bonds carried over, storage
already warm from the first): its total gas and its largest ``runEpoch`` transaction. The
builders (:func:`deploy_subnet`, :meth:`Subnet.register`, :meth:`Subnet.set_weights`) are
shared with ``tests/yuma/test_onchain_epoch.py``.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3 import Web3

from chain.client import Contract, deploy_contract
from chain.epoch import EpochClient
from chain.metagraph import HyperParam, MetagraphClient
from chain.node import mine, revert, snapshot
from chain.weights import new_salt, prepare_weights
from chain.yuma import fixed
from chain.yuma.abi import inputs_to_abi
from chain.yuma.types import U16_MAX, EpochInputs, YumaParams

SIZES = ((8, 32), (64, 256))


def benchmark_inputs(
    rows: int, n: int, *, liquid_alpha: bool = False, seed: int = 1
) -> EpochInputs:
    """A realistic epoch of ``rows`` validators over ``n`` uids, bonds from a prior epoch."""
    rng = random.Random(seed)
    validators = list(range(rows))
    quality = [0.0 if j < rows else rng.uniform(0.2, 1.0) for j in range(n)]
    weights = []
    for _ in range(rows):
        scores = [q * (1.0 + rng.gauss(0.0, 0.05)) if q else 0.0 for q in quality]
        top = max(scores) or 1.0
        weights.append([round(max(s, 0.0) / top * U16_MAX) for s in scores])
    first = EpochInputs(
        n=n,
        validator_uids=validators,
        stakes=[rng.randint(1_000, 100_000) * 10**18 for _ in range(rows)],
        permits=[True] * rows,
        last_update=[990] * rows,
        registration_blocks=[0] * n,
        weights=weights,
        bonds=[[0] * n for _ in range(rows)],
        current_block=1_000,
        last_epoch_block=980,
        minted=20 * 10**18,
        fees=10**17,
        params=YumaParams(liquid_alpha=liquid_alpha),
    )
    bonds = fixed.epoch(first).bonds
    return EpochInputs(
        **{**first.__dict__, "bonds": bonds, "current_block": 1_020, "last_epoch_block": 1_000}
    )


#: The memory-array epoch at 64 x 256 needs about 31M gas, more than anvil's default 30M
#: block: the scenario raises the block gas limit to this while it runs, then restores it.
MEASURE_BLOCK_GAS = 100_000_000


def _set_block_gas_limit(w3: Web3, limit: int) -> None:
    w3.provider.make_request("anvil_setBlockGasLimit", [hex(limit)])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def measure(w3: Web3, accounts: list[LocalAccount]) -> dict[str, int]:
    """The memory-array math per size, then the on-chain epoch per size."""
    gas = measure_math(w3, accounts)
    for rows, n in SIZES:
        gas.update(measure_onchain(w3, accounts, rows, n))
    return gas


def measure_math(w3: Web3, accounts: list[LocalAccount]) -> dict[str, int]:
    """Receipt gas of one ``measureEpoch`` transaction per size (calldata included)."""
    harness, receipt = deploy_contract(w3, "YumaHarness", sender=accounts[0])
    gas = {"harness_deploy": int(receipt["gasUsed"])}
    cases = [(r, n, False) for r, n in SIZES] + [(8, 32, True)]
    previous = int(w3.eth.get_block("latest")["gasLimit"])
    _set_block_gas_limit(w3, max(previous, MEASURE_BLOCK_GAS))
    try:
        for rows, n, liquid in cases:
            name = f"epoch_math_{rows}x{n}" + ("_liquid_alpha" if liquid else "")
            tx = harness.transact(
                "measureEpoch", inputs_to_abi(benchmark_inputs(rows, n, liquid_alpha=liquid)),
                sender=accounts[0], gas=MEASURE_BLOCK_GAS - 1,
            )  # fmt: skip
            gas[name] = int(tx["gasUsed"])
    finally:
        _set_block_gas_limit(w3, previous)
    return gas


# ---------------------------------------------------------------- on-chain epoch scaffolding

#: Subnet parameters of the on-chain scenarios: cheap registration, no rate limits.
SUBNET_PARAMS: dict[HyperParam, int] = {
    HyperParam.TEMPO: 10,
    HyperParam.IMMUNITY_PERIOD: 0,
    HyperParam.WEIGHTS_RATE_LIMIT: 0,
    HyperParam.REVEAL_PERIOD: 1,
    HyperParam.MIN_ALLOWED_WEIGHTS: 0,
    HyperParam.BURN_INCREASE_MULT: 10_000,
    HyperParam.MIN_BURN: 1,
    HyperParam.MAX_BURN: 10**15,
}
COLDKEY_FUNDING = 10**24
EMISSION_PER_BLOCK = 10**18


def hotkey_account(index: int) -> LocalAccount:
    """A deterministic hotkey (the ``index``-th of the scenario)."""
    return Account.from_key(keccak(text=f"latent-yuma-hotkey-{index}"))


@dataclass
class Subnet:
    """A deployed token + metagraph + epoch, with one coldkey owning every hotkey."""

    w3: Web3
    owner: LocalAccount
    coldkey: LocalAccount
    token: Contract
    metagraph: MetagraphClient
    epoch: EpochClient
    hotkeys: list[LocalAccount] = field(default_factory=list)

    def set_params(self, params: Mapping[HyperParam, int]) -> None:
        """Set hyperparameters (only those that differ)."""
        current = self.metagraph.hyperparameters()
        for param, value in params.items():
            if int(getattr(current, param.name.lower())) != value:
                self.metagraph.set_hyperparameter(self.owner, param, value)

    def register(self, count: int) -> list[int]:
        """Register ``count`` new hotkeys (funded with ether so they can set weights)."""
        uids = []
        for _ in range(count):
            hk = hotkey_account(len(self.hotkeys))
            self.w3.provider.make_request("anvil_setBalance", [hk.address, hex(10**20)])  # type: ignore[arg-type]
            uid, _, _ = self.metagraph.register(self.coldkey, hk, max_price=10**15)
            while len(self.hotkeys) <= uid:
                self.hotkeys.append(hk)
            self.hotkeys[uid] = hk
            uids.append(uid)
        return uids

    def stake(self, uid: int, amount: int) -> None:
        if amount:
            self.metagraph.add_stake(self.coldkey, self.hotkeys[uid].address, amount)

    def set_weights(self, rows: Mapping[int, Mapping[int, int]]) -> None:
        """Commit and reveal ``rows`` (validator uid -> {uid: weight}) in one reveal window."""
        tempo = self.metagraph.hyperparameters().tempo
        if len(rows) >= tempo:
            raise ValueError(f"{len(rows)} reveals do not fit a window of {tempo} blocks")
        block = self.w3.eth.block_number
        if tempo - (block + 1) % tempo < len(rows):
            mine(self.w3, tempo - (block + 1) % tempo)
        pending = []
        for uid, weights in rows.items():
            ws = prepare_weights(dict(weights))
            salt = new_salt()
            self.metagraph.commit_weights(self.hotkeys[uid], ws, salt, 0)
            pending.append((uid, ws, salt))
        # The next transaction must land in the window after the commits' one.
        block = self.w3.eth.block_number
        if (block + 1) % tempo:
            mine(self.w3, tempo - (block + 1) % tempo)
        for uid, ws, salt in pending:
            self.metagraph.reveal_weights(self.hotkeys[uid], ws, salt, 0)

    def mine_to_next_epoch(self) -> None:
        """Mine until the next ``runEpoch`` transaction may start an epoch."""
        target = self.epoch.next_epoch_block()
        block = self.w3.eth.block_number
        if block + 1 < target:
            mine(self.w3, target - block - 1)


def deploy_subnet(
    w3: Web3,
    owner: LocalAccount,
    coldkey: LocalAccount,
    *,
    emission_per_block: int = EMISSION_PER_BLOCK,
    params: Mapping[HyperParam, int] = SUBNET_PARAMS,
) -> Subnet:
    """Fresh token (coldkey funded, then the epoch as minter), metagraph and epoch contract.
    The metagraph's epoch contract is left unset so ``updatePermits`` works for the setup."""
    token, _ = deploy_contract(w3, "SubnetToken", owner.address, owner.address, sender=owner)
    mg, _ = deploy_contract(w3, "Metagraph", token.address, owner.address, sender=owner)
    epoch, _ = deploy_contract(
        w3, "YumaConsensus", mg.address, token.address, emission_per_block, sender=owner
    )
    subnet = Subnet(
        w3, owner, coldkey, token, MetagraphClient(w3, mg.address), EpochClient(w3, epoch.address)
    )
    subnet.set_params(params)
    token.transact("mint", coldkey.address, COLDKEY_FUNDING, sender=owner)
    token.transact("approve", mg.address, 2**256 - 1, sender=coldkey)
    token.transact("setMinter", epoch.address, sender=owner)
    return subnet


def measure_onchain(w3: Web3, accounts: list[LocalAccount], rows: int, n: int) -> dict[str, int]:
    """Receipt gas of the on-chain epoch at ``rows`` x ``n`` (the :func:`benchmark_inputs`
    weights and stakes on a real subnet): the second epoch's total and largest transaction
    (bonds carried over, storage warm), and the first epoch's largest transaction (every bond
    word written for the first time). Everything is reverted afterwards."""
    inp = benchmark_inputs(rows, n)
    snap = snapshot(w3)
    try:
        subnet = deploy_subnet(
            w3, accounts[0], accounts[1], params={**SUBNET_PARAMS, HyperParam.TEMPO: 100}
        )
        subnet.set_params({HyperParam.MAX_VALIDATORS: rows})
        subnet.register(n)
        for uid, stake in zip(inp.validator_uids, inp.stakes, strict=True):
            subnet.stake(uid, stake // 1_000)  # the coldkey's funding covers 64 x 100 tokens
        subnet.metagraph.update_permits(accounts[0])
        subnet.set_weights(
            {
                uid: {j: w for j, w in enumerate(row) if w}
                for uid, row in zip(inp.validator_uids, inp.weights, strict=True)
            }
        )
        subnet.metagraph.contract.transact(
            "setEpochContract", subnet.epoch.address, sender=subnet.owner
        )
        subnet.mine_to_next_epoch()
        first = [int(r["gasUsed"]) for r in subnet.epoch.run_epoch_until_done(accounts[2])]
        subnet.mine_to_next_epoch()
        second = [int(r["gasUsed"]) for r in subnet.epoch.run_epoch_until_done(accounts[2])]
    finally:
        revert(w3, snap)
    name = f"epoch_onchain_{rows}x{n}"
    return {
        f"{name}_total": sum(second),
        f"{name}_largest_chunk": max(second),
        f"{name}_transactions": len(second),
        f"{name}_first_epoch_total": sum(first),
        f"{name}_first_epoch_largest_chunk": max(first),
        f"{name}_first_epoch_transactions": len(first),
    }
