"""The on-chain Yuma epoch (``contracts/YumaConsensus.sol``) from Python: client and predictor.

:class:`EpochClient` drives an epoch (``run_epoch_until_done``: one ``runEpoch`` transaction per
gas-bounded step group until the epoch is done), claims rewards and reads claimable balances.
The column phase takes the consensus vector (every column's stake-weighted median, which the
contract checks instead of selecting): :meth:`EpochClient.consensus_vector` computes it from the
contract's ``consensusInputs()`` (the rows as the epoch recorded them) and the Metagraph's
weights, frozen while the epoch runs. It also takes the old bond words back: the contract keeps
only a hash per packed word of 16 uids (``bondHashes``) and logs the words (``BondWords``);
:meth:`EpochClient.old_bond_words` reads the last epoch's logs and checks them against the hashes.
From its second column-phase call to the end, an epoch also takes back the validator rows'
running sums the previous call logged (``RowSums``, :meth:`EpochClient.row_sums`).

:func:`predict_epoch` computes, from the chain state an epoch will read
(:class:`EpochChainState`, see :func:`read_epoch_state`), exactly what the contract will
record: it builds the :class:`~chain.yuma.types.EpochInputs` the contract sees and runs
:func:`chain.yuma.fixed.epoch`. How the contract maps chain state onto those inputs:

* Rows are the uids holding a validator permit *after* the epoch recomputes permits at its
  start (top ``max_validators`` uids by positive stake, ties to the lower uid), ascending.
* ``current_block`` is the block of the epoch's first ``runEpoch`` transaction;
  ``last_epoch_block`` the one of the previous epoch (0 before the first).
* A row's old bonds count only when its uid was a row of the previous epoch (``bondRows``)
  and was registered no later than that epoch; other rows start from zero.
* ``minted = min((emission_per_block >> halvings) * tempo, cap - supply)``, with one halving
  for every ``k >= 1`` such that ``cap - supply <= cap >> k``; ``fees`` is the contract's token
  balance beyond what it owes (``reserved``).
* Rewards: each uid's miner emission plus (for a row) its validator emission is credited to the
  uid (claimable by the hotkey holding it; a replaced uid's earnings move to the old hotkey),
  the owner share to the Metagraph's owner; scores are recorded on the Metagraph as u16
  (round half up).

While an epoch is in progress the Metagraph refuses registrations and weight reveals
(``MetagraphEpochInProgress``), so every step reads the state of the epoch's first block.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from web3 import Web3
from web3.types import TxReceipt

from chain.client import Contract
from chain.errors import TransactionFailed
from chain.metagraph import Metagraph, MetagraphReader
from chain.weights import unpack_row
from chain.yuma import fixed
from chain.yuma.types import EpochInputs, EpochOutputs, YumaParams

ARTIFACT = "YumaConsensus"
#: Gas limit of every ``runEpoch`` transaction: the contract keeps each call below it.
MAX_STEP_GAS = 5_000_000
#: Safety stop for :meth:`EpochClient.run_epoch_until_done`.
MAX_STEPS = 200


class Phase(IntEnum):
    """``IYumaConsensus.Phase``."""

    IDLE = 0
    ROWS = 1
    COLUMNS = 2
    CREDIT = 3


@dataclass(frozen=True)
class EpochChainState:
    """Everything the next epoch reads, taken before its first ``runEpoch``."""

    metagraph: Metagraph
    #: Stored weight row of every uid (index = uid, ``n`` lanes).
    weights: tuple[tuple[int, ...], ...]
    #: Bond row of every uid as the last epoch logged it (index = uid, ``n`` lanes; zero for
    #: uids that were not its rows).
    bonds: tuple[tuple[int, ...], ...]
    bond_rows: int
    last_epoch_block: int
    total_supply: int
    cap: int
    emission_per_block: int
    #: Token balance of the epoch contract beyond ``reserved`` (becomes fees).
    fees: int
    subnet_owner: str


@dataclass(frozen=True)
class EpochPrediction:
    """What one on-chain epoch will record."""

    inputs: EpochInputs
    outputs: EpochOutputs[int]
    permits: int
    minted: int
    fees: int
    #: Emission per uid (what ``recordEmission`` stores).
    emission: list[int]
    #: Amount credited per account this epoch (hotkeys and the subnet owner).
    credits: dict[str, int]
    #: u16 scores per uid as recorded on the Metagraph.
    incentive_u16: list[int]
    dividends_u16: list[int]
    consensus_u16: list[int]
    validator_trust_u16: list[int]

    @property
    def distributed(self) -> int:
        """``minted + fees``: every base unit of it is credited."""
        return self.minted + self.fees


def top_stake_permits(stakes: Sequence[int], k: int) -> int:
    """Bitmap of the ``k`` uids with the largest positive stake, ties to the lower uid."""
    ranked = sorted((uid for uid, s in enumerate(stakes) if s > 0), key=lambda u: (-stakes[u], u))
    bitmap = 0
    for uid in ranked[:k]:
        bitmap |= 1 << uid
    return bitmap


def epoch_emission(total_supply: int, cap: int, emission_per_block: int, tempo: int) -> int:
    """Tokens one epoch mints: halved rate x tempo, capped by the remaining supply."""
    if total_supply >= cap:
        return 0
    remaining = cap - total_supply
    rate = emission_per_block
    k = 1
    while rate != 0 and remaining <= cap >> k:
        rate >>= 1
        k += 1
    return min(rate * tempo, remaining)


def to_u16(x: int) -> int:
    """ONE-scaled share -> u16 (round half up), as the contract records incentive and
    dividends."""
    return fixed.fraction_to_u16(x)


def epoch_inputs(state: EpochChainState, current_block: int) -> tuple[EpochInputs, int]:
    """The ``EpochInputs`` the contract will see, and the permit bitmap it will compute."""
    mg = state.metagraph
    hp = mg.hyperparameters
    n = mg.n
    permits = top_stake_permits(list(mg.stake), hp.max_validators)
    uids = [u for u in range(n) if permits >> u & 1]
    params = YumaParams(
        kappa=hp.kappa,
        bonds_moving_average=hp.bonds_moving_average,
        bonds_penalty=hp.bonds_penalty,
        liquid_alpha=hp.liquid_alpha_enabled,
        alpha_low=hp.alpha_low,
        alpha_high=hp.alpha_high,
        alpha_sigmoid_steepness=hp.alpha_sigmoid_steepness,
        activity_cutoff=hp.activity_cutoff,
    )
    bonds = []
    for uid in uids:
        valid = state.bond_rows >> uid & 1 and mg.registered_at[uid] <= state.last_epoch_block
        bonds.append(list(state.bonds[uid][:n]) if valid else [0] * n)
    minted = epoch_emission(state.total_supply, state.cap, state.emission_per_block, hp.tempo)
    inputs = EpochInputs(
        n=n,
        validator_uids=uids,
        stakes=[mg.stake[u] for u in uids],
        permits=[True] * len(uids),
        last_update=[mg.last_update[u] for u in uids],
        registration_blocks=list(mg.registered_at),
        weights=[list(state.weights[u][:n]) for u in uids],
        bonds=bonds,
        current_block=current_block,
        last_epoch_block=state.last_epoch_block,
        minted=minted,
        fees=state.fees,
        params=params,
    )
    return inputs, permits


def predict_epoch(state: EpochChainState, current_block: int) -> EpochPrediction:
    """Exactly what the epoch starting at ``current_block`` will record and credit."""
    inputs, permits = epoch_inputs(state, current_block)
    out = fixed.epoch(inputs)
    uids = inputs.validator_uids
    n = inputs.n
    emission = out.emission.per_uid(uids) if n else []
    credits: dict[str, int] = {}

    def credit(account: str, amount: int) -> None:
        if amount:
            credits[account] = credits.get(account, 0) + amount

    credit(state.subnet_owner, out.emission.owner)
    for uid, amount in enumerate(emission):
        credit(state.metagraph.hotkeys[uid], amount)
    dividends_u16 = [0] * n
    trust_u16 = [0] * n
    for row, uid in enumerate(uids):
        dividends_u16[uid] = to_u16(out.dividends[row])
        trust_u16[uid] = fixed.wone_to_u16(out.validator_trust[row])
    return EpochPrediction(
        inputs=inputs,
        outputs=out,
        permits=permits,
        minted=inputs.minted,
        fees=inputs.fees,
        emission=emission,
        credits=credits,
        incentive_u16=[to_u16(x) for x in out.incentive],
        dividends_u16=dividends_u16,
        consensus_u16=[fixed.wone_to_u16(x) for x in out.consensus],
        validator_trust_u16=trust_u16,
    )


def encode_consensus(consensus: Sequence[int]) -> bytes:
    """``runEpoch``'s consensus vector: each WONE-scaled value as 8 bytes, big-endian."""
    return b"".join(int(c).to_bytes(8, "big") for c in consensus)


