"""Protocol types shared by the miner's inference engine and its HTTP server.

These names are a contract (see MINER_INTERFACE.md): fields may be added, never renamed.
The engine (``miner.engine``) consumes :class:`GenerationRequest` and produces
:class:`GenerationResult` / :class:`TokenDelta`; the server maps them to the OpenAI wire format.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from chain.errors import LatentError
from miner.proof import InferenceProof

__all__ = [
    "GenerationRequest",
    "GenerationResult",
    "InferenceProof",
    "InvalidRequest",
    "SamplingParams",
    "TokenDelta",
]

#: Longest stop string accepted (OpenAI allows up to 4 stop sequences).
MAX_STOP_SEQUENCES = 4


class InvalidRequest(LatentError):
    """A generation request the engine refuses; the message is OpenAI-style and user-facing.

    ``param`` names the offending request field (OpenAI's ``error.param``), or ``None``.
    """

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


@dataclass(frozen=True)
class SamplingParams:
    """How to pick each next token.

    ``temperature == 0`` means greedy (argmax; ``top_k``/``top_p``/``seed`` are ignored).
    Sampled requests are reproducible given ``seed``: the engine gives each request its own
    generator, so its tokens do not depend on which other requests share its batch.
    ``stop`` strings end generation; the returned text is cut just before the first stop string.
    """

    max_tokens: int = 16
    temperature: float = 0.0  # 0.0 => greedy
    top_k: int = 0  # 0 => disabled
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()

    @property
    def greedy(self) -> bool:
        """True when tokens are chosen by argmax."""
        return self.temperature == 0.0

    def validate(self, *, max_new_tokens_limit: int) -> None:
        """Raise :class:`InvalidRequest` (OpenAI-style message) if the parameters are unusable."""
        if not isinstance(self.max_tokens, int) or isinstance(self.max_tokens, bool):
            raise InvalidRequest("max_tokens must be an integer.", param="max_tokens")
        if self.max_tokens < 1:
            raise InvalidRequest(
                f"max_tokens must be at least 1, got {self.max_tokens}.", param="max_tokens"
            )
        if self.max_tokens > max_new_tokens_limit:
            raise InvalidRequest(
                f"max_tokens is too large: {self.max_tokens}. This model supports at most "
                f"{max_new_tokens_limit} completion tokens for this prompt.",
                param="max_tokens",
            )
        if not math.isfinite(self.temperature) or self.temperature < 0.0:
            raise InvalidRequest(
                f"temperature must be a finite number >= 0, got {self.temperature}.",
                param="temperature",
            )
        if self.temperature > 100.0:
            raise InvalidRequest(
                f"temperature must be <= 100, got {self.temperature}.", param="temperature"
            )
        if not isinstance(self.top_k, int) or self.top_k < 0:
            raise InvalidRequest(
                f"top_k must be an integer >= 0 (0 disables it), got {self.top_k}.", param="top_k"
            )
        if not math.isfinite(self.top_p) or not 0.0 < self.top_p <= 1.0:
            raise InvalidRequest(f"top_p must be in (0, 1], got {self.top_p}.", param="top_p")
        if self.seed is not None and (not isinstance(self.seed, int) or not 0 <= self.seed < 2**63):
            raise InvalidRequest(
                f"seed must be an integer in [0, 2**63), got {self.seed}.", param="seed"
            )
        if len(self.stop) > MAX_STOP_SEQUENCES:
            raise InvalidRequest(
                f"at most {MAX_STOP_SEQUENCES} stop sequences are allowed, got {len(self.stop)}.",
                param="stop",
            )
        for s in self.stop:
            if not isinstance(s, str) or not s:
                raise InvalidRequest("stop sequences must be non-empty strings.", param="stop")


@dataclass(frozen=True)
class GenerationRequest:
    """One completion to produce: already-tokenized prompt plus sampling parameters."""

    prompt_token_ids: tuple[int, ...]
    params: SamplingParams


@dataclass(frozen=True)
class GenerationResult:
    """A finished completion with its proof of inference.

    ``output_token_ids`` are every token the model generated, including an EOS token and the
    token that completed a stop string (the proof covers exactly these); ``text`` is their
    decoding without special tokens, cut before the first stop string.
    ``finish_reason`` is ``"stop"`` (EOS or stop string) or ``"length"`` (``max_tokens``).
    """

    prompt_token_ids: tuple[int, ...]
    output_token_ids: tuple[int, ...]
    text: str
    finish_reason: str  # "stop" | "length"
    proof: InferenceProof
    time_to_first_token_s: float
    elapsed_s: float


@dataclass(frozen=True)
class TokenDelta:
    """Streaming unit: new text and the tokens that produced it.

    Concatenating every delta's ``text`` gives ``result.text``; concatenating ``token_ids``
    gives ``result.output_token_ids``. ``result`` is set on the final delta only.
    """

    text: str
    token_ids: tuple[int, ...]
    result: GenerationResult | None = None
