"""The proxy's ASGI face without a chain: the bare completion routes in front of FastAPI
answer like the FastAPI routes would (statuses, OpenAI error shape, API keys, no traceback),
and the OpenAPI document still declares them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any, cast

import httpx

from protocol.openai import ApiError
from renter.app import create_proxy_app
from renter.config import ProxyConfig
from renter.ledger import SpendMeter
from renter.proxy import Relay, RenterProxy


class _Proxy:
    """What the app uses of a :class:`RenterProxy`: its config, ``handle`` and the books."""

    def __init__(self, answer: Any, *, api_keys: tuple[str, ...] = (), **config: Any) -> None:
        self.config = ProxyConfig(api_keys=api_keys, **config)
        self.answer = answer
        self.seen: list[tuple[str, bytes]] = []
        self.offers: list[Any] = []
        self.overhead_s: list[float] = []
        self.spend = SpendMeter()

    async def handle(self, kind: str, raw: bytes) -> Any:
        self.seen.append((kind, raw))
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer


def _call(proxy: _Proxy, method: str, path: str, **kwargs: Any) -> httpx.Response:
    app = create_proxy_app(cast(RenterProxy, proxy), manage=False)

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://proxy") as client:
            return await client.request(method, path, **kwargs)

    return asyncio.run(go())


def test_completion_routes_relay_the_answer_and_pass_the_exact_body() -> None:
    answer = Relay(200, b'{"id":"cmpl-1"}', {"content-type": "application/json"})
    proxy = _Proxy(answer)
    body = b'{"model":"tiny","prompt":"hi"}'
    text = _call(proxy, "POST", "/v1/completions", content=body)
    chat = _call(proxy, "POST", "/v1/chat/completions", content=body)
    assert (text.status_code, text.content) == (200, b'{"id":"cmpl-1"}')
    assert chat.status_code == 200
    assert proxy.seen == [("text", body), ("chat", body)]


def test_streams_are_sent_as_server_sent_events() -> None:
    async def events() -> AsyncIterator[bytes]:
        yield b'data: {"x":1}\n\n'
        yield b"data: [DONE]\n\n"

    response = _call(_Proxy(events()), "POST", "/v1/completions", content=b"{}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.content == b'data: {"x":1}\n\ndata: [DONE]\n\n'


def test_errors_keep_openais_shape_and_headers() -> None:
    busy = ApiError(429, "Every miner is busy", code="miners_busy", headers={"Retry-After": "1"})
    response = _call(_Proxy(busy), "POST", "/v1/completions", content=b"{}")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
    assert response.json()["error"]["code"] == "miners_busy"


def test_an_unexpected_failure_is_a_500_without_traceback() -> None:
    response = _call(
        _Proxy(RuntimeError("secret detail")), "POST", "/v1/chat/completions", content=b"{}"
    )
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["type"] == "server_error"
    assert error["message"] == "Internal proxy error: RuntimeError"
    assert "secret detail" not in response.text


def test_an_oversized_body_is_refused_before_it_is_read_whole() -> None:
    proxy = _Proxy(Relay(200, b"{}"), max_body_bytes=64)
    fits = _call(proxy, "POST", "/v1/completions", content=b"x" * 64)
    assert fits.status_code == 200

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
        for _ in range(4):
            yield b"x" * 40

    for body in (b"x" * 65, chunks()):
        refused = _call(proxy, "POST", "/v1/chat/completions", content=body)
        assert refused.status_code == 413
        assert refused.json()["error"]["code"] == "request_too_large"
    assert len(proxy.seen) == 1  # refused bodies never reach the proxy


def test_api_keys_guard_the_bare_routes() -> None:
    proxy = _Proxy(Relay(200, b"{}"), api_keys=("k1",))
    refused = _call(proxy, "POST", "/v1/completions", content=b"{}")
    wrong = _call(
        proxy, "POST", "/v1/completions", content=b"{}", headers={"Authorization": "Bearer k2"}
    )
    right = _call(
        proxy, "POST", "/v1/completions", content=b"{}", headers={"Authorization": "Bearer k1"}
    )
    assert refused.status_code == wrong.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_api_key"
    assert right.status_code == 200
    assert len(proxy.seen) == 1  # refused requests never reach the proxy


def test_other_methods_and_routes_go_to_fastapi() -> None:
    proxy = _Proxy(Relay(200, b"{}"))
    wrong_method = _call(proxy, "GET", "/v1/completions")
    assert wrong_method.status_code == 405
    assert "POST" in wrong_method.headers["allow"]
    assert wrong_method.json()["error"]["message"]
    assert _call(proxy, "GET", "/health").json()["status"] == "ok"
    assert proxy.seen == []


def test_openapi_declares_the_completion_routes() -> None:
    document = _call(_Proxy(Relay(200, b"{}")), "GET", "/openapi.json").json()
    for path, body in (
        ("/v1/completions", "CompletionBody"),
        ("/v1/chat/completions", "ChatBody"),
    ):
        operation = document["paths"][path]["post"]
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        assert schema == {"$ref": f"#/components/schemas/{body}"}
        assert body in document["components"]["schemas"]
        assert {"400", "401", "402", "429", "502", "503"} <= set(operation["responses"])
    json.dumps(document)  # serialisable as served
