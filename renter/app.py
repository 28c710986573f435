"""The proxy's HTTP face: OpenAI's ``/v1/completions``, ``/v1/chat/completions`` (SSE
passthrough) and ``/v1/models``, with optional bearer API keys.

The two completion routes are answered by :class:`ProxyApp` as bare ASGI, in front of the
FastAPI app: FastAPI's middleware stack and request wrapper cost more CPU per request than
the proxy's own work, and the proxy shares the machine with the miners it pays
(``latent bench proxy``). FastAPI keeps every other route, the lifespan, the error shapes and
the OpenAPI document, where the completion routes are declared with the same handler.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from chain.token import format_tokens
from protocol.openai import (
    ApiError,
    ChatBody,
    ChatCompletionChunk,
    CompletionBody,
    CompletionChunk,
)
from protocol.serving import (
    complete_openapi,
    completion_route,
    install_openai_errors,
    internal_error,
    read_body,
)
from renter.proxy import Kind, Relay, RenterProxy

log = logging.getLogger("latent.renter")

#: How the proxy names its 500s.
INTERNAL = "Internal proxy error"

#: What the proxy answers on its completion routes (OpenAPI).
COMPLETION_ERRORS = (400, 401, 402, 404, 408, 413, 429, 500, 502, 503)

_KINDS: dict[str, Kind] = {"/v1/completions": "text", "/v1/chat/completions": "chat"}


def _check_key(proxy: RenterProxy, request: Request) -> None:
    keys = proxy.config.api_keys
    if not keys:
        return
    header = request.headers.get("authorization", "")
    given = header[7:].strip() if header.lower().startswith("bearer ") else ""
    if not any(hmac.compare_digest(given.encode(), k.encode()) for k in keys):
        raise ApiError(
            401,
            "Incorrect API key provided; use one of the proxy's --api-key values as the "
            "client's api_key.",
            type="authentication_error",
            code="invalid_api_key",
        )


async def complete(proxy: RenterProxy, request: Request, kind: Kind) -> Response:
    """One completion request's response (raises :class:`ApiError`)."""
    _check_key(proxy, request)
    config = proxy.config
    raw = await read_body(
        request, limit=config.max_body_bytes, timeout_s=config.body_read_timeout_s
    )
    result = await proxy.handle(kind, raw)
    if isinstance(result, Relay):
        return Response(result.body, status_code=result.status, headers=result.headers)
    return StreamingResponse(
        result,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


class ProxyApp:
    """The proxy's ASGI app: the completion routes bare (module docs), the rest FastAPI."""

    def __init__(self, proxy: RenterProxy, api: FastAPI) -> None:
        self.proxy = proxy
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = _KINDS.get(scope["path"]) if scope["type"] == "http" else None
        if kind is None or scope["method"] != "POST":
            await self.api(scope, receive, send)
            return
        try:
            response = await complete(self.proxy, Request(scope, receive), kind)
        except ApiError as exc:
            response = exc.response()
        except Exception as exc:  # the FastAPI app's rule: OpenAI's shape, no traceback
            log.exception("internal proxy error")
            response = internal_error(INTERNAL, exc).response()
        await response(scope, receive, send)


def create_proxy_app(proxy: RenterProxy, *, manage: bool = True) -> ProxyApp:
    """The proxy's ASGI app; with ``manage`` its lifespan starts and stops ``proxy``."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if manage:
            await proxy.start()
        try:
            yield
        finally:
            if manage:
                await proxy.stop()

    app = FastAPI(title="Latent renter proxy", lifespan=lifespan, docs_url=None, redoc_url=None)

    install_openai_errors(app, internal=INTERNAL)

    @app.post(
        "/v1/completions",
        **completion_route(
            "text",
            summary="Create a completion, paid per token to the best miner",
            description="The miner's completion, with its receipt.",
            errors=COMPLETION_ERRORS,
        ),
    )
    async def completions(request: Request) -> Response:
        return await complete(proxy, request, "text")

    @app.post(
        "/v1/chat/completions",
        **completion_route(
            "chat",
            summary="Create a chat completion, paid per token to the best miner",
            description="The miner's chat completion, with its receipt.",
            errors=COMPLETION_ERRORS,
        ),
    )
    async def chat_completions(request: Request) -> Response:
        return await complete(proxy, request, "chat")

    @app.get("/v1/models")
    async def models(request: Request) -> dict[str, Any]:
        _check_key(proxy, request)
        await proxy.refresh()
        return {"object": "list", "data": model_cards(proxy)}

    @app.get("/v1/models/{model_id:path}")
    async def model(model_id: str, request: Request) -> dict[str, Any]:
        _check_key(proxy, request)
        await proxy.refresh()
        for card in model_cards(proxy):
            if card["id"] == model_id:
                return card
        raise ApiError(
            404, f"The model '{model_id}' does not exist.", param="model", code="model_not_found"
        )

    @app.get("/health")
    async def health() -> dict[str, Any]:
        overhead = sorted(proxy.overhead_s)
        return {
            "status": "ok",
            "miners": len(proxy.offers),
            "spent": str(proxy.spend.total),
            "overhead_ms_p50": (
                round(overhead[len(overhead) // 2] * 1000, 3) if overhead else None
            ),
        }

    complete_openapi(app, CompletionBody, ChatBody, CompletionChunk, ChatCompletionChunk)
    return ProxyApp(proxy, app)


def model_cards(proxy: RenterProxy) -> list[dict[str, Any]]:
    """One card per model: the cheapest miner's prices, the largest context, how many serve."""
    cards: dict[str, dict[str, Any]] = {}
    for offer in sorted(proxy.offers, key=lambda o: (o.price_completion, o.price_prompt)):
        card = cards.get(offer.model)
        if card is None:
            cards[offer.model] = {
                "id": offer.model,
                "object": "model",
                "created": 0,
                "owned_by": "latent",
                "context_length": offer.context_length,
                "pricing": {
                    "prompt": format_tokens(offer.price_prompt),
                    "completion": format_tokens(offer.price_completion),
                },
                "miners": 1,
            }
        else:
            card["miners"] += 1
            card["context_length"] = max(card["context_length"], offer.context_length)
    return list(cards.values())


__all__ = ["ProxyApp", "create_proxy_app", "model_cards"]
