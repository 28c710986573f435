"""The validator's chain duties: commit and reveal weights, and run the Yuma epoch when due.

Blocking web3 calls throughout; the run loop calls them through ``asyncio.to_thread``.

Weights (:class:`WeightSetter`): normalised weights by uid -> u16 (``prepare_weights``) ->
``commitWeights(hash)`` with a fresh salt -> ``revealWeights`` in the reveal window. How the
timing works, as the Metagraph contract checks it:

* window of a block = ``block // tempo``; a commit mined at block ``c`` must be revealed in
  window ``c // tempo + revealPeriod`` (earlier: ``MetagraphRevealTooEarly``; later:
  ``MetagraphRevealExpired``, and the validator commits again);
* a reveal also needs ``block >= lastUpdate + weightsRateLimit`` (``lastUpdate``: the uid's last
  reveal, or its registration), a validator permit, the subnet's ``weightsVersionKey`` or
  higher, and at least ``min(minAllowedWeights, neuron count)`` entries;
* a commit is only sent when its reveal window can satisfy the rate limit, and only while
  there is no usable pending commit: steady state is one commit and one reveal per window
  (commit in window ``w``, reveal at the start of ``w + revealPeriod``, commit again).

Every decision is made by the pure :func:`plan_weights` over a :class:`WeightChainView` read
at one block; a transaction "at head ``h``" is expected in block ``h + 1``. The commit's salt
and values are saved (``ValidatorState.save``) *before* the commit is sent, so a validator
killed between commit and reveal reloads its state and still reveals; the chain's
``weightCommit(uid)`` is the truth about whether a saved commit is still pending.

Keeper (:class:`EpochKeeper`): sends ``runEpoch`` until the epoch is done once one is due (or
resumes one that is running); losing the race to another keeper is reported, not raised.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from eth_account.signers.local import LocalAccount
from web3.types import TxReceipt

from chain.epoch import EpochClient
from chain.errors import ContractRevert, LatentError, TransactionFailed
from chain.metagraph import Metagraph, MetagraphClient
from chain.weights import WeightSet, commit_hash, new_salt, prepare_weights
from validator.state import CommitRecord, ValidatorState

__all__ = [
    "EpochKeeper",
    "WeightAction",
    "WeightChainView",
    "WeightPlan",
    "WeightSetter",
    "pad_to_min_weights",
    "plan_weights",
]

log = logging.getLogger(__name__)

WeightAction = Literal["commit", "reveal"]

#: Reveal errors after which the saved commit can never be revealed: drop it, commit again.
_UNREVEALABLE = frozenset(
    {
        "MetagraphNoCommit",
        "MetagraphRevealExpired",
        "MetagraphCommitMismatch",
        "MetagraphVersionKeyTooLow",
        "MetagraphTooFewWeights",
        "MetagraphUidOutOfRange",
        "MetagraphDuplicateUid",
        "MetagraphMalformedWeights",
    }
)

ZERO_HASH = bytes(32)


@dataclass(frozen=True)
class WeightChainView:
    """What :func:`plan_weights` needs from the chain, read at one block."""

    head: int
    """Chain head; a transaction sent now lands in ``head + 1``."""
    tempo: int
    reveal_period: int
    weights_rate_limit: int
    min_allowed_weights: int
    weights_version_key: int
    """Minimum version key a reveal must carry."""
    n: int
    """Registered uids."""
    uid: int | None
    """The validator's uid (None: its hotkey is not registered)."""
    permit: bool
    last_update: int
    """Block of the uid's last reveal (its registration block before the first)."""
    chain_commit_hash: bytes = ZERO_HASH
    """``weightCommit(uid).hash`` (zero: no pending commit)."""
    chain_commit_block: int = 0

    @property
    def required_weights(self) -> int:
        """Entries a reveal needs: ``min(minAllowedWeights, n)``."""
        return min(self.min_allowed_weights, self.n)

    def window_start(self, window: int) -> int:
        return window * self.tempo


@dataclass(frozen=True)
class WeightPlan:
    """What to do at ``view.head``, and why."""

    action: WeightAction | None
    reason: str
    next_block: int
    """Earliest head at which a step may act (``action`` set: the current head)."""
    commit: CommitRecord | None
    """The saved commit as it should now be stored: confirmed (``block`` from the chain),
    unchanged, or None when it can no longer be revealed."""
    version_key: int
    """Version key a commit made now must carry."""


