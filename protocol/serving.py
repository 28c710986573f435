"""Every role's HTTP plumbing: serve an ASGI app inside the running event loop, answer errors
in OpenAI's shape, and publish a complete OpenAPI document.

Routes that read their body themselves (the miner hashes the exact bytes and limits their
size before parsing) declare it with :func:`json_body`; :func:`error_responses` documents
each error status with OpenAI's error schema; :func:`complete_openapi` adds the models those
declarations name by reference to the document's components.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Coroutine, Iterable
from contextlib import asynccontextmanager
from typing import Any, Literal, TypeVar

import uvicorn
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp

from chain.errors import LatentError
from protocol.openai import (
    ApiError,
    ChatBody,
    ChatCompletion,
    ChatCompletionChunk,
    Completion,
    CompletionBody,
    CompletionChunk,
    ErrorResponse,
)

__all__ = [
    "KEEP_ALIVE_S",
    "complete_openapi",
    "completion_route",
    "error_responses",
    "event_stream_response",
    "install_openai_errors",
    "internal_error",
    "json_body",
    "read_body",
    "run_async",
    "schema_ref",
    "serve_in_loop",
    "uvicorn_config",
]

T = TypeVar("T")


#: Seconds an idle keep-alive connection stays open: above the clients' own idle limits
#: (httpx 5 s, aiohttp 15 s), so the client always closes first. uvicorn's default, 5 s,
#: equals httpx's: a server closing an idle connection just as the client reuses it fails
#: that request (``httpx.ReadError``, aiohttp's ``ServerDisconnectedError``). No longer than
#: that: a public miner holds every idle connection this long.
KEEP_ALIVE_S = 20


def uvicorn_config(
    app: ASGIApp,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    log_level: str = "warning",
    access_log: bool = False,
) -> uvicorn.Config:
    """Every role's uvicorn settings: lifespan on, :data:`KEEP_ALIVE_S`, and no access log
    unless asked (a log line per request is CPU on the request path; ``/metrics`` counts)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=access_log,
        lifespan="on",
        timeout_keep_alive=KEEP_ALIVE_S,
    )


