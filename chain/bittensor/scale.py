"""A minimal SCALE reader for the runtime-API results the bridge decodes (pure).

Only what ``NeuronInfoLite`` and its parts need: fixed-width little-endian integers,
compact integers, booleans, 32-byte account ids and length-prefixed vectors. Layouts are
written next to the decoders (``chain.bittensor.metagraph``) and checked in the tests
against the SDK's metadata-driven decoder on a recorded node response.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from chain.errors import LatentError

T = TypeVar("T")


class ScaleDecodeError(LatentError):
    """Bytes from the node do not decode as the expected SCALE layout.

    The node probably runs a runtime this Latent version does not know; upgrade Latent or
    report the node's spec version.
    """


class ScaleReader:
    """Reads SCALE values front to back from one byte string."""

    def __init__(self, data: bytes) -> None:
        self.data = bytes(data)
        self.pos = 0

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise ScaleDecodeError(
                f"SCALE data ends at byte {len(self.data)}, needed {end}: the node's runtime "
                "layout differs from what Latent decodes (upgrade Latent)"
            )
        out = self.data[self.pos : end]
        self.pos = end
        return out

    def uint(self, nbytes: int) -> int:
        return int.from_bytes(self.take(nbytes), "little")

    def u8(self) -> int:
        return self.uint(1)

    def u16(self) -> int:
        return self.uint(2)

    def u32(self) -> int:
        return self.uint(4)

    def u64(self) -> int:
        return self.uint(8)

    def u128(self) -> int:
        return self.uint(16)

    def boolean(self) -> bool:
        b = self.u8()
        if b > 1:
            raise ScaleDecodeError(f"byte {b} at {self.pos - 1} is not a SCALE bool")
        return b == 1

    def compact(self) -> int:
        first = self.u8()
        mode = first & 3
        if mode == 0:
            return first >> 2
        if mode == 1:
            return (first | self.u8() << 8) >> 2
        if mode == 2:
            return (first | self.uint(3) << 8) >> 2
        return self.uint((first >> 2) + 4)

    def account_id(self) -> bytes:
        return self.take(32)

    def vec(self, item: Callable[[ScaleReader], T]) -> list[T]:
        return [item(self) for _ in range(self.compact())]

    def option(self, item: Callable[[ScaleReader], T]) -> T | None:
        tag = self.u8()
        if tag == 0:
            return None
        if tag != 1:
            raise ScaleDecodeError(f"byte {tag} at {self.pos - 1} is not a SCALE Option tag")
        return item(self)

    def at_end(self) -> bool:
        return self.pos == len(self.data)


def encode_compact(value: int) -> bytes:
    """SCALE compact encoding of a non-negative integer."""
    if value < 0:
        raise ValueError("compact integers are unsigned")
    if value < 1 << 6:
        return bytes([value << 2])
    if value < 1 << 14:
        return ((value << 2) | 1).to_bytes(2, "little")
    if value < 1 << 30:
        return ((value << 2) | 2).to_bytes(4, "little")
    raw = value.to_bytes((value.bit_length() + 7) // 8, "little")
    return bytes([((len(raw) - 4) << 2) | 3]) + raw
