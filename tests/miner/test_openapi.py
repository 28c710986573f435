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
of both completion routes; schemathesis checks the content type, and the chunk schemas are
checked against real streams in test_server.py.
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
        # A generated model name is never the served one (404): half the valid requests
        # name it, so they reach the engine. Negative cases are left as generated (naming
        # the model could repair the very field that was broken).
        if mode.is_positive and served_model and isinstance(case.body, dict):
            case.body["model"] = MODEL
        response = case.call(base_url=url, session=session, timeout=30)
        seen.add(response.status_code)
        case.validate_response(response, checks=CHECKS)

    check()


def _can_be_broken(operation: dict[str, Any]) -> bool:
    """Whether negative generation has anything to break: a JSON body (the other inputs are
    free-form strings: a path segment, optional headers)."""
    return "requestBody" in operation
