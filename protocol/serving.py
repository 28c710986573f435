"""Serve an ASGI app inside the running event loop (every role's HTTP endpoint)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from chain.errors import LatentError
from protocol.openai import ApiError

__all__ = ["install_openai_errors", "run_async", "serve_in_loop"]

T = TypeVar("T")


@asynccontextmanager
async def serve_in_loop(
    app: FastAPI, *, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn inside the running event loop; yields the base URL.

    Binds the socket first (``port=0`` picks a free one), so the URL is known before the
    server starts. Miners, validators and the renter proxy serve this way.
    """
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted connections only for
    # sockets that say so, and without it every response waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    bound_port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()  # re-raise the startup failure
                raise LatentError("the HTTP server stopped during startup")
            await asyncio.sleep(0.01)
        yield f"http://{host}:{bound_port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


def install_openai_errors(app: FastAPI, *, internal: str = "Internal error") -> None:
    """Answer every error of ``app`` in OpenAI's shape: an :class:`ApiError` as itself, a
    routing error (404, 405 with its ``Allow`` header) with its status and headers, and any
    other exception as a 500 ``server_error`` named ``internal`` (no traceback leaks)."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        return ApiError(exc.status_code, str(exc.detail), headers=headers).response()

    @app.exception_handler(Exception)
    async def _internal_error(_: Request, exc: Exception) -> JSONResponse:
        return ApiError(500, f"{internal}: {type(exc).__name__}", type="server_error").response()


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on uvloop's event loop when uvloop is installed (the loop uvicorn
    itself would pick), else on the standard loop. Every role's command and the
    benchmarks use it, so a benchmark measures the loop the role runs on."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        factory = None
    else:
        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
