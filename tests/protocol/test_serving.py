"""Every role's uvicorn settings (``protocol.serving.uvicorn_config``)."""

from __future__ import annotations

import httpx
from starlette.types import Receive, Scope, Send

from protocol.serving import KEEP_ALIVE_S, uvicorn_config


async def _app(scope: Scope, receive: Receive, send: Send) -> None:  # pragma: no cover
    raise AssertionError("never served")


def test_servers_keep_idle_connections_longer_than_clients() -> None:
    """A server that closes an idle connection just as a client reuses it fails that request
    (``httpx.ReadError``); the client must always be the one to close."""
    config = uvicorn_config(_app)
    assert config.timeout_keep_alive == KEEP_ALIVE_S
    assert (httpx.Limits().keepalive_expiry or 0) < KEEP_ALIVE_S
    assert KEEP_ALIVE_S > 15  # aiohttp's connector default, the proxy's client to miners


def test_no_access_log_unless_asked() -> None:
    assert uvicorn_config(_app).access_log is False
    assert uvicorn_config(_app, access_log=True).access_log is True
