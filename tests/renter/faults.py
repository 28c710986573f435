"""Fault injection for the proxy tests: a TCP relay in front of a miner that can die like a
killed process (connection aborted before answering, or mid-stream), and an ASGI wrapper
that corrupts the miner's receipt signature."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any, Literal
from urllib.parse import urlsplit

Mode = Literal["pass", "drop_request", "cut_stream"]


class KillableRelay:
    """Forwards TCP to a miner. ``mode``: ``pass``; ``drop_request`` aborts the connection as
    soon as a request arrives (the miner "died" before answering); ``cut_stream`` forwards
    the answer up to its ``cut_after_events``-th SSE event, then aborts (died mid-stream)."""

    def __init__(self, target_url: str) -> None:
        parts = urlsplit(target_url)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 80
        self.mode: Mode = "pass"
        self.cut_after_events = 3
        self.cuts = 0
        self._server: asyncio.Server | None = None

    @contextlib.asynccontextmanager
    async def serve(self) -> AsyncIterator[str]:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            self._server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(self._host, self._port)
        except OSError:
            writer.transport.abort()
            return

        async def client_to_miner() -> None:
            while data := await reader.read(65536):
                if self.mode == "drop_request":
                    self.cuts += 1
                    writer.transport.abort()
                    up_writer.transport.abort()
                    return
                up_writer.write(data)
                await up_writer.drain()
            up_writer.close()

        async def miner_to_client() -> None:
            events = 0
            while data := await up_reader.read(65536):
                if self.mode == "cut_stream" and b"data: " in data:
                    kept = b""
                    rest = data
                    while b"data: " in rest:
                        before, rest = rest.split(b"data: ", 1)
                        kept += before
                        events += 1
                        if events > self.cut_after_events:
                            writer.write(kept)
                            await writer.drain()
                            self.cuts += 1
                            writer.transport.abort()
                            up_writer.transport.abort()
                            return
                        kept += b"data: "
                    data = kept + rest
                writer.write(data)
                await writer.drain()
            writer.close()

        with contextlib.suppress(OSError, ConnectionError):
            await asyncio.gather(client_to_miner(), miner_to_client())


class ReceiptForger:
    """ASGI wrapper: while ``forge`` is set, flips one hex digit of the receipt signature in
    the miner's answers (plain and streamed), as a miner signing with the wrong key would;
    while ``fail`` is set, answers completions with a 500 instead; ``delay_s`` makes it slow."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.forge = False
        self.forged = 0
        self.fail = False
        self.failed = 0
        #: Seconds to wait before answering a completion (a slow miner).
        self.delay_s = 0.0

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        async def tampering_send(message: Any) -> None:
            if self.forge and message["type"] == "http.response.body":
                body: bytes = message.get("body", b"")
                marker = b'"signature":"0x'
                at = body.rfind(marker)
                if at >= 0:
                    i = at + len(marker) + 10
                    digit = b"1" if body[i : i + 1] != b"1" else b"2"
                    message = {**message, "body": body[:i] + digit + body[i + 1 :]}
                    self.forged += 1
            await send(message)

        completion = scope["type"] == "http" and scope["path"].endswith("completions")
        if completion and self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.fail and completion:
            self.failed += 1
            await send({"type": "http.response.start", "status": 500, "headers": []})
            await send({"type": "http.response.body", "body": b"{}"})
            return
        await self.app(scope, receive, tampering_send)


__all__ = ["KillableRelay", "ReceiptForger"]
