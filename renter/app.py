"""The proxy's HTTP face: OpenAI's ``/v1/completions``, ``/v1/chat/completions`` (SSE
passthrough) and ``/v1/models``, with optional bearer API keys."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse

from chain.token import format_tokens
from protocol.openai import ApiError
from protocol.serving import install_openai_errors
from renter.proxy import Kind, Relay, RenterProxy


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


def create_proxy_app(proxy: RenterProxy, *, manage: bool = True) -> FastAPI:
    """The proxy's FastAPI app; with ``manage`` its lifespan starts and stops ``proxy``."""

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
    app.state.proxy = proxy

    install_openai_errors(app, internal="Internal proxy error")

    async def complete(request: Request, kind: Kind) -> Response:
        _check_key(proxy, request)
        raw = await request.body()
        result = await proxy.handle(kind, raw)
        if isinstance(result, Relay):
            return Response(result.body, status_code=result.status, headers=result.headers)
        return StreamingResponse(
            result,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.post("/v1/completions")
    async def completions(request: Request) -> Response:
        return await complete(request, "text")

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        return await complete(request, "chat")

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

    return app


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


__all__ = ["create_proxy_app", "model_cards"]
