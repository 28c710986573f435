"""OpenAI request schemas, prompt encoding, and the ``latent`` field of miner responses.

Requests are OpenAI's ``/v1/completions`` and ``/v1/chat/completions`` bodies; the fields
the subnet reads are declared here, so a miner, the validator and the renter proxy parse and
tokenize a request the same way (the verifier must rebuild the exact prompt token ids the
miner was asked to continue).

Request bodies are strict (``SamplingBody``): a value of the wrong JSON type is a 400 naming
the field, never coerced, and the bounds live on the schema, so the OpenAPI document a miner
publishes states what it accepts. Response bodies are declared too (``Completion``,
``ChatCompletion``, their stream chunks, ``ModelList``, ``ErrorResponse``) for that document.

Every 2xx completion carries, besides OpenAI's fields, a top-level ``latent`` object (the
official client ignores unknown fields; a stream carries it in its final chunk, which with
``stream_options.include_usage`` is the usage chunk)::

    "latent": {
      "receipt": {...},             # chain.receipts.Receipt.to_json(), signed by the hotkey
      "proof": "<base64>",          # protocol.proof.InferenceProof.to_bytes()
      "output_token_ids": [...],    # what the receipt's outputHash covers
      "seed": 123 | null,           # the sampling seed used (null for greedy)
      "access": "paid" | "validator" | "open"
    }

The seed is reported because a request without one is sampled from a seed the miner drew;
it is not signed, so verifiers trust it only for their own checks, and re-check organic
answers only when the signed request body fixed the seed (the renter proxy always sets one).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

from fastapi.responses import JSONResponse
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from chain.errors import LatentError
from chain.receipts import Receipt, ReceiptInvalid
from protocol.proof import InferenceProof, InvalidProof
from protocol.sampling import MAX_STOP_SEQUENCES, InvalidRequest, SamplingParams

__all__ = [
    "ApiError",
    "ChatBody",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatMessage",
    "Completion",
    "CompletionBody",
    "CompletionChunk",
    "ErrorResponse",
    "InvalidResponse",
    "LatentField",
    "LatentObject",
    "ModelCard",
    "ModelList",
    "SamplingBody",
    "StreamOptions",
    "Usage",
    "chat_messages",
    "encode_chat",
    "encode_text",
    "load_json_object",
    "parse_request",
    "requested_max_tokens",
    "sampling_params",
    "unsupported_option",
]


class ApiError(LatentError):
    """The one HTTP error of every role's OpenAI-compatible endpoint: status, OpenAI's error
    body ``{"error": {"message", "type", "param", "code"}}`` (plus ``extra`` top-level fields,
    e.g. a 402's price quote) and headers (``Retry-After``, ``Allow``, ...)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        """The JSON body."""
        body: dict[str, Any] = {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }
        body.update(self.extra)
        return body

    def response(self) -> JSONResponse:
        """The JSON response for this error."""
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def _whole_number(value: Any) -> Any:
    """JSON Schema's ``integer`` is a number with a zero fractional part, so ``1.0`` is the
    integer 1 (what the published document promises); ``1.5``, ``true`` and ``"1"`` stay
    what they are and fail the strict ``int``."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


#: An integer field: strict, but a whole JSON number like ``1.0`` counts (``_whole_number``).
Integer = Annotated[int, BeforeValidator(_whole_number)]
StopSequence = Annotated[str, Field(min_length=1)]
TokenIds = Annotated[list[Annotated[Integer, Field(ge=0)]], Field(min_length=1)]


class StreamOptions(BaseModel):
    """OpenAI's ``stream_options`` (only with ``stream: true``)."""

    model_config = ConfigDict(extra="ignore", strict=True)

    include_usage: bool = Field(
        default=False,
        description="Send usage in a last chunk of its own (``choices: []``); every other "
        "chunk then carries ``usage: null``.",
    )


class SamplingBody(BaseModel):
    """Fields shared by completion and chat requests.

    Strict types (pydantic strict mode): a value of the wrong JSON type is a 400 naming the
    field, never coerced — ``"5"`` is not a number, ``1.0`` not an integer, ``"yes"`` not a
    boolean, ``true`` not a token id. A JSON integer is a valid number (``temperature: 1``).
    """

    model_config = ConfigDict(extra="ignore", strict=True)

    model: str = Field(description="The model id the miner serves (``GET /v1/models``).")
    temperature: float = Field(
        default=1.0, ge=0.0, le=100.0, allow_inf_nan=False, description="0 is greedy."
    )
    top_p: float = Field(default=1.0, gt=0.0, le=1.0, allow_inf_nan=False)
    top_k: Integer = Field(default=0, ge=0, description="0 disables top-k (not an OpenAI field).")
    n: Integer = Field(default=1, ge=1, le=1, description="Only 1 is supported.")
    stream: bool = Field(default=False, description="Answer as server-sent events.")
    stream_options: StreamOptions | None = Field(
        default=None, description="Only with ``stream: true``."
    )
    stop: (
        StopSequence | Annotated[list[StopSequence], Field(max_length=MAX_STOP_SEQUENCES)] | None
    ) = Field(default=None, description="Non-empty stop sequences.")
    seed: Integer | None = Field(
        default=None, ge=0, lt=2**63, description="Seed of the sampler; replayed by verifiers."
    )


class CompletionBody(SamplingBody):
    """``POST /v1/completions`` body (the fields the subnet uses)."""

    prompt: str | Annotated[list[str], Field(min_length=1, max_length=1)] | TokenIds = Field(
        description="Text, a list of one text, or prompt token ids (below the vocabulary size)."
    )
    max_tokens: Integer | None = Field(
        default=16, ge=1, description="Completion-token limit (the miner caps it by context)."
    )


class TextPart(BaseModel):
    """A text content part (the only kind of content part the subnet serves)."""

    model_config = ConfigDict(extra="ignore", strict=True)

    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    """One chat message; content parts other than text are refused."""

    model_config = ConfigDict(extra="ignore", strict=True)

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None

    @field_validator("content", mode="before")
    @classmethod
    def _text_parts_only(cls, value: Any) -> Any:
        # Said plainly, instead of the union's "Input should be a valid string".
        if isinstance(value, list) and any(
            not isinstance(part, dict) or part.get("type") != "text" for part in value
        ):
            raise ValueError("only text content parts ({'type': 'text', 'text': ...}) are served")
        return value


class ChatBody(SamplingBody):
    """``POST /v1/chat/completions`` body."""

    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: Integer | None = Field(default=None, ge=1)
    max_completion_tokens: Integer | None = Field(
        default=None, ge=1, description="Preferred over ``max_tokens`` when both are set."
    )


#: OpenAI request options the subnet does not implement, with the value that means "off".
#: A request asking for one gets a 400 naming it instead of a silently different answer.
UNSUPPORTED_OPTIONS: dict[str, object] = {
    "logprobs": None,
    "top_logprobs": None,
    "echo": False,
    "best_of": 1,
    "suffix": None,
    "tools": None,
    "tool_choice": None,
    "functions": None,
    "function_call": None,
    "response_format": None,
    "logit_bias": None,
}


def unsupported_option(data: dict[str, Any]) -> str | None:
    """The first option in ``data`` the subnet does not implement (set to anything but its
    "off" value), or None. ``logprobs: false`` and empty ``logit_bias`` count as off."""
    for name, off in UNSUPPORTED_OPTIONS.items():
        if name not in data:
            continue
        value = data[name]
        if value is None or value == off or value in (False, {}, []):
            continue
        return name
    return None


B = TypeVar("B", bound=SamplingBody)


def load_json_object(raw: bytes) -> dict[str, Any]:
    """The request body as a JSON object; raises a 400 :class:`ApiError` (``invalid_json``)."""
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ApiError(
            400, f"We could not parse the JSON body of your request: {exc}", code="invalid_json"
        ) from None
    if not isinstance(data, dict):
        raise ApiError(400, "The request body must be a JSON object.", code="invalid_json")
    return data


def parse_request(schema: type[B], data: dict[str, Any]) -> B:
    """Validate a request object against ``schema`` (strict types); raises a 400
    :class:`ApiError` naming the top-level field at fault."""
    try:
        parsed = schema.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        # Union members appear in the location ("prompt.str"): name only the fields.
        loc = [str(part) for part in first["loc"] if isinstance(part, int) or part in _FIELDS]
        where = ".".join(loc) or "body"
        param = loc[0] if loc else None
        # A value of the right type outside its range is OpenAI's invalid_value.
        code = "invalid_value" if first["type"] in _RANGE_ERRORS else None
        raise ApiError(
            400, f"Invalid value for '{where}': {first['msg']}", param=param, code=code
        ) from None
    if parsed.stream_options is not None and not parsed.stream:
        raise ApiError(
            400,
            "'stream_options' is only allowed when 'stream' is true.",
            param="stream_options",
            code="invalid_value",
        )
    return parsed


def _field_names(*models: type[BaseModel]) -> frozenset[str]:
    return frozenset(name for model in models for name in model.model_fields)


_RANGE_ERRORS = frozenset(
    {
        "greater_than",
        "greater_than_equal",
        "less_than",
        "less_than_equal",
        "finite_number",
        "too_short",
        "too_long",
        "string_too_short",
    }
)
_FIELDS = _field_names(CompletionBody, ChatBody, ChatMessage, TextPart, StreamOptions)


def requested_max_tokens(body: SamplingBody) -> int | None:
    """The completion-token limit the client asked for (None: as many as the context allows)."""
    if isinstance(body, ChatBody):
        return (
            body.max_completion_tokens
            if body.max_completion_tokens is not None
            else body.max_tokens
        )
    if isinstance(body, CompletionBody):
        return body.max_tokens
    return None


def sampling_params(body: SamplingBody, max_tokens: int) -> SamplingParams:
    """The sampling parameters a request body asks for (``max_tokens`` resolved by the
    caller against the context); not validated here (``SamplingParams.validate``)."""
    stop = (body.stop,) if isinstance(body.stop, str) else tuple(body.stop or ())
    return SamplingParams(
        max_tokens=max_tokens,
        temperature=body.temperature,
        top_k=body.top_k,
        top_p=body.top_p,
        seed=body.seed,
        stop=stop,
    )


def chat_messages(messages: list[ChatMessage]) -> list[dict[str, str]]:
    """Plain ``{"role", "content"}`` dicts for a chat template (``developer`` is ``system``;
    text parts joined)."""
    out: list[dict[str, str]] = []
    for message in messages:
        content = message.content
        if content is None:
            text = ""
        elif isinstance(content, str):
            text = content
        else:
            text = "".join(part.text for part in content)
        role = "system" if message.role == "developer" else message.role
        out.append({"role": role, "content": text})
    return out


def encode_text(tokenizer: Any, prompt: str) -> tuple[int, ...]:
    """Token ids of a plain-text prompt (with the tokenizer's BOS convention)."""
    return tuple(int(i) for i in tokenizer(prompt).input_ids)


def encode_chat(tokenizer: Any, messages: list[dict[str, str]]) -> tuple[int, ...]:
    """Token ids of chat ``messages`` rendered with the model's chat template, ending with the
    assistant turn header; raises :class:`InvalidRequest` when the model has no template or
    the template refuses the messages."""
    if not getattr(tokenizer, "chat_template", None):
        raise InvalidRequest(
            "this model has no chat template; use /v1/completions instead", param="messages"
        )
    try:
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    except Exception as exc:  # jinja raises many error types on odd input
        raise InvalidRequest(f"cannot apply chat template: {exc}", param="messages") from exc
    if not isinstance(ids, list):  # BatchEncoding in transformers 5
        ids = ids["input_ids"]
    return tuple(int(i) for i in ids)


# ---------------------------------------------------------------- response schemas
# Declared for the published OpenAPI document (and checked against real answers by the
# schemathesis test); the server writes the same shapes as plain dicts on the hot path.


class ErrorDetail(BaseModel):
    """OpenAI's error object."""

    message: str
    type: str
    param: str | None
    code: str | None


class ErrorResponse(BaseModel):
    """Every error body: ``{"error": {...}}``; a 402 adds the miner's price ``quote``."""

    model_config = ConfigDict(extra="allow")

    error: ErrorDetail


class Usage(BaseModel):
    """Token counts of one answer."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ReceiptObject(BaseModel):
    """``chain.receipts.Receipt.to_json()``: hashes and signature as 0x-hex, price in base
    units as a decimal string."""

    request_hash: str
    output_hash: str
    proof_commitment: str
    price: str
    miner: str
    chain_id: int
    signature: str


class LatentObject(BaseModel):
    """The ``latent`` field of a miner answer (module docs)."""

    receipt: ReceiptObject
    proof: str = Field(description="protocol.proof.InferenceProof bytes, base64.")
    output_token_ids: list[int]
    seed: int | None
    access: Literal["paid", "validator", "open"]


FinishReason = Literal["stop", "length"]


class CompletionChoice(BaseModel):
    index: int
    text: str
    finish_reason: FinishReason | None
    logprobs: None = None


class Completion(BaseModel):
    """``POST /v1/completions`` answer (``stream: false``)."""

    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage
    latent: LatentObject


class CompletionChunk(BaseModel):
    """One ``data:`` event of a streamed completion. The last event before ``[DONE]``
    carries ``usage`` and ``latent``; with ``stream_options.include_usage`` it is a chunk of
    its own with ``choices: []``, and the other chunks carry ``usage: null``."""

    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None
    latent: LatentObject | None = None


class AssistantMessage(BaseModel):
    role: Literal["assistant"]
    content: str


class ChatChoice(BaseModel):
    index: int
    message: AssistantMessage
    finish_reason: FinishReason | None
    logprobs: None = None


class ChatCompletion(BaseModel):
    """``POST /v1/chat/completions`` answer (``stream: false``)."""

    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
    latent: LatentObject


class ChatDelta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChatChunkChoice(BaseModel):
    index: int
    delta: ChatDelta
    finish_reason: FinishReason | None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    """One ``data:`` event of a streamed chat completion (``CompletionChunk``'s rules)."""

    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    choices: list[ChatChunkChoice]
    usage: Usage | None = None
    latent: LatentObject | None = None


class ModelPricing(BaseModel):
    """Whole tokens per token, decimal strings (OpenRouter's shape)."""

    prompt: str
    completion: str


class ModelCard(BaseModel):
    """OpenAI's model object plus the context length and prices; miners add ``latent``
    (payment details in base units), the renter proxy ``miners`` (how many serve it)."""

    model_config = ConfigDict(extra="allow")

    id: str
    object: Literal["model"]
    created: int
    owned_by: str
    context_length: int
    pricing: ModelPricing


class ModelList(BaseModel):
    """``GET /v1/models``."""

    object: Literal["list"]
    data: list[ModelCard]


class InvalidResponse(LatentError):
    """A miner response whose ``latent`` field is missing or malformed."""


@dataclass(frozen=True)
class LatentField:
    """The ``latent`` object of a miner response (module docs)."""

    receipt: Receipt
    proof: InferenceProof
    proof_bytes: bytes
    output_token_ids: tuple[int, ...]
    seed: int | None
    access: str

    def to_json(self) -> dict[str, Any]:
        """The JSON object as miners send it."""
        return {
            "receipt": self.receipt.to_json(),
            "proof": base64.b64encode(self.proof_bytes).decode("ascii"),
            "output_token_ids": list(self.output_token_ids),
            "seed": self.seed,
            "access": self.access,
        }

    @classmethod
    def from_json(cls, data: Any) -> LatentField:
        """Parse and check the shape; raises :class:`InvalidResponse` on anything malformed
        (the proof must parse, token ids be ints, the receipt be well-formed)."""
        if not isinstance(data, dict):
            raise InvalidResponse("response has no 'latent' object")
        try:
            raw_ids = data["output_token_ids"]
            if not isinstance(raw_ids, list) or not all(
                isinstance(t, int) and not isinstance(t, bool) and 0 <= t < 2**32 for t in raw_ids
            ):
                raise InvalidResponse("latent.output_token_ids must be a list of token ids")
            seed = data.get("seed")
            if seed is not None and (
                not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**63
            ):
                raise InvalidResponse("latent.seed must be null or an integer in [0, 2**63)")
            proof_bytes = base64.b64decode(str(data["proof"]), validate=True)
            receipt = data["receipt"]
            if not isinstance(receipt, dict):
                raise InvalidResponse("latent.receipt must be an object")
            return cls(
                receipt=Receipt.from_json(receipt),
                proof=InferenceProof.from_bytes(proof_bytes),
                proof_bytes=proof_bytes,
                output_token_ids=tuple(raw_ids),
                seed=seed,
                access=str(data.get("access", "")),
            )
        except KeyError as exc:
            raise InvalidResponse(f"latent field lacks {exc}") from None
        except (binascii.Error, ValueError) as exc:
            raise InvalidResponse(f"latent.proof is not base64: {exc}") from None
        except (ReceiptInvalid, InvalidProof) as exc:
            raise InvalidResponse(str(exc)) from None
