"""The miner's published OpenAPI document, checked by schemathesis against the real miner.

The app (tiny model, real engine) runs under uvicorn on a free port in a thread of its own;
schemathesis reads ``/openapi.json`` from it and, per operation, generates requests that fit
the document (positive) and that break it (negative: wrong types, missing fields, ...). Each
answer must be no 5xx, a status the document lists for that operation, a body and content
type matching the documented schema for that status, and schema-breaking requests must be
refused with a 4xx (the strict request types).

Paid routes. A voucher is an EIP-712 signature by the channel's renter over a cumulative
amount that must cover the work already delivered on the channel; schemathesis cannot make
one, and a hook signing valid vouchers would test our signer rather than the document. So
the test runs the document twice, against two miners built from the same code:

- ``open``: payment not required (a supported deployment mode: ``require_payment=False``),
  so generated requests reach the engine and the 200 answers (completion, chat, model card,
  health, metrics) are checked against their schemas;
- ``paid``: payment required with an empty channel book, so every completion request is
  either refused for its input (400/404/413) or, unpaid or carrying a generated voucher
  header, answered 402 with OpenAI's error body and a quote; the challenge headers the
  document declares get 401/403.

The paid 200 path (real vouchers, receipts, the credit rule) is covered by test_server.py
and test_server_openai.py. Streams: the document declares ``text/event-stream`` for the 200
of both completion routes with the schema of one event (its ``data``: a chunk as JSON, an
error body, or ``[DONE]``), and schemathesis validates every event of every streamed answer.

Valid cases are generated at random and half of them are then aimed at the engine (the
served model name, ``max_tokens`` within the cap, no challenge headers; ``_aim_at_the_engine``)
so that 200s are common; they stay valid. Negative cases are sent as generated.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests
import schemathesis
from eth_account import Account
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from miner.auth import ValidatorAuth
from miner.config import AuthConfig, MinerConfig, PaymentConfig, PricingConfig, ServerConfig
from miner.engine import InferenceEngine
from miner.payment import InMemoryChannels, PaymentGate
from miner.server import create_app
from protocol.headers import NONCE_HEADER, SIGNATURE_HEADER, VALIDATOR_HEADER
from protocol.serving import serve_in_loop

HOTKEY = Account.from_key("0x" + "c1" * 32)
VALIDATOR = Account.from_key("0x" + "c3" * 32)
MODEL = "tiny"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
#: Examples per operation and generation mode; completions are where the logic is.
EXAMPLES = {"/v1/completions": 40, "/v1/chat/completions": 40}
OTHER_EXAMPLES = 5


class Permits:
    def has_validator_permit(self, hotkey: str) -> bool:
        return hotkey == VALIDATOR.address


def _app(engine: InferenceEngine, *, paid: bool) -> FastAPI:
    config = MinerConfig(
        model_path="unused",
        # A small generation cap keeps each 200 to a few decode steps on CPU.
        server=ServerConfig(max_tokens_limit=16, body_read_timeout_s=5.0),
        pricing=PricingConfig(per_prompt_token=2, per_completion_token=5),
        payment=PaymentConfig(
            require_payment=paid,
            escrow_address="0x" + "e5" * 20,
            token_address="0x" + "70" * 20,
            chain_id=31337,
        ),
    )
    gate = PaymentGate(
        miner=HOTKEY.address,
        reader=InMemoryChannels(),
        payment=config.payment,
        pricing=config.pricing,
    )
    auth = ValidatorAuth(miner=HOTKEY.address, permits=Permits(), config=AuthConfig())
    return create_app(config, engine, hotkey=HOTKEY, gate=gate, auth=auth)


@contextmanager
def _served(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` (lifespan included: it starts and stops the engine) under uvicorn in a
    thread with its own event loop; yields the base URL."""
    started: queue.Queue[str | BaseException] = queue.Queue()
    stop = threading.Event()

    async def main() -> None:
        async with serve_in_loop(app) as url:
            started.put(url)
            while not stop.is_set():
                await asyncio.sleep(0.02)

    def run() -> None:
        try:
            asyncio.run(main())
        except Exception as exc:  # noqa: BLE001 - re-raised in the test thread
            started.put(exc)

    thread = threading.Thread(target=run, name="miner-under-test", daemon=True)
    thread.start()
    first = started.get(timeout=60)
    if isinstance(first, BaseException):
        raise first
    try:
        yield first
    finally:
        stop.set()
        thread.join(timeout=60)