@asynccontextmanager
async def serve_in_loop(
    app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0
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
    server = uvicorn.Server(uvicorn_config(app))
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
        return internal_error(internal, exc).response()


def internal_error(internal: str, exc: Exception) -> ApiError:
    """The 500 for an unexpected exception: named ``internal`` and the exception's type, no
    message and no traceback (they may hold secrets)."""
    return ApiError(500, f"{internal}: {type(exc).__name__}", type="server_error")


async def read_body(request: Request, *, limit: int, timeout_s: float) -> bytes:
    """A route's request body: 413 once it (or its declared ``Content-Length``) passes
    ``limit`` bytes, before more is buffered; 408 when it takes over ``timeout_s``; 400 for
    a client that left mid-body. Raises :class:`ApiError`."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            declared_size = int(declared)
        except ValueError:
            raise ApiError(400, "Content-Length is not an integer.") from None
        if declared_size > limit:
            raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                chunks.append(chunk)
    except TimeoutError:
        raise ApiError(
            408, f"Request body not received within {timeout_s:g} s.", code="request_timeout"
        ) from None
    except ClientDisconnect:
        raise ApiError(400, "Client disconnected while sending the body.") from None
    return b"".join(chunks)


def _too_large(limit: int) -> ApiError:
    return ApiError(
        413,
        f"Request body larger than {limit} bytes; shorten the prompt.",
        code="request_too_large",
    )


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


_COMPONENTS = "#/components/schemas/"

#: What each error status means on the subnet's OpenAI endpoints (OpenAPI descriptions).
ERROR_MEANINGS: dict[int, str] = {
    400: "Invalid request: JSON, schema (strict types), option, context or max_tokens.",
    401: "Authentication failed (API key, or a malformed / stale / replayed challenge).",
    402: "Payment required: no, short or invalid voucher; the body carries a price `quote`.",
    403: "Forbidden: the challenging hotkey holds no validator permit.",
    404: "Unknown model or route.",
    405: "Method not allowed (the `Allow` header lists the allowed ones).",
    408: "The request body was not received in time.",
    409: "The payment channel already has a request in flight.",
    413: "Request body too large.",
    429: "Overloaded, rate-limited or over a spending cap; see `Retry-After`.",
    500: "Internal error (no traceback is sent).",
    502: "Every upstream miner failed.",
    503: "Unavailable for now: no miner serves the model (proxy), or the miner's chain node "
    "is down; see `Retry-After`.",
}


def schema_ref(model: type[BaseModel]) -> dict[str, str]:
    """A JSON-schema reference to ``model`` in the document's components."""
    return {"$ref": _COMPONENTS + model.__name__}


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` declaring a required JSON request body of ``model``."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema_ref(model)}},
        }
    }


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses`` entries documenting each status with OpenAI's error body."""
    return {
        status: {"model": ErrorResponse, "description": ERROR_MEANINGS[status]}
        for status in statuses
    }


def event_stream_response(
    model: type[BaseModel], chunk: type[BaseModel], description: str
) -> dict[int | str, dict[str, Any]]:
    """A 200 that is ``model`` as JSON, or, when the request asks to stream, server-sent
    events: the media type's ``schema`` describes one event (OpenAPI before 3.2; 3.2 names it
    ``itemSchema``), whose ``data`` is a ``chunk`` as JSON, OpenAI's error body (a failure
    after the headers went out), or the final ``[DONE]``."""
    payload = {"anyOf": [schema_ref(chunk), schema_ref(ErrorResponse)]}
    event = {
        "type": "object",
        "required": ["data"],
        "properties": {
            "data": {
                "anyOf": [
                    {"const": "[DONE]"},
                    {
                        "type": "string",
                        "contentMediaType": "application/json",
                        "contentSchema": payload,
                    },
                ]
            }
        },
    }
    return {
        200: {
            "model": model,
            "description": description,
            "content": {"text/event-stream": {"schema": event}},
        }
    }


def completion_route(
    kind: Literal["text", "chat"],
    *,
    summary: str,
    description: str,
    errors: Iterable[int],
    parameters: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """``app.post`` keyword arguments documenting an OpenAI completion route (``text``:
    ``/v1/completions``, ``chat``: ``/v1/chat/completions``): its JSON body, its answer as JSON
    or server-sent events (``description``), each error status, and extra ``parameters``
    (headers). The route reads its body itself; :func:`complete_openapi` adds the models."""
    body, answer, chunk = (
        (CompletionBody, Completion, CompletionChunk)
        if kind == "text"
        else (ChatBody, ChatCompletion, ChatCompletionChunk)
    )
    extra = json_body(body)
    if parameters:
        extra = {"parameters": parameters, **extra}
    return {
        "summary": summary,
        "response_class": JSONResponse,
        "responses": {
            **event_stream_response(answer, chunk, description),
            **error_responses(*errors),
        },
        "openapi_extra": extra,
    }


def complete_openapi(app: FastAPI, *models: type[BaseModel]) -> None:
    """Make ``app.openapi()`` include ``models`` (and the models they use) among its
    component schemas, for the references :func:`json_body` and
    :func:`event_stream_response` write."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            separate_input_output_schemas=False,
        )
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        # These apps read their inputs themselves (FastAPI validates nothing but plain
        # string path parameters), so FastAPI's automatic 422 is never answered.
        for path in document.get("paths", {}).values():
            for operation in path.values():
                operation.get("responses", {}).pop("422", None)
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        for model in models:
            schema = model.model_json_schema(ref_template=_COMPONENTS + "{model}")
            for name, definition in schema.pop("$defs", {}).items():
                schemas.setdefault(name, definition)
            schemas.setdefault(model.__name__, schema)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]
