"""Timelocked (commit-reveal v4) weight commits: the reveal schedule and the payload.

When a subnet has commit-reveal on, a validator commits its weights encrypted to a future
drand *quicknet* round (``commit_timelocked_weights``); the chain decrypts and applies them
by itself once that round's signature is on chain, ``reveal_period_epochs`` epochs later.

The pure part here predicts *which* round: :func:`predict_first_reveal_block` simulates the
subnet's epoch schedule (``run_coinbase``: an epoch fires when ``tempo`` blocks have passed
since the last one, or at an owner-triggered ``pending_epoch_at``) from the block after the
head (where the extrinsic lands) until the epoch index reaches the commit's epoch plus the
reveal period; :func:`reveal_round` turns that block into the quicknet round published
``SECURITY_BLOCK_OFFSET`` blocks later, from the wall clock. This follows
``bittensor-drand``'s ``generate_commit_v2`` and is checked against it in the tests.

Encryption is ``bittensor_drand.get_encrypted_commit_v2`` (BLS12-381 identity-based
encryption to the round, AES-GCM; randomised, so ciphertexts never repeat). Its plaintext is
the SCALE encoding of ``WeightsTlockPayload {hotkey: Vec<u8>, uids: Vec<u16>, values:
Vec<u16>, version_key: u64}`` (:func:`encode_payload`).

Runtimes from before the stateful epoch schedule (no ``LastEpochBlock`` storage) number
epochs ``(block + netuid + 1) // (tempo + 1)``: :func:`legacy_first_reveal_block` predicts
their reveal block and :func:`pinned_schedule_state` hands it to the encrypter as a state whose
only epoch in reach is that block.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from chain.bittensor.errors import CommitRevealMismatch, SubtensorError
from chain.bittensor.scale import encode_compact

QUICKNET_GENESIS = 1_692_803_367  # unix seconds of round 1
QUICKNET_PERIOD = 3  # seconds per round
QUICKNET_CHAIN_HASH = "52db9ba70e0cc0f6eaf7803dd07447a1f5477735fd3f661792ba94600c84e971"
MAX_TEMPO = 50_400  # an epoch runs at least this often, whatever the tempo says
SECURITY_BLOCK_OFFSET = 3  # target a pulse the chain has surely ingested by the reveal block
COMMIT_INCLUSION_BLOCK_OFFSET = 1  # the extrinsic lands in the block after the head we read


@dataclass(frozen=True)
class EpochScheduleState:
    """A subnet's epoch-schedule storage at the head block (``SubtensorModule`` items)."""

    last_epoch_block: int  # LastEpochBlock
    pending_epoch_at: int  # PendingEpochAt (0: none)
    subnet_epoch_index: int  # SubnetEpochIndex
    tempo: int  # Tempo
    blocks_since_last_step: int  # BlocksSinceLastStep
    current_block: int  # the head block number


def legacy_first_reveal_block(
    netuid: int, tempo: int, current_block: int, reveal_period_epochs: int
) -> int:
    """First reveal block on a runtime without the stateful schedule (no ``LastEpochBlock``).

    There the epoch index of block ``b`` is ``(b + netuid + 1) // (tempo + 1)``; a commit
    landing in the block after the head is revealed at the first block whose index is the
    commit's plus ``reveal_period_epochs``.
    """
    if tempo == 0:
        raise CommitRevealMismatch(
            "the subnet's tempo is 0, so it runs no epochs and nothing committed would be "
            "revealed: do not commit on this subnet"
        )
    period = tempo + 1
    landing = current_block + COMMIT_INCLUSION_BLOCK_OFFSET
    target = (landing + netuid + 1) // period + reveal_period_epochs
    return target * period - netuid - 1


def pinned_schedule_state(current_block: int, first_reveal_block: int) -> EpochScheduleState:
    """A stateful schedule whose only epoch within reach is ``first_reveal_block``.

    With a reveal period of one epoch it makes :func:`predict_first_reveal_block` (and
    ``bittensor-drand``) land on that block: how a legacy schedule is handed to the encrypter.
    """
    if (
        not current_block + COMMIT_INCLUSION_BLOCK_OFFSET
        < first_reveal_block
        <= current_block + MAX_TEMPO
    ):
        raise SubtensorError(
            f"reveal block {first_reveal_block} is not within {MAX_TEMPO} blocks after "
            f"{current_block}: re-read the subnet"
        )
    return EpochScheduleState(
        last_epoch_block=current_block,
        pending_epoch_at=first_reveal_block,
        subnet_epoch_index=0,
        tempo=65_535,
        blocks_since_last_step=0,
        current_block=current_block,
    )


