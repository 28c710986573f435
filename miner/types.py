"""Types shared by the miner's inference engine and its HTTP server.

The engine (``miner.engine``) consumes :class:`GenerationRequest` and produces
:class:`GenerationResult` / :class:`TokenDelta`; the server maps them to the OpenAI wire
format. What other roles must agree on (sampling parameters, proofs) is in ``protocol``.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol.proof import InferenceProof
from protocol.sampling import SamplingParams

__all__ = ["GenerationRequest", "GenerationResult", "TokenDelta"]


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
    #: The sampling seed actually used (the request's, or the engine's when the request had
    #: none); None for greedy requests. Verifiers replay sampled tokens from it.
    seed: int | None = None


@dataclass(frozen=True)
class TokenDelta:
    """Streaming unit: new text and the tokens that produced it.

    Concatenating every delta's ``text`` gives ``result.text``; concatenating ``token_ids``
    gives ``result.output_token_ids``. ``result`` is set on the final delta only.
    """

    text: str
    token_ids: tuple[int, ...]
    result: GenerationResult | None = None
