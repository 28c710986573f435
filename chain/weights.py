"""Weight processing shared by validators, tests and the metagraph client (pure functions).

Pipeline a validator follows each tempo::

    scores by uid --normalize--> fractions --max_upscale_u16--> u16 values
      --prepare_weights--> WeightSet (uids ascending) --commit_hash--> commitWeights(hash)
    one reveal period later: revealWeights(pack_u16(uids), pack_u16(values), salt, version_key)

On-chain encoding (``contracts/Metagraph.sol``): ``uids`` and ``values`` travel as ``bytes`` of
big-endian u16 (2 bytes per entry, :func:`pack_u16`); the commit hash is
``keccak256(abi.encode(address hotkey, bytes uids, bytes values, bytes32 salt, uint64 versionKey))``
over exactly those bytes, so the hash depends on entry order. :func:`prepare_weights` sorts by
uid, which makes the hash of a weight *map* independent of how the map was built. The contract
stores each row max-upscaled: ``floor(v * 65535 / max)`` per entry (:func:`stored_row`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address

U16_MAX = 65_535
ROW_WIDTH = 256  # uids per packed row (16 words x 16 lanes)


@dataclass(frozen=True)
class WeightSet:
    """One validator's weights as committed and revealed: parallel u16 lists."""

    uids: tuple[int, ...]
    values: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.uids) != len(self.values):
            raise ValueError("uids and values must have the same length")
        if len(set(self.uids)) != len(self.uids):
            raise ValueError("duplicate uid in weight set")
        for x in (*self.uids, *self.values):
            if not 0 <= x <= U16_MAX:
                raise ValueError(f"{x} is not a u16")

    @property
    def packed_uids(self) -> bytes:
        return pack_u16(self.uids)

    @property
    def packed_values(self) -> bytes:
        return pack_u16(self.values)


def normalize(scores: Sequence[float]) -> list[float]:
    """Scores scaled to sum to 1 (negative scores count as 0; all-zero input stays all zero)."""
    clipped = [max(0.0, float(s)) for s in scores]
    total = sum(clipped)
    if total <= 0.0:
        return [0.0] * len(clipped)
    return [s / total for s in clipped]


def max_upscale_u16(values: Sequence[float | int]) -> list[int]:
    """``floor(v * 65535 / max(values))`` exactly (rational arithmetic): the largest becomes 65535.

    On integer input this is the contract's own rescaling. Negative values are rejected; an
    all-zero input stays all zero.
    """
    exact = [Fraction(v) for v in values]
    if any(v < 0 for v in exact):
        raise ValueError("weights must be >= 0")
    top = max(exact, default=Fraction(0))
    if top == 0:
        return [0] * len(exact)
    return [int(v * U16_MAX // top) for v in exact]


def prepare_weights(weights: Mapping[int, float | int]) -> WeightSet:
    """A weight map (uid -> non-negative weight) as a sorted, max-upscaled :class:`WeightSet`."""
    uids = sorted(weights)
    return WeightSet(tuple(uids), tuple(max_upscale_u16([weights[u] for u in uids])))


def pack_u16(values: Sequence[int]) -> bytes:
    """Big-endian u16 concatenation (the calldata form of ``uids`` and ``values``)."""
    return b"".join(int(v).to_bytes(2, "big") for v in values)


def unpack_u16(data: bytes) -> list[int]:
    """Inverse of :func:`pack_u16`."""
    if len(data) % 2:
        raise ValueError("packed u16 data must have an even length")
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


def new_salt() -> bytes:
    """32 random bytes for a commit."""
    return os.urandom(32)


def commit_hash(hotkey: str, weights: WeightSet, salt: bytes, version_key: int) -> bytes:
    """The hash ``commitWeights`` expects for a later ``revealWeights`` of ``weights``.

    ``keccak256(abi.encode(hotkey, pack_u16(uids), pack_u16(values), salt, versionKey))``.
    """
    if len(salt) != 32:
        raise ValueError("salt must be 32 bytes")
    encoded = abi_encode(
        ["address", "bytes", "bytes", "bytes32", "uint64"],
        [
            to_checksum_address(hotkey),
            weights.packed_uids,
            weights.packed_values,
            salt,
            version_key,
        ],
    )
    return keccak(encoded)


def stored_row(weights: WeightSet, dropped_uids: frozenset[int] = frozenset()) -> list[int]:
    """The 256-lane row the contract stores for a reveal of ``weights``.

    Entries on ``dropped_uids`` (registered at or after the commit) are zeroed first; the rest are
    max-upscaled (``floor(v * 65535 / max)``).
    """
    row = [0] * ROW_WIDTH
    kept = [
        (u, v) for u, v in zip(weights.uids, weights.values, strict=True) if u not in dropped_uids
    ]
    scaled = max_upscale_u16([v for _, v in kept])
    for (uid, _), value in zip(kept, scaled, strict=True):
        row[uid] = value
    return row


def unpack_row(words: Sequence[int]) -> list[int]:
    """The 256 u16 lanes of a packed row (word ``j // 16``, bits ``16 * (j % 16)``)."""
    return [(int(words[j >> 4]) >> ((j & 15) * 16)) & U16_MAX for j in range(len(words) * 16)]


def pack_row(lanes: Sequence[int]) -> list[int]:
    """Inverse of :func:`unpack_row` (lanes padded to a multiple of 16)."""
    words = [0] * ((len(lanes) + 15) // 16)
    for j, value in enumerate(lanes):
        words[j >> 4] |= int(value) << ((j & 15) * 16)
    return words


__all__ = [
    "ROW_WIDTH",
    "U16_MAX",
    "WeightSet",
    "commit_hash",
    "max_upscale_u16",
    "new_salt",
    "normalize",
    "pack_row",
    "pack_u16",
    "prepare_weights",
    "stored_row",
    "unpack_row",
    "unpack_u16",
]
