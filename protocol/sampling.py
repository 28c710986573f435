"""Sampling parameters and the sampling rule: the miner draws with it, the verifier replays it.

The rule (one home, so prover and verifier cannot drift apart):

1. ``temperature == 0`` is greedy: ``argmax`` (first index on exact ties).
2. Otherwise the logits are divided by the temperature (float32), then top-k keeps the
   logits ``>=`` the k-th largest, softmax, then top-p keeps the most likely tokens until
   the mass *before* a token reaches ``top_p`` (the first token always stays). This is the
   order of transformers' warpers.
3. The kept probabilities are accumulated in float64 **in vocabulary order** (a CDF), and
   one uniform ``u`` in [0, 1) from the request's own generator picks the token whose CDF
   interval contains ``u * total``.
4. The generator is a CPU ``torch.Generator`` seeded with the request's ``seed`` and draws
   exactly one float64 uniform per generated token, so token ``i`` uses the ``i``-th draw,
   whatever the batch, device or neighbours.

Exact replay (after Token-DiFR, arXiv 2511.20621): given the seed, a verifier regenerates
the uniforms, recomputes the CDF from its own logits, and checks that ``u * total`` falls in
the claimed token's interval. Logits differ between the miner's batched decode and the
verifier's prefill by float noise only, which moves interval boundaries by ~1e-7 of mass;
:func:`replay_distance` measures how far ``u`` is from the claimed token's interval so a
calibrated margin absorbs that noise and nothing else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chain.errors import LatentError

if TYPE_CHECKING:  # imported where used: request checks need no torch (renters, the proxy)
    import torch

__all__ = [
    "MAX_STOP_SEQUENCES",
    "InvalidRequest",
    "SamplingParams",
    "next_uniform",
    "pick_token",
    "replay_distance",
    "request_generator",
    "sample_token",
    "sampling_cdf",
]


class InvalidRequest(LatentError):
    """A generation request the engine refuses; the message is OpenAI-style and user-facing.

    ``param`` names the offending request field (OpenAI's ``error.param``), or ``None``.
    """

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


#: Longest stop string accepted (OpenAI allows up to 4 stop sequences).
MAX_STOP_SEQUENCES = 4


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


def request_generator(seed: int) -> torch.Generator:
    """The per-request CPU generator every draw of a sampled request comes from."""
    import torch

    return torch.Generator(device="cpu").manual_seed(seed)


def next_uniform(generator: torch.Generator) -> float:
    """The next uniform in [0, 1) of a request (one per generated token)."""
    import torch

    return float(torch.rand((), generator=generator, dtype=torch.float64).item())


def sampling_cdf(logits: torch.Tensor, params: SamplingParams) -> torch.Tensor:
    """Float64 CDF, in vocabulary order, of the distribution ``params`` samples from."""
    import torch

    scaled = logits.float() / params.temperature
    vocab = scaled.shape[-1]
    if 0 < params.top_k < vocab:
        kth = torch.topk(scaled, params.top_k).values[-1]
        scaled = scaled.masked_fill(scaled < kth, float("-inf"))
    probs = torch.softmax(scaled, dim=-1)
    if params.top_p < 1.0:
        sorted_probs, order = torch.sort(probs, descending=True)
        mass_before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs
        drop = mass_before >= params.top_p
        drop[0] = False
        probs = probs.clone()
        probs[order[drop]] = 0.0
    return torch.cumsum(probs.double(), dim=-1)


def pick_token(cdf: torch.Tensor, u: float) -> int:
    """The token whose CDF interval contains ``u * total`` (inverse CDF)."""
    import torch

    target = torch.tensor([u * cdf[-1].item()], dtype=torch.float64, device=cdf.device)
    token = int(torch.searchsorted(cdf, target, right=True).item())
    return min(token, cdf.shape[-1] - 1)


def sample_token(logits: torch.Tensor, params: SamplingParams, generator: torch.Generator) -> int:
    """Draw one token by the rule above, consuming one uniform of ``generator``."""
    return pick_token(sampling_cdf(logits, params), next_uniform(generator))


def replay_distance(cdf: torch.Tensor, token: int, u: float) -> float:
    """How far (in probability mass, normalised to the total) ``u`` lies outside ``token``'s
    CDF interval: 0.0 when the draw picks ``token`` exactly, ``inf`` for a token the rules
    exclude (zero probability)."""
    total = float(cdf[-1].item())
    if not (total > 0.0 and 0 <= token < cdf.shape[-1]):
        return math.inf
    hi = float(cdf[token].item()) / total
    lo = float(cdf[token - 1].item()) / total if token > 0 else 0.0
    if hi <= lo:
        return math.inf
    if lo <= u < hi:
        return 0.0
    return lo - u if u < lo else u - hi
