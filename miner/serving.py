"""Serving layer of the miner: what each OpenAI route does, between the HTTP router
(``miner.server``) and the engine.

``MinerServer`` reads and validates a request (``protocol.openai`` schemas, strict types),
authorises it (validator challenge, voucher, or open access), runs the engine and writes the
answer: JSON, or server-sent events in OpenAI's chunk format. Request handling order: body
(413 too large, 408 too slow) -> JSON and schema (400) -> model (404) -> context and
max_tokens (400) -> overload (429 + Retry-After) -> validator challenge (401/403) or voucher
(402 with a quote, 409 when the channel is busy) -> generation. Input is validated before
payment, so no voucher is consumed by a request that cannot run.

Streams: each chunk carries text; the last one before ``data: [DONE]`` carries
``finish_reason``, ``usage`` and the ``latent`` object. With ``stream_options:
{"include_usage": true}`` (OpenAI's shape) the finishing chunk carries ``usage: null`` like
every other chunk, and a last chunk of its own carries ``choices: []``, ``usage`` and
``latent``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from chain.errors import LatentError
from chain.receipts import Receipt, encode_receipt_header, output_hash, sign_receipt
from chain.receipts import request_hash as hash_request_body
from chain.token import format_tokens
from miner.auth import ChallengeRejected, ValidatorAuth
from miner.config import MinerConfig
from miner.metrics import MinerMetrics
from miner.payment import PaymentGate, PaymentRequired, PaymentTicket
from miner.types import GenerationRequest, GenerationResult, TokenDelta
from protocol.challenge import has_challenge_headers
from protocol.headers import PROOF_HEADER, RECEIPT_HEADER, VOUCHER_HEADER
from protocol.openai import (
    ApiError,
    ChatBody,
    CompletionBody,
    LatentField,
    SamplingBody,
    chat_messages,
    load_json_object,
    parse_request,
    requested_max_tokens,
    sampling_params,
    unsupported_option,
)
from protocol.sampling import InvalidRequest, SamplingParams
from protocol.serving import read_body

__all__ = ["Engine", "MinerHealth", "MinerServer"]


class Engine(Protocol):
    """What the server needs from ``miner.engine.InferenceEngine`` (fakes implement it too)."""

    model_id: str
    max_context: int

    def encode_prompt(self, prompt: str) -> tuple[int, ...]: ...

    def encode_chat(self, messages: list[dict[str, str]]) -> tuple[int, ...]: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def generate(self, request: GenerationRequest) -> GenerationResult: ...

    def stream(self, request: GenerationRequest) -> AsyncIterator[TokenDelta]: ...

    @property
    def queue_depth(self) -> int: ...


class MinerHealth(BaseModel):
    """``GET /health``."""

    status: Literal["ok"]
    model: str
    miner: str = Field(description="The miner's hotkey address.")
    queue_depth: int
    payment_required: bool


@dataclass(frozen=True)
class _Prepared:
    body: bytes
    prompt_token_ids: tuple[int, ...]
    params: SamplingParams
    stream: bool
    #: ``stream_options.include_usage``: usage in a chunk of its own, ``null`` elsewhere.
    include_usage: bool = False


@dataclass(frozen=True)
class _Access:
    kind: Literal["paid", "validator", "open"]
    ticket: PaymentTicket | None = None


# ---------------------------------------------------------------- app


class MinerServer:
    """Request handling around one engine; ``create_app`` wires it into FastAPI."""

    def __init__(
        self,
        *,
        config: MinerConfig,
        engine: Engine,
        hotkey: LocalAccount,
        gate: PaymentGate | None,
        auth: ValidatorAuth | None,
        metrics: MinerMetrics,
    ) -> None:
        if config.payment.require_payment and gate is None:
            raise LatentError("payment is required but no payment gate was given")
        self.config = config
        self.engine = engine
        self.hotkey = hotkey
        self.gate = gate
        self.auth = auth
        self.metrics = metrics
        self.model_id = config.server.model_id or engine.model_id

    # -- models and health ---------------------------------------------------------------

    def model_card(self) -> dict[str, Any]:
        """OpenAI's model object plus what a renter needs before its first request: the
        context length and prices per token in whole tokens as decimal strings (OpenRouter's
        ``pricing`` shape), exact in base units under ``latent``."""
        pricing = self.config.pricing
        payment = self.config.payment
        return {
            "id": self.model_id,
            "object": "model",
            "created": 0,
            "owned_by": self.hotkey.address,
            "max_context": self.engine.max_context,
            "context_length": self.engine.max_context,
            "pricing": {
                "prompt": format_tokens(pricing.per_prompt_token),
                "completion": format_tokens(pricing.per_completion_token),
            },
            "latent": {
                "miner": self.hotkey.address,
                "chain_id": payment.chain_id,
                "escrow": payment.escrow_address or None,
                "token": payment.token_address or None,
                "price_per_prompt_token": str(pricing.per_prompt_token),
                "price_per_completion_token": str(pricing.per_completion_token),
                "payment_required": payment.require_payment,
            },
        }

    def model(self, model_id: str) -> dict[str, Any]:
        """The card of ``model_id``; 404 unless it is the served model."""
        if model_id != self.model_id:
            raise ApiError(
                404,
                f"The model '{model_id}' does not exist; this miner serves '{self.model_id}'.",
                param="model",
                code="model_not_found",
            )
        return self.model_card()

    def health(self) -> dict[str, Any]:
        """Liveness and what a client checks before paying: model, hotkey, queue, payment."""
        return {
            "status": "ok",
            "model": self.model_id,
            "miner": self.hotkey.address,
            "queue_depth": self.engine.queue_depth,
            "payment_required": self.config.payment.require_payment,
        }

    # -- body and validation -------------------------------------------------------------

    async def read_body(self, request: Request) -> bytes:
        """The request body, enforcing the size limit (before parsing) and the read timeout."""
        server = self.config.server
        return await read_body(
            request, limit=server.max_body_bytes, timeout_s=server.body_read_timeout_s
        )

    async def prepare(self, request: Request, schema: type[SamplingBody]) -> _Prepared:
        """Read, parse and validate a completion or chat request."""
        body = await self.read_body(request)
        data = load_json_object(body)
        option = unsupported_option(data)
        if option is not None:
            raise ApiError(
                400,
                f"'{option}' is not supported by this miner; remove it from the request.",
                param=option,
                code="unsupported_parameter",
            )
        parsed = parse_request(schema, data)
        if parsed.model != self.model_id:
            raise ApiError(
                404,
                f"The model '{parsed.model}' does not exist; this miner serves '{self.model_id}'.",
                param="model",
                code="model_not_found",
            )
        if isinstance(parsed, CompletionBody):
            prompt_ids = await self._encode_completion_prompt(parsed.prompt)
            requested = requested_max_tokens(parsed)
        else:
            assert isinstance(parsed, ChatBody)
            prompt_ids = await asyncio.to_thread(
                self.engine.encode_chat, chat_messages(parsed.messages)
            )
            requested = requested_max_tokens(parsed)
        room = self.engine.max_context - len(prompt_ids)
        if room <= 0:
            raise ApiError(
                400,
                f"This model's maximum context length is {self.engine.max_context} tokens, "
                f"but your prompt has {len(prompt_ids)} tokens. Shorten the prompt.",
                param="messages" if isinstance(parsed, ChatBody) else "prompt",
                code="context_length_exceeded",
            )
        limit = min(room, self.config.server.max_tokens_limit)
        max_tokens = limit if requested is None else requested
        params = sampling_params(parsed, max_tokens)
        try:
            params.validate(max_new_tokens_limit=limit)
        except InvalidRequest as exc:
            code = None
            if exc.param == "max_tokens":
                too_small = isinstance(params.max_tokens, int) and params.max_tokens < 1
                code = "invalid_value" if too_small else "context_length_exceeded"
            raise ApiError(400, exc.message, param=exc.param, code=code) from None
        include_usage = parsed.stream_options is not None and parsed.stream_options.include_usage
        return _Prepared(
            body=body,
            prompt_token_ids=prompt_ids,
            params=params,
            stream=parsed.stream,
            include_usage=include_usage,
        )

    async def _encode_completion_prompt(
        self, prompt: str | list[str] | list[int]
    ) -> tuple[int, ...]:
        if isinstance(prompt, str):
            return await asyncio.to_thread(self.engine.encode_prompt, prompt)
        if not prompt:
            raise ApiError(400, "prompt must not be empty.", param="prompt")
        if all(isinstance(p, str) for p in prompt):
            if len(prompt) != 1:
                raise ApiError(400, "Only one prompt per request is supported.", param="prompt")
            return await asyncio.to_thread(self.engine.encode_prompt, str(prompt[0]))
        vocab = _vocab_size(self.engine)
        ids = tuple(int(t) for t in prompt)
        if any(t < 0 or (vocab is not None and t >= vocab) for t in ids):
            raise ApiError(400, f"prompt token ids must be in [0, {vocab}).", param="prompt")
        return ids

    # -- access --------------------------------------------------------------------------

    async def authorise(self, request: Request, prepared: _Prepared) -> _Access:
        """Validator challenge, voucher, or open access; raises ApiError otherwise."""
        depth = self.engine.queue_depth
        if depth >= self.config.server.max_queue_depth:
            retry = self.config.server.retry_after_s
            raise ApiError(
                429,
                f"The miner is overloaded ({depth} requests queued); retry in {retry} s.",
                type="server_overloaded",
                code="overloaded",
                headers={"Retry-After": str(retry)},
            )
        if has_challenge_headers(request.headers):
            if self.auth is None:
                raise ApiError(
                    401,
                    "This miner does not accept validator challenges (no metagraph).",
                    type="authentication_error",
                    code="challenges_disabled",
                )
            try:
                await self.auth.authenticate(request.headers, prepared.body)
            except ChallengeRejected as exc:
                headers = {"Retry-After": "1"} if exc.status == 429 else None
                raise ApiError(
                    exc.status,
                    exc.message,
                    type="authentication_error",
                    code=exc.code,
                    headers=headers,
                ) from None
            return _Access(kind="validator")
        if self.gate is None or not self.config.payment.require_payment:
            return _Access(kind="open")
        try:
            ticket = await self.gate.admit(
                request.headers.get(VOUCHER_HEADER),
                prompt_tokens=len(prepared.prompt_token_ids),
                max_tokens=prepared.params.max_tokens,
            )
        except PaymentRequired as exc:
            raise ApiError(
                exc.status,
                exc.message,
                type={402: "payment_required", 503: "service_unavailable"}.get(
                    exc.status, "conflict"
                ),
                code=exc.code,
                # Stock OpenAI clients retry a 409; a busy channel is the caller's to fix. A
                # 503 (the miner's chain node is down) is worth retrying a little later.
                headers={"x-should-retry": "false"}
                if exc.status == 409
                else {"Retry-After": "5"}
                if exc.status == 503
                else None,
                extra={"quote": exc.quote},
            ) from None
        self.metrics.earnings.inc(ticket.increment)
        return _Access(kind="paid", ticket=ticket)

    def price(self, access: _Access, prompt_tokens: int, completion_tokens: int) -> int:
        """What this response costs (validators are free)."""
        if access.kind == "validator":
            return 0
        return self.config.pricing.price(
            prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
        )

    def settle_access(self, access: _Access, price: int | None) -> None:
        """Record the delivered price on the channel (``None``: nothing delivered)."""
        if access.ticket is None or self.gate is None:
            return
        if price is None:
            self.gate.release(access.ticket)
        else:
            self.gate.complete(access.ticket, price)

    # -- results -------------------------------------------------------------------------

    def sign(
        self,
        prepared: _Prepared,
        result: GenerationResult,
        price: int,
        proof_bytes: bytes | None = None,
    ) -> Receipt:
        """The hotkey's receipt for a finished generation (``proof_bytes``: the proof's
        ``to_bytes()`` when the caller has it already; the commitment is their keccak256)."""
        commitment = result.proof.commitment() if proof_bytes is None else keccak(proof_bytes)
        return sign_receipt(
            self.hotkey,
            request_hash=hash_request_body(prepared.body),
            output_hash=output_hash(result.output_token_ids),
            proof_commitment=commitment,
            price=price,
            chain_id=self.config.payment.chain_id,
        )

    def latent_field(
        self, access: _Access, result: GenerationResult, receipt: Receipt, proof: bytes
    ) -> dict[str, Any]:
        """The ``latent`` object added to responses."""
        return LatentField(
            receipt=receipt,
            proof=result.proof,
            proof_bytes=proof,
            output_token_ids=result.output_token_ids,
            seed=result.seed,
            access=access.kind,
        ).to_json()

    def record_result(self, access: _Access, result: GenerationResult, proof: bytes) -> None:
        """Update token, proof and latency metrics for a finished generation."""
        self.metrics.prompt_tokens.inc(len(result.prompt_token_ids))
        self.metrics.completion_tokens.inc(len(result.output_token_ids))
        self.metrics.proof_bytes.inc(len(proof))
        self.metrics.time_to_first_token.observe(result.time_to_first_token_s)
        self.metrics.completions.labels(access=access.kind).inc()

    async def complete(self, request: Request, kind: Literal["text", "chat"]) -> Response:
        """Handle a completion or chat completion request."""
        prepared = await self.prepare(request, CompletionBody if kind == "text" else ChatBody)
        access = await self.authorise(request, prepared)
        generation = GenerationRequest(
            prompt_token_ids=prepared.prompt_token_ids, params=prepared.params
        )
        if prepared.stream:
            try:  # the engine validates here, before the first delta: still a plain 400
                deltas = self.engine.stream(generation)
            except BaseException:
                self.settle_access(access, None)
                raise
            return StreamingResponse(
                self._stream(kind, prepared, access, deltas),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        try:
            result = await self.engine.generate(generation)
        except BaseException:
            self.settle_access(access, None)
            raise
        price = self.price(access, len(result.prompt_token_ids), len(result.output_token_ids))
        self.settle_access(access, price)
        proof = result.proof.to_bytes()
        receipt = self.sign(prepared, result, price, proof)
        self.record_result(access, result, proof)
        body = _completion_body(kind, self.model_id, result)
        body["latent"] = self.latent_field(access, result, receipt, proof)
        headers = {RECEIPT_HEADER: encode_receipt_header(receipt)}
        if len(proof) <= self.config.server.proof_header_max_bytes:
            headers[PROOF_HEADER] = base64.b64encode(proof).decode("ascii")
        return JSONResponse(body, headers=headers)

    async def _stream(
        self,
        kind: Literal["text", "chat"],
        prepared: _Prepared,
        access: _Access,
        deltas: AsyncIterator[TokenDelta],
    ) -> AsyncIterator[bytes]:
        """Server-sent events in OpenAI's chunk format, receipt in the final chunk."""
        chunk_id = ("cmpl-" if kind == "text" else "chatcmpl-") + secrets.token_hex(12)
        created = int(time.time())
        obj = "text_completion" if kind == "text" else "chat.completion.chunk"
        delivered_tokens = 0
        settled = False

        # With include_usage every chunk says ``usage: null`` except the usage chunk.
        null_usage: dict[str, Any] = {"usage": None} if prepared.include_usage else {}

        def chunk(choices: list[dict[str, Any]], **extra: Any) -> bytes:
            payload = {
                "id": chunk_id,
                "object": obj,
                "created": created,
                "model": self.model_id,
                "choices": choices,
                **null_usage,
                **extra,
            }
            return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"

        # Per-token chunks differ only in their text: encode the rest once (same bytes as
        # chunk([_delta_choice(kind, text)]); the text is the payload's last string, so the
        # marker is split off from the right).
        marker = json.dumps("\x00latent-text\x00")
        head, tail = chunk([_delta_choice(kind, json.loads(marker))]).rsplit(marker.encode(), 1)

        def text_chunk(text: str) -> bytes:
            return head + json.dumps(text).encode() + tail

        try:
            if kind == "chat":
                yield chunk(
                    [
                        {
                            "index": 0,
                            "delta": {"role": "assistant", "content": ""},
                            "finish_reason": None,
                            "logprobs": None,
                        }
                    ]
                )
            result: GenerationResult | None = None
            async for delta in deltas:
                delivered_tokens += len(delta.token_ids)
                if delta.text:
                    yield text_chunk(delta.text)
                if delta.result is not None:
                    result = delta.result
            if result is None:
                raise LatentError("engine stream ended without a result")
            price = self.price(access, len(result.prompt_token_ids), len(result.output_token_ids))
            self.settle_access(access, price)
            settled = True
            proof = result.proof.to_bytes()
            receipt = self.sign(prepared, result, price, proof)
            self.record_result(access, result, proof)
            final = _delta_choice(kind, "")
            if kind == "chat":
                final["delta"] = {}
            final["finish_reason"] = result.finish_reason
            latent = self.latent_field(access, result, receipt, proof)
            if prepared.include_usage:  # OpenAI's shape: usage in a chunk of its own
                yield chunk([final])
                yield chunk([], usage=_usage(result), latent=latent)
            else:
                yield chunk([final], usage=_usage(result), latent=latent)
            yield b"data: [DONE]\n\n"
        except LatentError as exc:
            # Headers are gone already: report in-band, as OpenAI does, and end the stream.
            error = {
                "error": {"message": str(exc), "type": "server_error", "param": None, "code": None}
            }
            yield b"data: " + json.dumps(error).encode() + b"\n\n"
        finally:
            closer = getattr(deltas, "aclose", None)
            if closer is not None:
                await closer()  # a client that left cancels its engine request
            if not settled:
                # Client gone or engine failed: charge the tokens already streamed (so cutting
                # a stream short is not a way to be served for free), nothing more.
                charge: int | None = None
                if delivered_tokens:
                    charge = self.price(access, len(prepared.prompt_token_ids), delivered_tokens)
                self.settle_access(access, charge)


