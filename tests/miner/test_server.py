"""Miner HTTP server over a fake engine: validation, limits, overload, auth, payment, receipts.

The fake engine implements the server's ``Engine`` Protocol with a byte tokenizer and real
``InferenceProof`` objects; the server runs in-process under uvicorn on a free port.
The real-model round trips (openai client) live in test_server_openai.py.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_utils import keccak
from hypothesis import given
from hypothesis import strategies as st

from chain.receipts import Receipt, decode_receipt_header, output_hash, verify_receipt
from chain.vouchers import encode_voucher_header, sign_voucher
from miner.auth import ChallengeRejected, ValidatorAuth
from miner.config import AuthConfig, MinerConfig, PaymentConfig, PricingConfig, ServerConfig
from miner.payment import (
    ChannelReader,
    ChannelView,
    EscrowChannelReader,
    InMemoryChannels,
    PaymentGate,
)
from miner.server import create_app
from miner.types import GenerationRequest, GenerationResult, TokenDelta
from protocol.challenge import challenge_headers, new_nonce
from protocol.openai import ChatCompletionChunk, CompletionChunk
from protocol.proof import InferenceProof, chunk_topk
from protocol.serving import serve_in_loop

HOTKEY = Account.from_key("0x" + "a1" * 32)
RENTER = Account.from_key("0x" + "a2" * 32)
VALIDATOR = Account.from_key("0x" + "a3" * 32)
NOT_VALIDATOR = Account.from_key("0x" + "a4" * 32)
ESCROW = "0x" + "e5" * 20
TOKEN = "0x" + "70" * 20
CHAIN_ID = 31337
CHANNEL = b"\x42" * 32
PRICING = PricingConfig(per_prompt_token=2, per_completion_token=5)


class FakeEngine:
    """Byte tokenizer; output token i is ``(sum(prompt) + i) % 26 + 97`` (a letter)."""

    model_id = "fake-model"
    max_context = 64

    def __init__(self) -> None:
        self.hold: asyncio.Event | None = None  # set => generations wait for it
        self.token_delay_s = 0.0  # streaming pace
        self.cancelled_streams = 0
        self._depth = 0

    def encode_prompt(self, prompt: str) -> tuple[int, ...]:
        return tuple(prompt.encode())

    def encode_chat(self, messages: list[dict[str, str]]) -> tuple[int, ...]:
        return tuple("".join(f"<{m['role']}>{m['content']}" for m in messages).encode())

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    @property
    def queue_depth(self) -> int:
        return self._depth

    def _tokens(self, request: GenerationRequest) -> tuple[int, ...]:
        base = sum(request.prompt_token_ids)
        return tuple((base + i) % 26 + 97 for i in range(request.params.max_tokens))

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        self._depth += 1
        try:
            if self.hold is not None:
                await self.hold.wait()
            ids = self._tokens(request)
            return _result(request, ids)
        finally:
            self._depth -= 1

    async def stream(self, request: GenerationRequest) -> AsyncIterator[TokenDelta]:
        ids = self._tokens(request)
        finished = False
        try:
            for i, token in enumerate(ids):
                last = i == len(ids) - 1
                await asyncio.sleep(self.token_delay_s)
                yield TokenDelta(
                    text=chr(token),
                    token_ids=(token,),
                    result=_result(request, ids) if last else None,
                )
            finished = True
        finally:
            if not finished:
                self.cancelled_streams += 1


def _result(request: GenerationRequest, ids: tuple[int, ...]) -> GenerationResult:
    proof = InferenceProof(
        num_tokens=len(ids),
        chunk_commitments=(tuple(range(chunk_topk(len(ids)))),),
        token_logprobs=tuple(-0.5 for _ in ids),
    )
    return GenerationResult(
        prompt_token_ids=request.prompt_token_ids,
        output_token_ids=ids,
        text="".join(chr(t) for t in ids),
        finish_reason="length",
        proof=proof,
        time_to_first_token_s=0.001,
        elapsed_s=0.002,
    )


class Permits:
    def has_validator_permit(self, hotkey: str) -> bool:
        return hotkey == VALIDATOR.address


def _config(*, require_payment: bool = False, **server: Any) -> MinerConfig:
    return MinerConfig(
        model_path="unused",
        server=ServerConfig(**{"max_body_bytes": 4096, "body_read_timeout_s": 0.5, **server}),
        pricing=PRICING,
        payment=PaymentConfig(
            require_payment=require_payment,
            escrow_address=ESCROW,
            token_address=TOKEN,
            chain_id=CHAIN_ID,
        ),
    )


Scenario = Callable[[httpx.AsyncClient, str], Awaitable[None]]


def run_server(
    scenario: Scenario,
    *,
    engine: FakeEngine | None = None,
    require_payment: bool = False,
    channels: ChannelReader | None = None,
    **server: Any,
) -> None:
    """Start the app on a free port, run ``scenario(client, base_url)``, stop."""
    config = _config(require_payment=require_payment, **server)
    gate = PaymentGate(
        miner=HOTKEY.address,
        reader=channels or InMemoryChannels(),
        payment=config.payment,
        pricing=config.pricing,
    )
    auth = ValidatorAuth(miner=HOTKEY.address, permits=Permits(), config=AuthConfig())
    app = create_app(config, engine or FakeEngine(), hotkey=HOTKEY, gate=gate, auth=auth)

    async def main() -> None:
        async with serve_in_loop(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
            await scenario(client, url)

    asyncio.run(main())


def _body(**fields: Any) -> bytes:
    return json.dumps(
        {"model": "fake-model", "prompt": "hello", "max_tokens": 4, **fields}
    ).encode()


async def _post(
    client: httpx.AsyncClient, body: bytes, path: str = "/v1/completions", **headers: str
):
    return await client.post(
        path, content=body, headers={"Content-Type": "application/json", **headers}
    )


def _assert_openai_error(response: httpx.Response, status: int, param: str | None = None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    if param is not None:
        assert error["param"] == param
    return error


# ------------------------------------------------------------------ happy path + receipts


def test_completion_carries_a_verifiable_receipt_and_proof() -> None:
    async def scenario(client: httpx.AsyncClient, _: str) -> None:
        body = _body(temperature=0)
        response = await _post(client, body)
        assert response.status_code == 200, response.text
        data = response.json()
        assert data["object"] == "text_completion"
        assert data["usage"] == {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9}
        latent = data["latent"]
        ids = tuple(latent["output_token_ids"])
        assert data["choices"][0]["text"] == "".join(chr(t) for t in ids)
        proof = InferenceProof.from_bytes(base64.b64decode(latent["proof"]))
        receipt = Receipt.from_json(latent["receipt"])
        verify_receipt(
            receipt,
            miner=HOTKEY.address,
            chain_id=CHAIN_ID,
            request_hash=keccak(body),
            output_hash=output_hash(ids),
            proof_commitment=proof.commitment(),
        )
        assert receipt.price == PRICING.price(prompt_tokens=5, completion_tokens=4)
        assert decode_receipt_header(response.headers["X-Latent-Receipt"]) == receipt
        assert base64.b64decode(response.headers["X-Latent-Proof"]) == proof.to_bytes()

    run_server(scenario)


def test_models_and_health() -> None:
    async def scenario(client: httpx.AsyncClient, _: str) -> None:
        models = (await client.get("/v1/models")).json()
        assert [m["id"] for m in models["data"]] == ["fake-model"]
        health = (await client.get("/health")).json()
        assert health["status"] == "ok" and health["miner"] == HOTKEY.address
        _assert_openai_error(await client.get("/v1/models/other"), 404)
        _assert_openai_error(await client.get("/nowhere"), 404)

    run_server(scenario)


def _sse_events(text: str) -> list[str]:
    return [line[len("data: ") :] for line in text.split("\n\n") if line.startswith("data: ")]


def test_streaming_chat_matches_non_streaming_and_ends_with_done() -> None:
    async def scenario(client: httpx.AsyncClient, _: str) -> None:
        fields = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
        plain = (await _post(client, _body(**fields), "/v1/chat/completions")).json()
        body = _body(**fields, stream=True)
        streamed = await _post(client, body, "/v1/chat/completions")
        assert streamed.headers["content-type"].startswith("text/event-stream")
        events = _sse_events(streamed.text)
        assert events[-1] == "[DONE]"
        chunks = [json.loads(e) for e in events[:-1]]
        assert all(c["object"] == "chat.completion.chunk" for c in chunks)
        assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
        text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
        assert text == plain["choices"][0]["message"]["content"]
        final = chunks[-1]
        assert final["choices"][0]["finish_reason"] == "length"
        receipt = Receipt.from_json(final["latent"]["receipt"])
        verify_receipt(
            receipt,
            miner=HOTKEY.address,
            chain_id=CHAIN_ID,
            request_hash=keccak(body),
            output_hash=output_hash(plain["latent"]["output_token_ids"]),
        )

    run_server(scenario)


@pytest.mark.parametrize("path", ["/v1/completions", "/v1/chat/completions"])
def test_include_usage_sends_usage_in_its_own_last_chunk(path: str) -> None:
    chat = path == "/v1/chat/completions"
    chunk_model = ChatCompletionChunk if chat else CompletionChunk
    fields: dict[str, Any] = (
        {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 5} if chat else {}
    )

    async def scenario(client: httpx.AsyncClient, _: str) -> None:
        plain = (await _post(client, _body(**fields), path)).json()
        body = _body(**fields, stream=True, stream_options={"include_usage": True})
        events = _sse_events((await _post(client, body, path)).text)
        assert events[-1] == "[DONE]"
        chunks = [json.loads(e) for e in events[:-1]]
        for c in chunks:
            chunk_model.model_validate(c)
        *content, last = chunks
        # OpenAI's shape: every other chunk says usage null; the last has no choices.
        assert content and all("usage" in c and c["usage"] is None for c in content)
        assert all(len(c["choices"]) == 1 for c in content)
        assert content[-1]["choices"][0]["finish_reason"] == "length"
        assert all("latent" not in c for c in content)
        assert last["choices"] == []
        assert last["usage"] == plain["usage"]
        assert last["latent"]["output_token_ids"] == plain["latent"]["output_token_ids"]
        verify_receipt(
            Receipt.from_json(last["latent"]["receipt"]),
            miner=HOTKEY.address,
            chain_id=CHAIN_ID,
            request_hash=keccak(body),
            output_hash=output_hash(plain["latent"]["output_token_ids"]),
        )
        # Without the option: no usage key until the final chunk, which carries both.
        events = _sse_events((await _post(client, _body(**fields, stream=True), path)).text)
        chunks = [json.loads(e) for e in events[:-1]]
        assert all("usage" not in c for c in chunks[:-1])
        assert chunks[-1]["usage"] == plain["usage"] and len(chunks[-1]["choices"]) == 1
        # include_usage false behaves as if absent; stream_options without stream is a 400.
        off = _body(**fields, stream=True, stream_options={"include_usage": False})
        assert all(
            "usage" not in json.loads(e)
            for e in _sse_events((await _post(client, off, path)).text)[:-2]
        )
        error = _assert_openai_error(
            await _post(client, _body(**fields, stream_options={"include_usage": True}), path),
            400,
            "stream_options",
        )
        assert error["code"] == "invalid_value"

    run_server(scenario)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_tokens", "5"),
        ("temperature", "0.5"),
        ("top_p", "1"),
        ("prompt", [True]),
        ("prompt", [1, 2.5]),
        ("stream", "yes"),
        ("stream", 1),
        ("n", 1.5),
        ("n", True),
        ("seed", "7"),
        ("top_k", 2.5),
        ("stream_options", {"include_usage": "true"}),
        ("model", 7),
    ],
)
def test_wrong_json_types_are_400s_naming_the_field_never_coerced(field: str, value: Any) -> None:
    async def scenario(client: httpx.AsyncClient, _: str) -> None:
        fields = {field: value}
        if field == "stream_options":
            fields["stream"] = True
        error = _assert_openai_error(await _post(client, _body(**fields)), 400, field)
        assert error["type"] == "invalid_request_error"
        assert field in error["message"]
        # The chat route shares the schema.
        chat = _body(messages=[{"role": "user", "content": "hi"}], **fields)
        if field != "prompt":
            _assert_openai_error(await _post(client, chat, "/v1/chat/completions"), 400, field)
        # A JSON integer is still a number, and a whole number an integer (JSON Schema's
        # integer, as the published document says).
        assert (await _post(client, _body(temperature=1, top_p=1))).status_code == 200
        whole = await _post(client, _body(max_tokens=2.0, n=1.0, seed=3.0, prompt=[104.0]))
        assert whole.status_code == 200, whole.text
        assert len(whole.json()["latent"]["output_token_ids"]) == 2

    run_server(scenario)


def test_chat_message_fields_are_strict_too() -> None:
    async def scenario(client: httpx.AsyncClient, _: str) -> None:
        for messages in (
            [{"role": "user", "content": 5}],
            [{"role": 1, "content": "hi"}],
            [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}],
            [{"role": "user", "content": [{"type": "text", "text": 5}]}],
        ):
            body = _body(messages=messages)
            error = _assert_openai_error(
                await _post(client, body, "/v1/chat/completions"), 400, "messages"
            )
            assert "messages.0." in error["message"]

    run_server(scenario)


# ------------------------------------------------------------------ bad input


BAD_INPUTS: list[tuple[str, bytes, int, str | None]] = [
    ("invalid json", b'{"model": "fake-model", "prompt": ', 400, None),
    ("not an object", b"[1, 2]", 400, None),
    ("unknown model", _body(model="gpt-9"), 404, "model"),
    ("prompt beyond context", _body(prompt="x" * 64), 400, "prompt"),
    ("max_tokens too large", _body(max_tokens=60), 400, "max_tokens"),
    ("max_tokens zero", _body(max_tokens=0), 400, "max_tokens"),
    ("negative temperature", _body(temperature=-0.5), 400, "temperature"),
    ("top_p out of range", _body(top_p=1.5), 400, "top_p"),
    ("wrong type", _body(max_tokens="many"), 400, "max_tokens"),
    ("missing prompt", json.dumps({"model": "fake-model"}).encode(), 400, "prompt"),
    ("n > 1", _body(n=3), 400, "n"),
    ("token id out of vocab", _body(prompt=[1, -2]), 400, "prompt"),
    ("huge body", _body(prompt="x" * 10_000), 413, None),
    ("invalid utf-8", b'{"model": "\xff"}', 400, None),
    ("deeply nested json", b"[" * 1500 + b"]" * 1500, 400, None),
    ("NaN temperature", _body(temperature=float("nan")), 400, "temperature"),
    ("bad stop list", _body(stop=["a", "b", "c", "d", "e"]), 400, "stop"),
]


def test_bad_input_gets_openai_style_4xx_and_server_keeps_serving() -> None:
    async def scenario(client: httpx.AsyncClient, _: str) -> None:
        for name, body, status, param in BAD_INPUTS:
            response = await _post(client, body)
            assert response.status_code == status, (name, response.text)
            _assert_openai_error(response, status, param)
            ok = await _post(client, _body())
            assert ok.status_code == 200, name
        chat = await _post(client, _body(messages=[]), "/v1/chat/completions")
        _assert_openai_error(chat, 400, "messages")
        wizard = _body(messages=[{"role": "wizard", "content": "x"}])
        _assert_openai_error(await _post(client, wizard, "/v1/chat/completions"), 400)
        image = _body(messages=[{"role": "user", "content": [{"type": "image_url"}]}])
        _assert_openai_error(await _post(client, image, "/v1/chat/completions"), 400)

    run_server(scenario)


def test_huge_chunked_body_is_cut_off_at_the_limit() -> None:
    async def scenario(client: httpx.AsyncClient, _: str) -> None:
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(100):
                yield b"x" * 1024

        response = await client.post("/v1/completions", content=chunks())
        _assert_openai_error(response, 413)
        assert (await _post(client, _body())).status_code == 200

    run_server(scenario)


async def _raw_request(url: str, raw: bytes, *, wait: float) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(raw)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(65536), timeout=wait)
    finally:
        writer.close()


def test_slow_client_gets_408_and_others_are_served_meanwhile() -> None:
    async def scenario(client: httpx.AsyncClient, url: str) -> None:
        body = _body()
        head = (
            b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
        )
        slow = asyncio.create_task(_raw_request(url, head + body[:10], wait=5))
        started = time.monotonic()
        assert (await _post(client, _body())).status_code == 200
        raw = await slow
        assert time.monotonic() - started < 4
        status_line, _, rest = raw.partition(b"\r\n")
        assert b" 408 " in status_line, raw
        assert json.loads(rest.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "request_timeout"
        assert (await _post(client, _body())).status_code == 200

    run_server(scenario)


def test_overload_gets_429_with_retry_after() -> None:
    engine = FakeEngine()

    async def scenario(client: httpx.AsyncClient, _: str) -> None:
        engine.hold = asyncio.Event()
        held = [asyncio.create_task(_post(client, _body())) for _ in range(2)]
        while engine.queue_depth < 2:
            await asyncio.sleep(0.01)
        response = await _post(client, _body())
        _assert_openai_error(response, 429)
        assert response.headers["Retry-After"] == "3"
        engine.hold.set()
        assert [r.status_code for r in await asyncio.gather(*held)] == [200, 200]
        assert (await _post(client, _body())).status_code == 200

    run_server(scenario, engine=engine, max_queue_depth=2, retry_after_s=3)


# ------------------------------------------------------------------ validator challenges


def test_validator_challenge_is_free_and_nonces_are_single_use() -> None:
    async def scenario(client: httpx.AsyncClient, _: str) -> None:
        body = _body()
        headers = challenge_headers(VALIDATOR, miner=HOTKEY.address, body=body)
        response = await _post(client, body, **headers)
        assert response.status_code == 200, response.text
        assert response.json()["latent"]["access"] == "validator"
        assert Receipt.from_json(response.json()["latent"]["receipt"]).price == 0
        # replayed nonce
        error = _assert_openai_error(await _post(client, body, **headers), 401)
        assert error["code"] == "challenge_replayed"
        # signature over another body
        fresh = challenge_headers(VALIDATOR, miner=HOTKEY.address, body=body)
        error = _assert_openai_error(await _post(client, _body(max_tokens=3), **fresh), 401)
        assert error["code"] == "challenge_bad_signature"
        # signed for another miner
        elsewhere = challenge_headers(VALIDATOR, miner=RENTER.address, body=body)
        _assert_openai_error(await _post(client, body, **elsewhere), 401)
        # no permit
        outsider = challenge_headers(NOT_VALIDATOR, miner=HOTKEY.address, body=body)
        error = _assert_openai_error(await _post(client, body, **outsider), 403)
        assert error["code"] == "no_validator_permit"
        # stale timestamp
        old = challenge_headers(
            VALIDATOR, miner=HOTKEY.address, body=body, nonce=new_nonce(time.time() - 3600)
        )
        assert (await _post(client, body, **old)).json()["error"]["code"] == "challenge_stale"
        # half the headers
        partial = {"X-Latent-Validator": VALIDATOR.address}
        _assert_openai_error(await _post(client, body, **partial), 401)

    run_server(scenario, require_payment=True)


def test_nonce_memory_is_bounded_by_the_window() -> None:
    now = [10_000.0]
    auth = ValidatorAuth(
        miner=HOTKEY.address,
        permits=Permits(),
        config=AuthConfig(nonce_window_s=60, max_tracked_nonces=3),
        clock=lambda: now[0],
    )

    async def challenge() -> str:
        body = b"{}"
        headers = challenge_headers(
            VALIDATOR, miner=HOTKEY.address, body=body, nonce=new_nonce(now[0])
        )
        return await auth.authenticate(headers, body)

    async def scenario() -> None:
        for _ in range(3):
            assert await challenge() == VALIDATOR.address
        with pytest.raises(Exception, match="too many challenges"):
            await challenge()
        now[0] += 61  # the first three expire
        assert await challenge() == VALIDATOR.address
        assert auth.tracked_nonces == 1

    asyncio.run(scenario())


class SlowPermits:
    """A permit lookup that takes a while (a chain read), so concurrent copies of one
    challenge are all in flight at once."""

    def has_validator_permit(self, hotkey: str) -> bool:
        import time

        time.sleep(0.2)
        return hotkey == VALIDATOR.address


def test_a_challenge_replayed_concurrently_is_accepted_once() -> None:
    """A captured challenge sent ten times at once: the nonce is recorded before the permit
    lookup awaits, so exactly one copy gets free inference."""
    auth = ValidatorAuth(miner=HOTKEY.address, permits=SlowPermits(), config=AuthConfig())
    body = b'{"model": "tiny"}'
    headers = challenge_headers(VALIDATOR, miner=HOTKEY.address, body=body)

    async def attempt() -> str:
        try:
            return await auth.authenticate(headers, body)
        except ChallengeRejected as exc:
            return exc.code

    async def scenario() -> list[str]:
        return list(await asyncio.gather(*(attempt() for _ in range(10))))

    results = asyncio.run(scenario())
    assert results.count(VALIDATOR.address) == 1
    assert results.count("challenge_replayed") == 9


# ------------------------------------------------------------------ paid access over HTTP


def _voucher(amount: int, channel: bytes = CHANNEL) -> dict[str, str]:
    voucher = sign_voucher(
        RENTER, escrow=ESCROW, chain_id=CHAIN_ID, channel_id=channel, cumulative_amount=amount
    )
    return {"X-Latent-Voucher": encode_voucher_header(voucher)}


def _channels(**overrides: Any) -> InMemoryChannels:
    channels = InMemoryChannels()
    fields: dict[str, Any] = {
        "channel_id": CHANNEL,
        "renter": RENTER.address,
        "miner": HOTKEY.address,
        "token": TOKEN,
        "deposit": 10**6,
        "settled": 0,
        "session_key": None,
        "closing": False,
        "finalised": False,
        **overrides,
    }
    channels.put(ChannelView(**fields))
    return channels


def test_paid_requests_accepted_short_replayed_and_metrics() -> None:
    async def scenario(client: httpx.AsyncClient, _: str) -> None:
        missing = await _post(client, _body())
        assert _assert_openai_error(missing, 402)["code"] == "voucher_missing"
        quote = missing.json()["quote"]
        assert quote["max_price"] == str(PRICING.price(prompt_tokens=5, completion_tokens=4))

        first = await _post(client, _body(), **_voucher(0))
        assert first.status_code == 200, first.text
        price = int(first.json()["latent"]["receipt"]["price"])
        assert first.json()["latent"]["access"] == "paid"

        replay = await _post(client, _body(), **_voucher(0))
        error = _assert_openai_error(replay, 402)
        assert error["code"] == "voucher_short"
        assert replay.json()["quote"]["required_cumulative"] == str(price)

        short = await _post(client, _body(), **_voucher(price - 1))
        assert _assert_openai_error(short, 402)["code"] == "voucher_short"

        stream = await _post(client, _body(stream=True), **_voucher(price))
        assert stream.status_code == 200 and _sse_events(stream.text)[-1] == "[DONE]"

        metrics = (await client.get("/metrics")).text
        assert f"latent_miner_earnings_total {float(price)}" in metrics
        assert 'latent_miner_requests_total{endpoint="/v1/completions",status="402"} 3.0' in metrics
        assert 'latent_miner_paid_requests_total{access="paid"} 2.0' in metrics
        assert "latent_miner_completion_tokens_total 8.0" in metrics
        assert "latent_miner_request_latency_seconds_bucket" in metrics
        assert "latent_miner_time_to_first_token_seconds_count 2.0" in metrics

    run_server(scenario, require_payment=True, channels=_channels())


def test_voucher_for_another_miner_gets_402() -> None:
    async def scenario(client: httpx.AsyncClient, _: str) -> None:
        response = await _post(client, _body(), **_voucher(0))
        assert _assert_openai_error(response, 402)["code"] == "channel_wrong_miner"

    run_server(scenario, require_payment=True, channels=_channels(miner=RENTER.address))


def test_a_paid_request_while_the_chain_is_down_gets_503_with_a_message() -> None:
    """The voucher's channel cannot be read (nothing listens on the RPC port): the miner
    answers 503 ``chain_unavailable`` with Retry-After, not a 500, and serves nothing."""
    from web3 import Web3

    from chain.escrow import EscrowClient
    from chain.node import free_port

    dead = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{free_port()}"))
    engine = FakeEngine()

    async def scenario(client: httpx.AsyncClient, _: str) -> None:
        response = await _post(client, _body(), **_voucher(0))
        error = _assert_openai_error(response, 503)
        assert error["code"] == "chain_unavailable"
        assert error["type"] == "service_unavailable"
        assert "retry" in error["message"]
        assert response.headers["retry-after"] == "5"
        metrics = (await client.get("/metrics")).text
        assert "latent_miner_completion_tokens_total 0.0" in metrics

    run_server(
        scenario,
        engine=engine,
        require_payment=True,
        channels=EscrowChannelReader(EscrowClient(dead, ESCROW)),
    )


def test_bad_input_is_refused_before_the_voucher_is_used() -> None:
    async def scenario(client: httpx.AsyncClient, _: str) -> None:
        bad = await _post(client, _body(temperature=-1), **_voucher(0))
        _assert_openai_error(bad, 400, "temperature")
        assert (await _post(client, _body(), **_voucher(0))).status_code == 200

    run_server(scenario, require_payment=True, channels=_channels())


def test_client_leaving_a_stream_pays_for_delivered_tokens_and_frees_the_channel() -> None:
    engine = FakeEngine()
    engine.token_delay_s = 0.05

    async def scenario(client: httpx.AsyncClient, _: str) -> None:
        body = _body(max_tokens=40, prompt="hi", stream=True)
        async with client.stream(
            "POST", "/v1/completions", content=body, headers=_voucher(0)
        ) as response:
            assert response.status_code == 200
            seen = 0
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    seen += 1
                if seen == 3:
                    break  # leave mid-stream: the connection closes
        for _ in range(100):  # the server notices the disconnect
            if engine.cancelled_streams:
                break
            await asyncio.sleep(0.02)
        assert engine.cancelled_streams == 1
        replay = await _post(client, _body(prompt="hi", max_tokens=2), **_voucher(0))
        assert _assert_openai_error(replay, 402)["code"] == "voucher_short"  # not 409: freed
        owed = int(replay.json()["quote"]["required_cumulative"])
        delivered = (owed - 2 * PRICING.per_prompt_token) // PRICING.per_completion_token
        assert 3 <= delivered < 40
        assert (
            await _post(client, _body(prompt="hi", max_tokens=2), **_voucher(owed))
        ).status_code == 200

    run_server(scenario, engine=engine, require_payment=True, channels=_channels())


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
_FIELDS = ("prompt", "max_tokens", "temperature", "top_p", "top_k", "n", "stop", "seed", "messages")


@given(
    path=st.sampled_from(["/v1/completions", "/v1/chat/completions"]),
    model=st.sampled_from(["fake-model", "other", 7]),
    fields=st.dictionaries(st.sampled_from(_FIELDS), _json_values, max_size=5),
    good_prompt=st.booleans(),
)
def test_arbitrary_json_never_gets_a_5xx(
    path: str, model: object, fields: dict[str, Any], good_prompt: bool
) -> None:
    body: dict[str, Any] = {"model": model, **fields}
    if good_prompt:
        body.setdefault("prompt", "hi")
        body.setdefault("messages", [{"role": "user", "content": "hi"}])
    app = create_app(_config(), FakeEngine(), hotkey=HOTKEY)

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://miner") as client:
            return await client.post(path, content=json.dumps(body).encode())

    response = asyncio.run(post())
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        _assert_openai_error(response, response.status_code)
    else:
        assert "latent" in response.json()


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("logprobs", 2),
        ("top_logprobs", 3),
        ("echo", True),
        ("best_of", 3),
        ("tools", [{"type": "function", "function": {"name": "f"}}]),
        ("response_format", {"type": "json_object"}),
        ("logit_bias", {"50256": -100}),
    ],
)
def test_unsupported_openai_options_are_a_400_naming_them(option: str, value: Any) -> None:
    async def scenario(client: httpx.AsyncClient, _: str) -> None:
        error = _assert_openai_error(await _post(client, _body(**{option: value})), 400, option)
        assert error["code"] == "unsupported_parameter"
        # Their "off" values are fine.
        off = {"logprobs": None, "echo": False, "best_of": 1, "logit_bias": {}}
        assert (await _post(client, _body(**off))).status_code == 200

    run_server(scenario)


def test_max_tokens_below_one_is_an_invalid_value() -> None:
    async def scenario(client: httpx.AsyncClient, _: str) -> None:
        error = _assert_openai_error(await _post(client, _body(max_tokens=0)), 400, "max_tokens")
        assert error["code"] == "invalid_value"

    run_server(scenario)


def test_a_busy_channel_409_tells_stock_clients_not_to_retry() -> None:
    engine = FakeEngine()

    async def scenario(client: httpx.AsyncClient, _: str) -> None:
        engine.hold = asyncio.Event()
        held = asyncio.create_task(_post(client, _body(), **_voucher(0)))
        while engine.queue_depth < 1:
            await asyncio.sleep(0.01)
        busy = await _post(client, _body(), **_voucher(0))
        assert busy.status_code == 409, busy.text
        assert busy.headers["x-should-retry"] == "false"
        engine.hold.set()
        assert (await held).status_code == 200

    run_server(scenario, engine=engine, require_payment=True, channels=_channels())


def test_routing_errors_are_openai_shaped_and_405_keeps_allow() -> None:
    async def scenario(client: httpx.AsyncClient, _: str) -> None:
        wrong_method = await client.get("/v1/completions")
        _assert_openai_error(wrong_method, 405)
        assert wrong_method.headers["allow"] == "POST"
        _assert_openai_error(await client.get("/v1/nope"), 404)

    run_server(scenario)