def _next_window_head(view: WeightChainView) -> int:
    """Head at which the next window's first block is the next transaction's block."""
    return view.window_start((view.head + 1) // view.tempo + 1) - 1


def plan_weights(
    view: WeightChainView, commit: CommitRecord | None, version_key: int | None = None
) -> WeightPlan:
    """Decide between reveal, commit and waiting (pure; see the module docstring).

    ``version_key``: the validator's own weights version (None: the subnet's required one).
    """
    tx = view.head + 1
    tempo = view.tempo
    key = view.weights_version_key if version_key is None else version_key

    def wait(reason: str, next_block: int, kept: CommitRecord | None) -> WeightPlan:
        return WeightPlan(None, reason, max(next_block, view.head + 1), kept, key)

    if view.uid is None:
        return wait("hotkey not registered: no weights", _next_window_head(view), commit)
    if not view.permit:
        return wait(
            f"uid {view.uid} holds no validator permit: not committing weights (stake more; "
            "permits follow stake at each epoch)",
            _next_window_head(view),
            commit,
        )
    next_allowed = view.last_update + view.weights_rate_limit
    notes: list[str] = []
    if commit is not None:
        if view.chain_commit_hash != commit.commit_hash:
            notes.append(
                "the saved commit is no longer pending on chain (revealed, replaced or never mined)"
            )
            commit = None
        else:
            if commit.block != view.chain_commit_block:
                window = view.chain_commit_block // tempo + view.reveal_period
                commit = replace(commit, block=view.chain_commit_block, reveal_window=window)
            assert commit.block is not None
            window = commit.block // tempo + view.reveal_period
            start, end = view.window_start(window), view.window_start(window + 1) - 1
            earliest = max(start, next_allowed)
            if tx > end:
                notes.append(
                    f"commit of block {commit.block} expired (reveal window {window} ended at "
                    f"block {end})"
                )
                commit = None
            elif earliest > end:
                notes.append(
                    f"commit of block {commit.block} cannot be revealed: the rate limit allows "
                    f"the next reveal at block {next_allowed}, after its window ends at {end}"
                )
                commit = None
            elif commit.version_key < view.weights_version_key:
                notes.append(
                    f"commit carries version key {commit.version_key}, the subnet now requires "
                    f"{view.weights_version_key}"
                )
                commit = None
            elif len(commit.uids) < view.required_weights:
                notes.append(
                    f"commit has {len(commit.uids)} weights, the subnet now requires "
                    f"{view.required_weights}"
                )
                commit = None
            elif tx < earliest:
                return wait(
                    f"waiting to reveal the commit of block {commit.block} at block {earliest} "
                    f"(window {window})",
                    earliest - 1,
                    commit,
                )
            else:
                return WeightPlan(
                    "reveal",
                    f"revealing the commit of block {commit.block} in window {window}",
                    view.head,
                    commit,
                    key,
                )
    prefix = "; ".join(notes) + ("; " if notes else "")
    if key < view.weights_version_key:
        return wait(
            f"{prefix}weights version key {key} is below the subnet's "
            f"{view.weights_version_key}: upgrade the validator",
            _next_window_head(view),
            None,
        )
    # Commit only when the reveal window (commit window + revealPeriod) reaches the block at
    # which the rate limit allows the next reveal.
    first_window = next_allowed // tempo - view.reveal_period
    if tx // tempo < first_window:
        return wait(
            f"{prefix}rate limit: next reveal allowed at block {next_allowed}, so the next "
            f"commit waits for window {first_window}",
            view.window_start(first_window) - 1,
            None,
        )
    return WeightPlan("commit", prefix + "committing new weights", view.head, None, key)


def pad_to_min_weights(weights: WeightSet, required: int, n: int) -> tuple[WeightSet, int]:
    """``weights`` with zero-valued entries on the lowest absent uids until it holds
    ``required`` entries (the contract counts entries, zeros included); returns the padded
    set and how many entries were added. Zero entries change no stored weight."""
    missing = required - len(weights.uids)
    if missing <= 0:
        return weights, 0
    present = set(weights.uids)
    extra = [u for u in range(n) if u not in present][:missing]
    merged = dict(zip(weights.uids, weights.values, strict=True)) | dict.fromkeys(extra, 0)
    uids = sorted(merged)
    return WeightSet(tuple(uids), tuple(merged[u] for u in uids)), len(extra)


class WeightSetter:
    """Commits and reveals this validator's weights (see the module docstring).

    ``state`` is shared with the run loop; with ``state_path`` it is saved before every
    commit is sent and after every commit or reveal is mined. ``version_key``: the weights
    version this validator runs (None: whatever the subnet requires).
    """

    def __init__(
        self,
        metagraph: MetagraphClient,
        hotkey: LocalAccount,
        state: ValidatorState,
        *,
        state_path: Path | str | None = None,
        version_key: int | None = None,
    ) -> None:
        self.metagraph = metagraph
        self.hotkey = hotkey
        self.state = state
        self.state_path = None if state_path is None else Path(state_path)
        self.version_key = version_key
        self.last_action: WeightAction | None = None
        """The action of the last :meth:`step` that sent a transaction."""
        self.last_reason = ""
        """Why the last :meth:`step` did what it did (also logged)."""

    # -- reads -------------------------------------------------------------------------------

    def view(self, block: int | None = None, metagraph: Metagraph | None = None) -> WeightChainView:
        """Read what the plan needs (latest state; ``block`` only raises the head)."""
        mg = metagraph if metagraph is not None else self.metagraph.snapshot()
        hp = mg.hyperparameters
        uid = mg.uid_of(self.hotkey.address)
        commit_hash_, commit_block = ZERO_HASH, 0
        if uid is not None:
            stored = self.metagraph.contract.call("weightCommit", uid)
            commit_hash_, commit_block = bytes(stored[0]), int(stored[1])
        return WeightChainView(
            head=max(mg.block, block or 0),
            tempo=hp.tempo,
            reveal_period=hp.reveal_period,
            weights_rate_limit=hp.weights_rate_limit,
            min_allowed_weights=hp.min_allowed_weights,
            weights_version_key=hp.weights_version_key,
            n=mg.n,
            uid=uid,
            permit=uid is not None and mg.validator_permit[uid],
            last_update=mg.last_update[uid] if uid is not None else 0,
            chain_commit_hash=commit_hash_,
            chain_commit_block=commit_block,
        )

    def plan(self, block: int | None = None, metagraph: Metagraph | None = None) -> WeightPlan:
        return plan_weights(self.view(block, metagraph), self.state.commit, self.version_key)

    def due_action(self, block: int) -> WeightAction | None:
        """``"commit"``, ``"reveal"`` or None at chain head ``block``."""
        return self.plan(block).action

    def next_action_block(self, block: int) -> int:
        """The chain head at which :meth:`step` next has something to do (sleep until then;
        ``block`` itself when something is due now)."""
        return self.plan(block).next_block

    # -- the duty ----------------------------------------------------------------------------

    def step(
        self, block: int, weights: Mapping[int, float], metagraph: Metagraph | None = None
    ) -> TxReceipt | None:
        """Do what is due at head ``block``: reveal the pending commit, or commit ``weights``
        (uid -> non-negative weight, normalised here). Returns the receipt of the transaction
        sent, or None (``last_reason`` says why). Contract errors are reported, not raised."""
        self.last_action = None
        view = self.view(block, metagraph)
        plan = plan_weights(view, self.state.commit, self.version_key)
        if plan.commit != self.state.commit:
            self.state.commit = plan.commit
            self._save()
        if plan.action is None:
            return self._skip(plan.reason)
        if plan.action == "reveal":
            return self._reveal(plan)
        return self._commit(view, plan, weights)

    def _reveal(self, plan: WeightPlan) -> TxReceipt | None:
        commit = plan.commit
        assert commit is not None
        ws = WeightSet(commit.uids, commit.values)
        try:
            receipt = self.metagraph.reveal_weights(
                self.hotkey, ws, commit.salt, commit.version_key
            )
        except TransactionFailed as exc:
            if isinstance(exc, ContractRevert) and exc.error_name in _UNREVEALABLE:
                self.state.commit = None
                self._save()
                return self._skip(f"reveal refused ({exc}); committing again", warn=True)
            return self._skip(f"reveal failed ({exc}); retrying", warn=True)
        self.state.commit = None
        self.state.last_reveal_block = int(receipt["blockNumber"])
        self._save()
        self.last_action = "reveal"
        self._report(
            f"{plan.reason}: revealed {len(ws.uids)} weights at block {receipt['blockNumber']}"
        )
        return receipt

    def _commit(
        self, view: WeightChainView, plan: WeightPlan, weights: Mapping[int, float]
    ) -> TxReceipt | None:
        usable = {int(u): float(w) for u, w in weights.items() if 0 <= int(u) < view.n}
        dropped = len(weights) - len(usable)
        if not any(w > 0 for w in usable.values()):
            return self._skip(f"{plan.reason}: no positive weight on a registered uid; skipped")
        total = sum(max(0.0, w) for w in usable.values())
        ws = prepare_weights({u: max(0.0, w) / total for u, w in usable.items()})
        ws, padded = pad_to_min_weights(ws, view.required_weights, view.n)
        notes = []
        if dropped:
            notes.append(f"{dropped} weights on unregistered uids left out")
        if padded:
            notes.append(
                f"only {len(ws.uids) - padded} miners scored: padded with {padded} zero weights "
                f"to meet minAllowedWeights {view.required_weights}"
            )
        salt = new_salt()
        record = CommitRecord(
            salt=salt,
            uids=ws.uids,
            values=ws.values,
            version_key=plan.version_key,
            commit_hash=commit_hash(self.hotkey.address, ws, salt, plan.version_key),
            sent_at_block=view.head,
        )
        # Saved before sending: whatever happens next, the salt of a mined commit is on disk.
        self.state.commit = record
        self._save()
        try:
            receipt = self.metagraph.commit_weights(self.hotkey, ws, salt, plan.version_key)
        except TransactionFailed as exc:
            return self._skip(f"commit failed ({exc}); retrying", warn=True)
        mined = int(receipt["blockNumber"])
        self.state.commit = replace(
            record, block=mined, reveal_window=mined // view.tempo + view.reveal_period
        )
        self.state.last_commit_block = mined
        self._save()
        self.last_action = "commit"
        note = f" ({'; '.join(notes)})" if notes else ""
        self._report(
            f"{plan.reason}: committed {len(ws.uids)} weights at block {mined}, reveal in "
            f"window {self.state.commit.reveal_window}{note}"
        )
        return receipt

    def _save(self) -> None:
        if self.state_path is not None:
            self.state.save(self.state_path)

    def _skip(self, reason: str, *, warn: bool = False) -> TxReceipt | None:
        """Report why no transaction was sent; None."""
        self._report(reason, warn=warn)
        return None

    def _report(self, reason: str, *, warn: bool = False) -> None:
        self.last_reason = reason
        log.log(logging.WARNING if warn else logging.INFO, "weights: %s", reason)


class EpochKeeper:
    """Runs the Yuma epoch whenever it is due (any validator may; the first one wins).

    With ``state``, the start block of the last epoch seen is kept in
    ``state.last_epoch_block`` (saved with the state's next save).
    """

    def __init__(
        self, epoch: EpochClient, sender: LocalAccount, *, state: ValidatorState | None = None
    ) -> None:
        self.epoch = epoch
        self.sender = sender
        self.state = state
        self.last_error: str | None = None
        """Why the last :meth:`run_if_due` failed (None when it did not)."""

    def next_epoch_block(self) -> int:
        """The first block in which ``runEpoch`` may start the next epoch."""
        return self.epoch.next_epoch_block()

    def is_due(self, block: int) -> bool:
        """Whether a ``runEpoch`` sent at head ``block`` (mined in ``block + 1``) has work:
        an epoch is running, or the next one may start."""
        return self.epoch.epoch_running() or block + 1 >= self.next_epoch_block()

    def next_action_block(self, block: int) -> int:
        """The chain head at which :meth:`run_if_due` next has work."""
        if self.epoch.epoch_running():
            return block
        return max(block, self.next_epoch_block() - 1)

    def run_if_due(self, block: int) -> list[TxReceipt]:
        """Run (or finish) the epoch if due at head ``block``; every receipt, or ``[]`` when
        nothing was due or a step failed (``last_error``; retried on the next call)."""
        self.last_error = None
        try:
            if not self.is_due(block):
                return []
            receipts = self.epoch.run_epoch_until_done(self.sender)
        except LatentError as exc:  # e.g. another keeper started it first: retry next time
            self.last_error = str(exc)
            log.warning("epoch keeper: %s", exc)
            return []
        gas = sum(int(r["gasUsed"]) for r in receipts)
        log.info("epoch keeper: epoch done in %d tx, %d gas", len(receipts), gas)
        if self.state is not None:
            self.state.last_epoch_block = self.epoch.last_epoch_block()
        return receipts