def _vocab_size(engine: Engine) -> int | None:
    vocab = getattr(engine, "vocab_size", None)
    if isinstance(vocab, int):
        return vocab
    tokenizer = getattr(engine, "tokenizer", None)
    return len(tokenizer) if tokenizer is not None else None


def _usage(result: GenerationResult) -> dict[str, int]:
    prompt = len(result.prompt_token_ids)
    completion = len(result.output_token_ids)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _delta_choice(kind: Literal["text", "chat"], text: str) -> dict[str, Any]:
    if kind == "text":
        return {"index": 0, "text": text, "finish_reason": None, "logprobs": None}
    return {"index": 0, "delta": {"content": text}, "finish_reason": None, "logprobs": None}


def _completion_body(
    kind: Literal["text", "chat"], model_id: str, result: GenerationResult
) -> dict[str, Any]:
    created = int(time.time())
    if kind == "text":
        return {
            "id": "cmpl-" + secrets.token_hex(12),
            "object": "text_completion",
            "created": created,
            "model": model_id,
            "choices": [
                {
                    "index": 0,
                    "text": result.text,
                    "finish_reason": result.finish_reason,
                    "logprobs": None,
                }
            ],
            "usage": _usage(result),
        }
    return {
        "id": "chatcmpl-" + secrets.token_hex(12),
        "object": "chat.completion",
        "created": created,
        "model": model_id,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": result.text},
                "finish_reason": result.finish_reason,
                "logprobs": None,
            }
        ],
        "usage": _usage(result),
    }
