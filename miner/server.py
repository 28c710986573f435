"""HTTP router of a miner: the OpenAI-compatible routes, ``/health`` and ``/metrics``.

Three layers, after vLLM's protocol / serving / api_router split: the request and response
schemas are ``protocol.openai``'s pydantic models, ``miner.serving.MinerServer`` does what
each route means, and this module only maps routes to it and documents them, so the app's
``/openapi.json`` is complete: request bodies, response models, every error status a route
can answer (OpenAI's error body), ``text/event-stream`` for streams, the payment and
challenge headers, and ``/metrics`` as Prometheus text.

``create_app`` builds the FastAPI app around an already-loaded engine. Every 2xx completion
carries a top-level ``latent`` object (receipt, proof, output token ids, seed; the format is
``protocol.openai``'s) and the headers ``X-Latent-Receipt`` (base64url receipt) and, for
proofs up to ``proof_header_max_bytes``, ``X-Latent-Proof`` (base64). Errors use OpenAI's
body ``{"error": {"message", "type", "param", "code"}}``; the order of checks is
``miner.serving``'s.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from eth_account.signers.local import LocalAccount
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from miner.auth import ValidatorAuth
from miner.config import MinerConfig
from miner.metrics import MinerMetrics
from miner.payment import PaymentGate
from miner.serving import Engine, MinerHealth, MinerServer
from protocol.headers import NONCE_HEADER, SIGNATURE_HEADER, VALIDATOR_HEADER, VOUCHER_HEADER
from protocol.openai import (
    ApiError,
    ChatBody,
    ChatCompletionChunk,
    CompletionBody,
    CompletionChunk,
    ModelCard,
    ModelList,
)
from protocol.sampling import InvalidRequest
from protocol.serving import (
    complete_openapi,
    completion_route,
    error_responses,
    install_openai_errors,
)

__all__ = ["Engine", "MinerServer", "create_app"]

T = TypeVar("T")

ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
    Awaitable[None],
]

#: Statuses a completion route can answer besides 200 (``miner.serving``'s order of checks).
COMPLETION_ERRORS = (400, 401, 402, 403, 404, 408, 409, 413, 429, 500, 503)

#: The optional request headers of a paid or challenged completion.
_ACCESS_HEADERS: list[dict[str, Any]] = [
    {
        "name": VOUCHER_HEADER,
        "in": "header",
        "required": False,
        "description": "Voucher for the channel covering the work already delivered on it "
        "(chain.vouchers header encoding); required when the miner requires payment.",
        "schema": {"type": "string"},
    },
    *(
        {
            "name": name,
            "in": "header",
            "required": False,
            "description": "Free validator lane (protocol.challenge): all three or none.",
            "schema": {"type": "string"},
        }
        for name in (VALIDATOR_HEADER, NONCE_HEADER, SIGNATURE_HEADER)
    ),
]


class _MetricsMiddleware:
    """Counts every response by route and status and times it to the last byte."""

    def __init__(self, app: ASGIApp, metrics: MinerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        endpoint = path if path in _KNOWN_PATHS else "other"
        status = 500
        started = time.perf_counter()

        async def send_wrapper(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.requests.labels(endpoint=endpoint, status=str(status)).inc()
            self.metrics.latency.labels(endpoint=endpoint).observe(time.perf_counter() - started)


_KNOWN_PATHS = frozenset(
    {"/v1/completions", "/v1/chat/completions", "/v1/models", "/health", "/metrics"}
)


def create_app(
    config: MinerConfig,
    engine: Engine,
    *,
    hotkey: LocalAccount,
    gate: PaymentGate | None = None,
    auth: ValidatorAuth | None = None,
    metrics: MinerMetrics | None = None,
    manage_engine: bool = True,
) -> FastAPI:
    """The miner's FastAPI app. With ``manage_engine`` the app's lifespan starts/stops the engine."""
    metrics = metrics or MinerMetrics()
    server = MinerServer(
        config=config, engine=engine, hotkey=hotkey, gate=gate, auth=auth, metrics=metrics
    )
    metrics.watch_queue_depth(lambda: engine.queue_depth)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if manage_engine:
            await engine.start()
        try:
            yield
        finally:
            if manage_engine:
                await engine.stop()

    app = FastAPI(title="Latent miner", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.miner = server

    install_openai_errors(app)

    @app.exception_handler(InvalidRequest)
    async def _invalid_request(_: Request, exc: InvalidRequest) -> JSONResponse:
        code = "context_length_exceeded" if "context length" in exc.message else None
        return ApiError(400, exc.message, param=exc.param, code=code).response()

    @app.post(
        "/v1/completions",
        **completion_route(
            "text",
            summary="Create a completion",
            description="The completion, with its receipt and proof.",
            errors=COMPLETION_ERRORS,
            parameters=_ACCESS_HEADERS,
        ),
    )
    async def completions(request: Request) -> Response:
        return await server.complete(request, "text")

    @app.post(
        "/v1/chat/completions",
        **completion_route(
            "chat",
            summary="Create a chat completion",
            description="The chat completion, with its receipt.",
            errors=COMPLETION_ERRORS,
            parameters=_ACCESS_HEADERS,
        ),
    )
    async def chat_completions(request: Request) -> Response:
        return await server.complete(request, "chat")

    @app.get(
        "/v1/models",
        summary="List the served model",
        response_model=ModelList,
        responses=error_responses(500),
    )
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [server.model_card()]}

    @app.get(
        "/v1/models/{model_id:path}",
        summary="Describe a model",
        response_model=ModelCard,
        responses=error_responses(404, 500),
    )
    async def model(model_id: str) -> dict[str, Any]:
        return server.model(model_id)

    @app.get(
        "/health",
        summary="Liveness, model, queue depth",
        response_model=MinerHealth,
        responses=error_responses(500),
    )
    async def health() -> dict[str, Any]:
        return server.health()

    @app.get(
        "/metrics",
        summary="Prometheus metrics",
        response_class=Response,
        responses={
            200: {
                "description": "Prometheus text exposition format.",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
            **error_responses(500),
        },
    )
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    complete_openapi(app, CompletionBody, ChatBody, CompletionChunk, ChatCompletionChunk)
    app.add_middleware(_MetricsMiddleware, metrics=metrics)
    return app
