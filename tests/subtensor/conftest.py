"""Fixtures for the Bittensor bridge tests (helpers live in subtensor_env.py)."""

from __future__ import annotations

from typing import Any

import pytest
from substrateinterface import SubstrateInterface
from subtensor_env import ReplayTransport, metadata_hex, replay_substrate


@pytest.fixture
def recorded() -> tuple[SubstrateInterface, ReplayTransport]:
    return replay_substrate()


@pytest.fixture(scope="session")
def sdk_codec() -> Any:
    """The official SDK's codec for the recorded runtime (V15 metadata, spec 343)."""
    codec_mod = pytest.importorskip(
        "bittensor._transport.codec",
        reason="the reference SDK is not installed: pip install -e '.[bittensor-ref]'",
    )
    raw = bytes.fromhex(metadata_hex(15).removeprefix("0x"))
    inner = codec_mod.strip_option_opaque_metadata(raw)
    return codec_mod.RuntimeCodec(inner, spec_version=343, transaction_version=1)