ZERO_HASH = bytes(32)
LANES = fixed.LANES


def _word_bytes(words: Sequence[int]) -> bytes:
    return b"".join(int(w).to_bytes(32, "big") for w in words)


def encode_bonds(old: dict[int, list[int]], first_group: int) -> bytes:
    """``runEpoch``'s bond words from packed word ``first_group`` on (``old``: see
    :meth:`EpochClient.old_bond_words`), 32 bytes each, word by word."""
    return b"".join(_word_bytes(old[g]) for g in sorted(old) if g >= first_group)


def unpack_words(words: Sequence[int], n: int) -> tuple[int, ...]:
    """16 packed words -> the first ``n`` u16 lanes (:func:`chain.weights.unpack_row`)."""
    return tuple(unpack_row(words)[:n])


class EpochClient:
    """Transactions and reads of a deployed ``YumaConsensus``."""

    def __init__(self, w3: Web3, address: str) -> None:
        self.w3 = w3
        self.contract = Contract(w3, ARTIFACT, address)

    @property
    def address(self) -> str:
        return self.contract.address

    def metagraph_address(self) -> str:
        return to_checksum_address(self.contract.call("metagraph"))

    def token_address(self) -> str:
        return to_checksum_address(self.contract.call("token"))

    def run_epoch(
        self,
        sender: LocalAccount,
        consensus: bytes = b"",
        bonds: bytes = b"",
        row_sums: bytes = b"",
    ) -> TxReceipt:
        """One ``runEpoch`` transaction (starts an epoch when due, then advances it); the
        column phase needs ``consensus`` (:meth:`consensus_vector`) and the old bond words
        from the cursor's packed word on (:func:`encode_bonds`), its later calls and the
        credit phase the row sums (:meth:`row_sums`)."""
        return self.contract.transact(
            "runEpoch", consensus, bonds, row_sums, sender=sender, gas=MAX_STEP_GAS
        )

    def run_epoch_until_done(self, sender: LocalAccount) -> list[TxReceipt]:
        """Send ``runEpoch`` until no epoch is running (in the column phase with the consensus
        vector and the old bond words, both read once, and the row sums each call logs);
        returns every receipt."""
        receipts: list[TxReceipt] = []
        vector = b""
        old: dict[int, list[int]] = {}
        sums: bytes | None = None
        while True:
            phase, cursor = self.progress()
            if receipts and phase == Phase.IDLE:
                return receipts
            if len(receipts) >= MAX_STEPS:
                raise TransactionFailed(
                    f"epoch not done after {MAX_STEPS} runEpoch transactions; "
                    "check the chain's block gas limit"
                )
            # The column phase's first call starts the row sums; every later call needs them.
            call_sums = b""
            if phase == Phase.CREDIT or (phase == Phase.COLUMNS and cursor > 0):
                if sums is None:
                    sums = self.row_sums()
                call_sums = sums
            if phase != Phase.COLUMNS:
                receipts.append(self.run_epoch(sender, row_sums=call_sums))
            else:
                if not vector:
                    vector = self.consensus_vector()
                    old = self.old_bond_words()
                bonds = self.bonds_for_call(sender.address, vector, old, cursor, call_sums)
                receipts.append(self.run_epoch(sender, vector, bonds, call_sums))
            logged = self.contract.events(receipts[-1], "RowSums")
            if logged:
                sums = _word_bytes(logged[-1]["words"])

    def bonds_for_call(
        self,
        sender: str,
        vector: bytes,
        old: dict[int, list[int]],
        cursor: int,
        row_sums: bytes = b"",
    ) -> bytes:
        """The old bond words the next column-phase call reaches, and no more: every byte of
        calldata costs gas and counts against the call's budget. Simulates the call with the
        words of every remaining packed word, then again with one word past where that
        stopped (the shorter calldata leaves room for more), and keeps what the second reached.
        """
        first = cursor // LANES
        groups = [g for g in sorted(old) if g >= first]
        if not groups:
            return b""
        reach = self._reach(sender, vector, old, first, groups[-1] + 1, row_sums)
        later = [g for g in groups if g >= reach]
        if later:
            reach = self._reach(sender, vector, old, first, later[0] + 1, row_sums)
        return encode_bonds({g: old[g] for g in groups if g < reach}, first)

    def _reach(
        self,
        sender: str,
        vector: bytes,
        old: dict[int, list[int]],
        first: int,
        end: int,
        row_sums: bytes,
    ) -> int:
        """Packed words ``< end`` whose bond words a call passed those of ``first .. end - 1``
        reaches (the word it stops inside counts)."""
        bonds = encode_bonds({g: w for g, w in old.items() if g < end}, first)
        phase, cursor = self.contract.call("runEpoch", vector, bonds, row_sums, sender=sender)
        if Phase(phase) != Phase.COLUMNS:
            return end
        return min(end, (int(cursor) + LANES - 1) // LANES)

    def consensus_vector(self) -> bytes:
        """The running epoch's consensus vector (column phase): every column's stake-weighted
        median from ``consensusInputs`` and the Metagraph's weights, 8 bytes per uid."""
        kappa, uids, raw_active, last_update = self.contract.call("consensusInputs")
        reader = MetagraphReader(self.w3, self.metagraph_address())
        registered = [int(r) for r in reader.contract.call("registrationBlocks")]
        n = len(registered)
        rows = [
            fixed.masked_row(reader.weights(uid)[:n], int(uid), int(updated), registered)
            for uid, updated in zip(uids, last_update, strict=True)
        ]
        q = fixed.stake_weights([int(s) for s in raw_active])
        consensus = fixed.column_consensus(rows, q, int(kappa), n)
        return encode_consensus(consensus)

    def claim(
        self, sender: LocalAccount, account: str | None = None, *, stake: bool = False
    ) -> int:
        """Claim ``account``'s rewards (default: the sender's); returns the amount."""
        target = to_checksum_address(account or sender.address)
        receipt = self.contract.transact("claim", target, stake, sender=sender)
        events = self.contract.events(receipt, "RewardsClaimed")
        return int(events[0]["amount"])

    def claimable(self, account: str, block: Any = "latest") -> int:
        return int(self.contract.call("claimable", to_checksum_address(account), block=block))

    def reserved(self, block: Any = "latest") -> int:
        return int(self.contract.call("reserved", block=block))

    def epoch_running(self) -> bool:
        return self.progress()[0] != Phase.IDLE

    def row_sums(self) -> bytes:
        """The running epoch's row sums as its last column-phase call logged them
        (``RowSums``, 32 bytes per row), checked against ``rowSumsHash``."""
        expected = bytes(self.contract.call("rowSumsHash"))
        logs = self.contract.logs("RowSums", self.last_epoch_block() + 1, "latest")
        sums = _word_bytes(logs[-1]["words"]) if logs else b""
        if not logs or Web3.keccak(sums) != expected:
            raise TransactionFailed(
                "the running epoch's last RowSums log is missing or does not match rowSumsHash "
                "(is the node pruning logs?)"
            )
        return sums

    def progress(self, block: Any = "latest") -> tuple[Phase, int]:
        phase, cursor = self.contract.call("progress", block=block)
        return Phase(phase), int(cursor)

    def last_epoch_block(self, block: Any = "latest") -> int:
        return int(self.contract.call("lastEpochBlock", block=block))

    def next_epoch_block(self) -> int:
        return int(self.contract.call("nextEpochBlock"))

    def bond_rows(self, block: Any = "latest") -> int:
        return int(self.contract.call("bondRows", block=block))

    def bond_hashes(self, block: Any = "latest") -> list[bytes]:
        return [bytes(h) for h in self.contract.call("bondHashes", block=block)]

    def old_bond_words(self, block: int | None = None) -> dict[int, list[int]]:
        """The bond words the next (or running) epoch takes back: per packed word ``g`` with
        a non-zero hash, the words the last epoch logged (``BondWords``, one per row of
        ``bondRows``), checked against ``bondHashes`` as of ``block`` (default: latest)."""
        number = self.w3.eth.block_number if block is None else block
        last = self.last_epoch_block(block=number)
        hashes = self.bond_hashes(block=number)
        phase, cursor = self.progress(block=number)
        if phase == Phase.CREDIT:
            raise TransactionFailed(
                "the running epoch has rewritten every bond word; read them once it completes"
            )
        # Words the running epoch already rewrote are new; it no longer takes those back.
        done = cursor // LANES if phase == Phase.COLUMNS else 0
        needed = {g for g, h in enumerate(hashes) if h != ZERO_HASH and g >= done}
        if not needed:
            return {}
        found: dict[int, list[int]] = {}
        for args in self.contract.logs("BondWords", last, number, epochBlock=last):
            if int(args["group"]) in needed:
                found[int(args["group"])] = [int(w) for w in args["words"]]
        for g in needed:
            words = found.get(g)
            if words is None or Web3.keccak(_word_bytes(words)) != hashes[g]:
                raise TransactionFailed(
                    f"the bond words of packed word {g} logged by the epoch at block {last} "
                    "are missing or do not match bondHashes (is the node pruning logs?)"
                )
        return {g: found[g] for g in sorted(needed)}

    def stored_bonds(self, n: int, block: int | None = None) -> tuple[tuple[int, ...], ...]:
        """Every uid's bond row (``n`` lanes) as the last epoch left it: its rows from the
        logged words, zero for every other uid."""
        number = self.w3.eth.block_number if block is None else block
        rows = self.bond_rows(block=number)
        uids = [u for u in range(256) if rows >> u & 1]
        words = {u: [0] * LANES for u in range(n)}
        for g, logged in self.old_bond_words(block=number).items():
            for uid, word in zip(uids, logged, strict=True):
                words[uid][g] = word
        return tuple(unpack_words(words[u], n) for u in range(n))

    def emission_per_block(self) -> int:
        return int(self.contract.call("emissionPerBlock"))


def read_epoch_state(w3: Web3, epoch_address: str, block: int | None = None) -> EpochChainState:
    """Read what the next epoch will see, pinned to ``block`` (default: latest)."""
    number = w3.eth.block_number if block is None else block
    client = EpochClient(w3, epoch_address)
    reader = MetagraphReader(w3, client.metagraph_address())
    mg = reader.snapshot(number)
    n = mg.n
    token = Contract(w3, "SubnetToken", client.token_address())
    weights = tuple(
        unpack_words(reader.contract.call("weightRow", uid, block=number), n) for uid in range(n)
    )
    bonds = client.stored_bonds(n, block=number)
    balance = int(token.call("balanceOf", client.address, block=number))
    reserved = int(client.contract.call("reserved", block=number))
    owner = to_checksum_address(reader.contract.call("owner", block=number))
    return EpochChainState(
        metagraph=mg,
        weights=weights,
        bonds=bonds,
        bond_rows=client.bond_rows(block=number),
        last_epoch_block=client.last_epoch_block(block=number),
        total_supply=int(token.call("totalSupply", block=number)),
        cap=int(token.call("cap", block=number)),
        emission_per_block=int(client.contract.call("emissionPerBlock", block=number)),
        fees=balance - reserved,
        subnet_owner=owner,
    )