@pytest.mark.parametrize("lane", ["open", "paid"])
def test_miner_answers_as_its_openapi_document_says(engine: InferenceEngine, lane: str) -> None:
    statuses: dict[str, set[int]] = {}
    started = time.perf_counter()
    with _served(_app(engine, paid=lane == "paid")) as url, requests.Session() as session:
        document = session.get(url + "/openapi.json", timeout=10).json()
        schema = schemathesis.openapi.from_dict(document)
        operations = [result.ok() for result in schema.get_all_operations()]
        assert {op.label for op in operations} == {
            "POST /v1/completions",
            "POST /v1/chat/completions",
            "GET /v1/models",
            "GET /v1/models/{model_id}",
            "GET /health",
            "GET /metrics",
        }
        for operation in operations:
            seen = statuses.setdefault(operation.label, set())
            _fuzz(operation, schemathesis.GenerationMode.POSITIVE, url, session, seen)
            if _can_be_broken(operation.definition.raw):
                _fuzz(operation, schemathesis.GenerationMode.NEGATIVE, url, session, seen)
    elapsed = time.perf_counter() - started
    print(f"schemathesis, {lane} miner: {elapsed:.1f} s, statuses {statuses}")

    # The runs reached what they are meant to reach (so a document or app that refused
    # everything would not pass by checking nothing).
    completion = statuses["POST /v1/completions"] | statuses["POST /v1/chat/completions"]
    assert 400 in completion
    if lane == "open":
        assert 200 in statuses["POST /v1/completions"]
        assert 200 in statuses["POST /v1/chat/completions"]
        assert 404 in statuses["GET /v1/models/{model_id}"]
    else:
        assert 402 in completion
        assert 200 not in completion
    assert statuses["GET /metrics"] == {200}
    assert statuses["GET /v1/models/{model_id}"] == {200, 404}


def _fuzz(
    operation: Any,
    mode: schemathesis.GenerationMode,
    url: str,
    session: requests.Session,
    seen: set[int],
) -> None:
    """Call the miner with generated requests of ``mode`` and check every answer."""

    @settings(
        max_examples=EXAMPLES.get(operation.path, OTHER_EXAMPLES),
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode), served_model=st.booleans())
    def check(case: Any, served_model: bool) -> None:
        if mode.is_positive and served_model:
            _aim_at_the_engine(case)
        response = case.call(base_url=url, session=session, timeout=30)
        seen.add(response.status_code)
        case.validate_response(response, checks=CHECKS)

    check()


def _aim_at_the_engine(case: Any) -> None:
    """Keep a valid case valid but make it one the miner serves: random data almost never
    names the served model, and often carries challenge headers (401), a ``max_tokens``
    above the generation cap or ``stream_options`` without ``stream`` (400). Negative cases
    are never touched (this could repair the very field that was broken)."""
    if case.path_parameters and "model_id" in case.path_parameters:
        case.path_parameters["model_id"] = MODEL
    if not isinstance(case.body, dict):
        return
    case.body["model"] = MODEL
    for name in ("max_tokens", "max_completion_tokens"):
        if isinstance(case.body.get(name), int | float):
            case.body[name] = min(case.body[name], 4)
    if not case.body.get("stream"):
        case.body.pop("stream_options", None)
    for name in (VALIDATOR_HEADER, NONCE_HEADER, SIGNATURE_HEADER):
        if case.headers:
            case.headers.pop(name, None)


def _can_be_broken(operation: dict[str, Any]) -> bool:
    """Whether negative generation has anything to break: a JSON body (the other inputs are
    free-form strings: a path segment, optional headers)."""
    return "requestBody" in operation


def test_document_declares_bodies_streams_headers_errors_and_metrics() -> None:
    """What schemathesis cannot see missing: the document is complete."""

    class Engine:
        model_id = "m"
        max_context = 64
        queue_depth = 0

    app = create_app(
        MinerConfig(model_path="unused", payment=PaymentConfig(require_payment=False)),
        Engine(),  # type: ignore[arg-type]
        hotkey=HOTKEY,
    )
    document = app.openapi()
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas  # FastAPI's 422 is never answered
    for path, body, answer, chunk in (
        ("/v1/completions", "CompletionBody", "Completion", "CompletionChunk"),
        ("/v1/chat/completions", "ChatBody", "ChatCompletion", "ChatCompletionChunk"),
    ):
        operation = document["paths"][path]["post"]
        request = operation["requestBody"]
        assert request["required"] is True
        assert request["content"]["application/json"]["schema"]["$ref"].endswith("/" + body)
        ok = operation["responses"]["200"]["content"]
        assert ok["application/json"]["schema"]["$ref"].endswith("/" + answer)
        data = ok["text/event-stream"]["schema"]["properties"]["data"]["anyOf"]
        assert data[0] == {"const": "[DONE]"}
        assert data[1]["contentMediaType"] == "application/json"
        refs = [r["$ref"].rsplit("/", 1)[1] for r in data[1]["contentSchema"]["anyOf"]]
        assert refs == [chunk, "ErrorResponse"]
        assert {"400", "401", "402", "403", "404", "408", "409", "413", "429", "500"} <= set(
            operation["responses"]
        )
        assert "422" not in operation["responses"]
        error = operation["responses"]["402"]["content"]["application/json"]["schema"]
        assert error["$ref"].endswith("/ErrorResponse")
        headers = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
        assert headers == {
            "X-Latent-Voucher",
            "X-Latent-Validator",
            "X-Latent-Nonce",
            "X-Latent-Signature",
        }
        for name in (body, answer, chunk, "LatentObject", "Usage", "StreamOptions"):
            assert name in schemas
    assert set(schemas["ErrorResponse"]["properties"]) == {"error"}
    assert set(schemas["ErrorDetail"]["required"]) == {"message", "type", "param", "code"}
    metrics = document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert set(metrics) == {"text/plain"}
    assert set(document["paths"]) == {
        "/v1/completions",
        "/v1/chat/completions",
        "/v1/models",
        "/v1/models/{model_id}",
        "/health",
        "/metrics",
    }
    card = document["paths"]["/v1/models/{model_id}"]["get"]["responses"]
    assert card["404"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
