"""Helpers for the Bittensor bridge tests: a recorded finney exchange replayed into substrate-interface.

``data/README.md`` says where every byte in ``data/`` comes from.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from substrateinterface import SubstrateInterface
from substrateinterface.transport.base import TransportBase

DATA = Path(__file__).parent / "data"
# finney's genesis hash; used only where a test needs *a* genesis hash for signing (the
# recording has none), never to claim a recorded response
FINNEY_GENESIS = "0x2f0555cc76fc2840a25a6ea3b9637146806f1f44b090c175ffde2a7e5ab36c03"


def metadata_hex(version: int) -> str:
    with gzip.open(DATA / f"finney_spec343_metadata_v{version}.hex.gz", "rt") as f:
        return f.read().strip()


def recorded_exchange(name: str = "finney_netuid1_exchange") -> dict[str, dict[str, Any]]:
    with gzip.open(DATA / f"{name}.json.gz", "rt") as f:
        return json.load(f)


class UnrecordedRequest(AssertionError):
    """The code asked the node something the recording does not contain."""


class ReplayTransport(TransportBase):
    """Answers JSON-RPC requests from a recorded exchange, keyed by method and exact params.

    ``state_getMetadata`` is answered with the recorded V14 metadata; ``extra`` adds answers a
    test states itself (kept apart from the recording).
    """

    def __init__(
        self, exchange: dict[str, dict[str, Any]], extra: dict[tuple[str, str], Any] | None = None
    ):
        super().__init__()
        self.exchange = exchange
        self.extra = extra or {}
        self.requests: list[tuple[str, list[Any]]] = []

    def rpc_request(self, payload: dict[str, Any], result_handler: Any = None) -> dict[str, Any]:
        method, params = payload["method"], payload["params"]
        self.requests.append((method, params))
        key = json.dumps(params)
        if (method, key) in self.extra:
            return {"jsonrpc": "2.0", "result": self.extra[(method, key)]}
        if method == "state_getMetadata":
            return {"jsonrpc": "2.0", "result": metadata_hex(14)}
        answers = self.exchange.get(method, {})
        if key in answers:
            return {"jsonrpc": "2.0", "result": answers[key]["result"]}
        raise UnrecordedRequest(f"{method} {key} is not in the recording")


def replay_substrate(
    extra: dict[tuple[str, str], Any] | None = None,
    exchange: str = "finney_netuid1_exchange",
) -> tuple[SubstrateInterface, ReplayTransport]:
    """A real ``SubstrateInterface`` whose transport replays the recorded finney exchange."""
    substrate = SubstrateInterface(
        url="http://recorded.invalid", ss58_format=42, auto_discover=False
    )
    transport = ReplayTransport(recorded_exchange(exchange), extra)
    substrate.transport = transport
    return substrate, transport