def _epoch_fires(state: EpochScheduleState, block: int) -> bool:
    if state.tempo == 0:
        return False
    if state.pending_epoch_at > 0 and block >= state.pending_epoch_at:
        return True
    if state.blocks_since_last_step > MAX_TEMPO:
        return True
    return max(0, block - state.last_epoch_block) >= state.tempo


def _epoch_before_coinbase(state: EpochScheduleState, block: int) -> int:
    # Reveals run before run_coinbase in a block step, so they see the index an epoch
    # firing in this block will have.
    return state.subnet_epoch_index + (1 if _epoch_fires(state, block) else 0)


def _step(state: EpochScheduleState, block: int) -> EpochScheduleState:
    nxt = replace(
        state, blocks_since_last_step=state.blocks_since_last_step + 1, current_block=block
    )
    if _epoch_fires(nxt, block):
        nxt = replace(
            nxt,
            last_epoch_block=block,
            pending_epoch_at=0,
            subnet_epoch_index=nxt.subnet_epoch_index + 1,
            blocks_since_last_step=0,
        )
    return nxt


def predict_first_reveal_block(state: EpochScheduleState, reveal_period_epochs: int) -> int:
    """The first block whose reveal step sees the commit's epoch + ``reveal_period_epochs``."""
    if state.tempo == 0:
        raise CommitRevealMismatch(
            "the subnet's tempo is 0, so it runs no epochs and nothing committed would be "
            "revealed: do not commit on this subnet"
        )
    landing = state.current_block + COMMIT_INCLUSION_BLOCK_OFFSET
    pre = state
    for b in range(state.current_block + 1, landing):
        pre = _step(pre, b)
    target = _epoch_before_coinbase(pre, landing) + reveal_period_epochs
    bound = reveal_period_epochs * MAX_TEMPO + MAX_TEMPO
    for block in range(landing, landing + bound + 1):
        if _epoch_before_coinbase(pre, block) == target:
            return block
        pre = _step(pre, block)
    raise SubtensorError(
        f"no reveal block within {bound} blocks of {landing}: the schedule read from the node "
        "is inconsistent; re-read it"
    )


def reveal_round(
    state: EpochScheduleState,
    reveal_period_epochs: int,
    block_time: float,
    now: float | None = None,
) -> int:
    """The drand quicknet round a commit made now must be encrypted to."""
    first = predict_first_reveal_block(state, reveal_period_epochs)
    blocks = max(0, first + SECURITY_BLOCK_OFFSET - state.current_block)
    target = (time.time() if now is None else now) + blocks * float(block_time)
    return max(1, math.floor((target - QUICKNET_GENESIS) / QUICKNET_PERIOD))


def round_time(round_number: int) -> float:
    """Unix time at which quicknet publishes ``round_number``."""
    return QUICKNET_GENESIS + (round_number - 1) * QUICKNET_PERIOD


def encode_payload(
    hotkey_public_key: bytes, uids: Sequence[int], values: Sequence[int], version_key: int
) -> bytes:
    """SCALE ``WeightsTlockPayload {hotkey: Vec<u8>, uids: Vec<u16>, values: Vec<u16>, version_key: u64}``."""
    out = bytearray(encode_compact(len(hotkey_public_key)) + bytes(hotkey_public_key))
    for seq in (uids, values):
        out += encode_compact(len(seq))
        for x in seq:
            out += int(x).to_bytes(2, "little")
    out += int(version_key).to_bytes(8, "little")
    return bytes(out)


def encrypt_commit(
    hotkey_public_key: bytes,
    uids: Sequence[int],
    values: Sequence[int],
    version_key: int,
    state: EpochScheduleState,
    reveal_period_epochs: int,
    block_time: float,
) -> tuple[bytes, int]:
    """Encrypt the weights for the chain's auto-reveal: ``(ciphertext, reveal round)``.

    Done by ``bittensor-drand`` (the same library the SDK uses); the round it picks is the one
    :func:`reveal_round` predicts for the same state and wall time.
    """
    try:
        import bittensor_drand
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise SubtensorError(
            "bittensor-drand is not installed: `pip install bittensor-drand` (it encrypts "
            "timelocked weight commits)"
        ) from exc
    if state.tempo == 0:
        predict_first_reveal_block(state, reveal_period_epochs)  # raises the clear error
    try:
        ciphertext, round_number = bittensor_drand.get_encrypted_commit_v2(
            list(map(int, uids)),
            list(map(int, values)),
            int(version_key),
            state.last_epoch_block,
            state.pending_epoch_at,
            state.subnet_epoch_index,
            state.tempo,
            state.blocks_since_last_step,
            state.current_block,
            int(reveal_period_epochs),
            float(block_time),
            bytes(hotkey_public_key),
        )
    except ValueError as exc:
        raise SubtensorError(f"timelock encryption failed: {exc}; re-read the subnet") from exc
    return bytes(ciphertext), int(round_number)
