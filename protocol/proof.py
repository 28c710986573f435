"""Proof of inference: compact commitments a validator checks with one prefill pass.

TOPLOC-style (Ong et al., 2025), re-derived for a tighter byte budget. For every chunk of
``CHUNK_TOKENS`` (32) generated tokens the miner commits to the final hidden states that
produced those tokens (the input of the LM head, i.e. after the final norm), and for every
generated token it reports the token's log-probability.

Hidden-state commitment of one chunk (``h``: chunk_len x hidden_size, flattened):

1. pick the ``k`` entries of largest magnitude (``k = chunk_topk(chunk_len)``, 24 for a full
   chunk), walking down the magnitude order and skipping an entry whose flat index collides
   modulo ``FIELD_PRIME`` with one already picked;
2. encode each picked value as its IEEE float16 bit pattern (finite float16 patterns are
   <= 0xFBFF < ``FIELD_PRIME``, so they are field elements);
3. interpolate the polynomial of degree < k over GF(``FIELD_PRIME``) through the points
   (flat index mod p, value code) and store its k coefficients, 2 bytes each.

Indices cost nothing: the verifier recomputes its own top-k indices from its prefill,
evaluates the polynomial there and gets the miner's value back exactly when the index was
in the miner's set, or a pseudo-random field element otherwise. A chunk passes when enough of
those values match the verifier's own within tolerance.

Wire format (``InferenceProof.to_bytes``), little-endian:
``version:u8 | num_tokens:uvarint | chunk coefficients:u16[sum k] | logprobs:f16[num_tokens]``.
Size: 2 B/token of log-probs + 48 B per full chunk (1.5 B/token) + 2-4 B header, i.e.
about 3.5-3.6 B per generated token for completions of ~16 tokens or more (TOPLOC's anchor:
258 B per 32 tokens, about 8 B/token, without log-probs). A partial last chunk commits
``max(MIN_CHUNK_TOPK, ceil(24 * len / 32))`` values, so short completions stay close to
the same rate (a one-token completion costs 22 B).

Log-probs are the chosen token's log-probability under the model's raw distribution
(``log_softmax(logits)``, temperature 1, before top-k/top-p), as OpenAI's ``logprobs``
reports them; the verifier applies the request's sampling rules itself.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import math
import struct
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, cast

from eth_utils import keccak

from chain.errors import LatentError

if TYPE_CHECKING:  # imported where used: the wire format needs no torch (renters, the proxy)
    import torch
from protocol.sampling import (
    SamplingParams,
    next_uniform,
    replay_distance,
    request_generator,
    sampling_cdf,
)

__all__ = [
    "CHUNK_TOKENS",
    "DEFAULT_TOLERANCES",
    "FIELD_PRIME",
    "InferenceProof",
    "InvalidProof",
    "ProofTolerances",
    "ProofVerdict",
    "chunk_commitment",
    "chunk_topk",
    "final_hidden_forward",
    "verify_inference",
]

PROOF_VERSION = 1
#: Generated tokens per hidden-state commitment.
CHUNK_TOKENS = 32
#: Committed hidden-state values per full chunk (2 bytes each).
TOPK_PER_CHUNK = 24
#: Floor on committed values for a short last chunk.
MIN_CHUNK_TOPK = 8
#: Largest prime below 2**16; every finite float16 bit pattern (<= 0xFBFF) is below it.
FIELD_PRIME = 65521
_F16_MAX = 65504.0
_F16_MAX_FINITE_CODE = 0xFBFF


F = TypeVar("F", bound=Callable[..., Any])


def _inference_mode(fn: F) -> F:
    """``@torch.inference_mode()``, importing torch at the first call rather than with this
    module."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        import torch

        with torch.inference_mode():
            return fn(*args, **kwargs)

    return cast(F, run)


class InvalidProof(LatentError):
    """Proof bytes that do not parse (wrong version, truncated, out-of-range values)."""


# ---------------------------------------------------------------------------------------------
# Field arithmetic and the per-chunk commitment (pure)
# ---------------------------------------------------------------------------------------------


def chunk_topk(chunk_len: int) -> int:
    """Number of committed values for a chunk of ``chunk_len`` generated tokens."""
    return max(MIN_CHUNK_TOPK, math.ceil(TOPK_PER_CHUNK * chunk_len / CHUNK_TOKENS))


def _interpolate(xs: Sequence[int], ys: Sequence[int]) -> list[int]:
    """Monomial coefficients (lowest degree first) of the degree < len(xs) polynomial over
    GF(FIELD_PRIME) through the points; ``xs`` must be distinct. Newton divided differences,
    then expansion of the Newton form: O(k^2)."""
    p = FIELD_PRIME
    k = len(xs)
    dd = [y % p for y in ys]
    for j in range(1, k):
        for i in range(k - 1, j - 1, -1):
            dd[i] = (dd[i] - dd[i - 1]) * pow(xs[i] - xs[i - j], p - 2, p) % p
    coeffs = [0] * k
    for i in range(k - 1, -1, -1):
        # coeffs <- coeffs * (x - xs[i]) + dd[i]
        xi = xs[i]
        for d in range(k - 1, 0, -1):
            coeffs[d] = (coeffs[d - 1] - xi * coeffs[d]) % p
        coeffs[0] = (dd[i] - xi * coeffs[0]) % p
    return coeffs


def _evaluate(coeffs: Sequence[int], x: int) -> int:
    acc = 0
    for c in reversed(coeffs):
        acc = (acc * x + c) % FIELD_PRIME
    return acc


def _f16_code(value: float) -> int:
    clamped = min(max(value, -_F16_MAX), _F16_MAX)
    (code,) = struct.unpack("<H", struct.pack("<e", clamped))
    return int(code)


def _f16_value(code: int) -> float:
    (value,) = struct.unpack("<e", struct.pack("<H", code))
    return float(value)


def _round_f16(value: float) -> float:
    return _f16_value(_f16_code(value))


def _select_topk(hidden: torch.Tensor, k: int) -> tuple[list[int], list[float]]:
    """Flat indices and float32 values of the ``k`` largest-magnitude entries of ``hidden``
    (chunk_len x d), skipping entries whose index collides modulo FIELD_PRIME."""
    import torch

    flat = hidden.detach().reshape(-1).float()
    k = min(k, flat.numel())
    extra = min(flat.numel(), k + 16)
    while True:
        order = torch.topk(flat.abs(), extra, sorted=True).indices.cpu().tolist()
        picked: list[int] = []
        seen: set[int] = set()
        for idx in order:
            x = idx % FIELD_PRIME
            if x not in seen:
                seen.add(x)
                picked.append(idx)
                if len(picked) == k:
                    values = flat[torch.tensor(picked, device=flat.device)].cpu().tolist()
                    return picked, values
        if extra == flat.numel():  # fewer distinct residues than k: commit what exists
            values = flat[torch.tensor(picked, device=flat.device)].cpu().tolist()
            return picked, values
        extra = min(flat.numel(), extra * 2)


def chunk_commitment(hidden: torch.Tensor) -> tuple[int, ...]:
    """Polynomial coefficients committing to one chunk's final hidden states
    (``hidden``: chunk_len x hidden_size, any float dtype, any device)."""
    indices, values = _select_topk(hidden, chunk_topk(hidden.shape[0]))
    xs = [i % FIELD_PRIME for i in indices]
    ys = [_f16_code(v) for v in values]
    coeffs = _interpolate(xs, ys)
    # A chunk smaller than k entries (tiny hidden size) still stores chunk_topk coefficients.
    return tuple(coeffs + [0] * (chunk_topk(hidden.shape[0]) - len(coeffs)))


# ---------------------------------------------------------------------------------------------
# The proof object and its wire format
# ---------------------------------------------------------------------------------------------


def _chunk_lengths(num_tokens: int) -> list[int]:
    full, rest = divmod(num_tokens, CHUNK_TOKENS)
    return [CHUNK_TOKENS] * full + ([rest] if rest else [])


def _uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


@dataclass(frozen=True)
class InferenceProof:
    """Hidden-state chunk commitments plus each generated token's log-prob (see module doc).

    ``token_logprobs`` hold float16-representable values (what goes on the wire), so a proof
    equals ``from_bytes(to_bytes())``.
    """

    num_tokens: int
    chunk_commitments: tuple[tuple[int, ...], ...]
    token_logprobs: tuple[float, ...]
    version: int = PROOF_VERSION

    @classmethod
    def build(
        cls, chunk_commitments: Sequence[Sequence[int]], token_logprobs: Sequence[float]
    ) -> InferenceProof:
        """Assemble a proof, rounding log-probs to their float16 wire form."""
        return cls(
            num_tokens=len(token_logprobs),
            chunk_commitments=tuple(tuple(c) for c in chunk_commitments),
            token_logprobs=tuple(_round_f16(lp) for lp in token_logprobs),
        )

    def to_bytes(self) -> bytes:
        """Canonical wire encoding."""
        out = bytearray([self.version])
        out += _uvarint(self.num_tokens)
        for coeffs in self.chunk_commitments:
            out += struct.pack(f"<{len(coeffs)}H", *coeffs)
        out += b"".join(struct.pack("<H", _f16_code(lp)) for lp in self.token_logprobs)
        return bytes(out)

    @classmethod
    def from_bytes(cls, data: bytes) -> InferenceProof:
        """Parse the wire encoding; raises :class:`InvalidProof` on anything malformed."""
        if not data or data[0] != PROOF_VERSION:
            raise InvalidProof(f"unsupported proof version (expected {PROOF_VERSION})")
        pos, num_tokens, shift = 1, 0, 0
        while True:
            if pos >= len(data) or shift > 28:
                raise InvalidProof("truncated proof header")
            byte = data[pos]
            pos += 1
            num_tokens |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        if _uvarint(num_tokens) != data[1:pos]:
            raise InvalidProof("non-canonical token count in proof header")
        lengths = _chunk_lengths(num_tokens)
        expected = pos + 2 * sum(chunk_topk(n) for n in lengths) + 2 * num_tokens
        if len(data) != expected:
            raise InvalidProof(f"proof is {len(data)} bytes, expected {expected}")
        chunks = []
        for n in lengths:
            k = chunk_topk(n)
            coeffs = struct.unpack_from(f"<{k}H", data, pos)
            pos += 2 * k
            if max(coeffs) >= FIELD_PRIME:
                raise InvalidProof("proof coefficient outside the field")
            chunks.append(tuple(coeffs))
        codes = struct.unpack_from(f"<{num_tokens}H", data, pos)
        logprobs = tuple(_f16_value(c) for c in codes)
        if any(not math.isfinite(lp) or lp > 0.0 for lp in logprobs):
            raise InvalidProof("proof log-probs must be finite and <= 0")
        return cls(num_tokens=num_tokens, chunk_commitments=tuple(chunks), token_logprobs=logprobs)

    def commitment(self) -> bytes:
        """32-byte keccak256 of :meth:`to_bytes`; what receipts sign."""
        return bytes(keccak(self.to_bytes()))

    @property
    def bytes_per_token(self) -> float:
        """Encoded size divided by generated tokens (the product figure)."""
        return len(self.to_bytes()) / max(1, self.num_tokens)


# ---------------------------------------------------------------------------------------------
# Forward pass shared by the engine (prover) and the verifier
# ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _capture_lm_head_input(model: Any) -> Iterator[list[torch.Tensor]]:
    captured: list[torch.Tensor] = []
    head = model.get_output_embeddings()
    if head is None:
        raise LatentError(f"{type(model).__name__} has no output embeddings (LM head)")

    me = threading.get_ident()

    def hook(_module: Any, args: tuple[Any, ...]) -> None:
        # Only this thread's forward: a model shared by a prover and a verifier thread runs
        # two forwards at once, and each must see its own hidden states.
        if threading.get_ident() == me:
            captured.append(args[0])

    handle = head.register_forward_pre_hook(hook)
    try:
        yield captured
    finally:
        handle.remove()


@functools.lru_cache(maxsize=64)
def _cache_kwarg(model_type: Any) -> str:
    """transformers 5.2x renamed ``past_key_values`` to ``cache``; accept both."""
    params = inspect.signature(model_type.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


@_inference_mode
def final_hidden_forward(
    model: Any,
    input_ids: torch.Tensor,
    *,
    attention_mask: torch.Tensor | None = None,
    position_ids: torch.Tensor | None = None,
    cache: Any = None,
    logits_to_keep: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``model`` and return ``(logits, final_hidden)`` for the kept positions.

    ``final_hidden`` is the input of the LM head (after the final norm) -- the tensor the
    proof commits to. Capturing it with a hook on the LM head works for any HF causal LM,
    whatever its ``output_hidden_states`` convention. ``cache`` (a transformers ``Cache``) is
    updated in place.
    """
    kwargs: dict[str, Any] = {"input_ids": input_ids, "use_cache": cache is not None}
    if attention_mask is not None:
        kwargs["attention_mask"] = attention_mask
    if position_ids is not None:
        kwargs["position_ids"] = position_ids
    if cache is not None:
        kwargs[_cache_kwarg(model.__class__)] = cache
    if logits_to_keep:
        kwargs["logits_to_keep"] = logits_to_keep
    with _capture_lm_head_input(model) as captured:
        out = model(**kwargs)
    if len(captured) != 1:
        raise LatentError("could not capture the final hidden state of the model")
    return out.logits, captured[0]


# ---------------------------------------------------------------------------------------------
# Verification
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProofTolerances:
    """How far an honest proof may deviate from the verifier's recomputation.

    Every verification threshold of the subnet lives here. The fp32 defaults were measured
    with the tiny model on CPU (``tests/protocol/test_calibration.py`` re-measures them, and
    ``latent bench gauntlet`` reports the margins): 16 concurrent requests (one left-padded
    batch, prompts of 2-12 tokens, 64 tokens each, greedy and sampled) decoded with a KV
    cache, each verified alone by one prefill. Honest deviations: hidden values <= 4.3e-4
    relative (float16 rounding of the commitment, at most 2**-11, dominates; fp32
    decode-vs-prefill noise is ~1e-6); log-probs <= 1.9e-3 absolute at |lp| ~ 5-10 (float16
    rounding on the wire again); top-k agreement 100%; sampled draws replayed exactly with
    the draw at most ~1e-7 of probability mass from an interval boundary. Tolerances are
    ~2x those (the replay margin ~100x: a near-tie costs nothing in security, since a cheater
    can only pick between two adjacent tokens on a ~1e-5 sliver of draws). Against them: the
    same weights at bf16 match 9-17% of a chunk's values; at fp16 75-88% and log-probs off
    by up to 5e-3 (both rejected); other weights 0%.

    Re-measured over the challenge mix (``tests/protocol/test_calibration.py`` and the 1,000
    honest checks of ``tests/validator/test_gauntlet.py``: prompts of 1-~200 tokens, 8-96 new
    tokens, completion and chat, batch sizes 1-16): every committed value found, hidden
    values <= 4.7e-4 relative (the float16 bound 2**-11), log-probs <= 0.49 of their
    tolerance, greedy gap 0, replay off its interval by <= 6e-8 on ~1 token in 20,000; no
    false positive. ``latent bench gauntlet`` catches other weights, 1% noise on one MLP
    matrix, bf16, a dropped layer, random tokens with an honest proof, replayed answers and
    tampered prompts on 100% of checks; fp16 on 99-100%: its arithmetic errs by about the
    float16 rounding of the commitment itself, so a short fp16 answer (one partial chunk)
    can match. The tolerances are not tightened for it: below the float16 bound they would
    reject honest answers, and a miner challenged n times passes with probability ~0.01**n.
    """

    #: A committed hidden value matches when |miner - verifier| <= atol + rtol * |verifier|.
    hidden_rtol: float = 1e-3
    hidden_atol: float = 1e-3
    #: Fraction of a chunk's top-k values that must match (slack for near-ties at the k-th
    #: magnitude, which move one index in or out of the set on another device/kernel).
    min_chunk_match_fraction: float = 0.875
    #: Reported log-prob matches when |miner - verifier| <= atol + rtol * |verifier|;
    #: rtol covers float16 rounding on the wire (2**-11 relative).
    logprob_atol: float = 1e-3
    logprob_rtol: float = 1e-3
    #: Greedy: the chosen token's log-prob may be this far below the argmax (near-ties).
    greedy_tie_margin: float = 1e-3
    #: Sampled with a seed: the replayed uniform may lie this far (probability mass) outside
    #: the claimed token's CDF interval (float noise moving a boundary).
    replay_margin: float = 1e-5
    #: Sampled without a replayable seed, or a replay miss at a filter boundary: slack on
    #: the k-th largest logit (top-k) and on the nucleus mass (top-p).
    sampling_margin: float = 1e-3
    #: Fraction of sampled tokens that may miss exact replay and still pass the looser
    #: top-k/top-p membership check (Token-DiFR's honest exact-match rate is > 98% on GPUs;
    #: fp32 on CPU replays 100%).
    max_replay_miss_fraction: float = 0.02

    @classmethod
    def for_dtype(cls, dtype: torch.dtype) -> ProofTolerances:
        """Tolerances for a reference model run in ``dtype``.

        fp32 values are measured (see class doc). For half precision the prover's decode and
        the verifier's prefill differ by a few units in the last place (bf16 ulp ~ 0.8%).
        Measured on CPU, same 16-request batch: bf16 hidden values <= 0.6% relative, 96-100%
        top-k agreement, log-probs <= 0.034; fp16 <= 0.15%, 96-100%, <= 0.008. The values
        below add margin; re-measure them on the GPU the subnet pins (other kernels).
        """
        import torch

        if dtype == torch.float32:
            return cls()
        return cls(
            hidden_rtol=4e-2,
            hidden_atol=2e-2,
            min_chunk_match_fraction=0.6,
            logprob_atol=0.1,
            logprob_rtol=2e-2,
            greedy_tie_margin=0.1,
            replay_margin=2e-2,
            sampling_margin=0.05,
            max_replay_miss_fraction=0.05,
        )


DEFAULT_TOLERANCES = ProofTolerances()


@dataclass(frozen=True)
class ProofVerdict:
    """Outcome of :func:`verify_inference`, with the measured deviations."""

    ok: bool
    reason: str
    chunks_checked: int = 0
    #: Lowest fraction of a chunk's top-k values that matched (1.0 when perfect).
    min_chunk_match_fraction: float = 1.0
    #: Largest relative deviation among matched hidden values.
    max_hidden_rel_deviation: float = 0.0
    #: Largest |reported - recomputed| token log-prob.
    max_logprob_deviation: float = 0.0
    #: Largest (argmax log-prob - chosen log-prob) over greedy tokens.
    max_greedy_gap: float = 0.0
    #: Sampled tokens checked by exact replay, and how many the replay picked exactly.
    replayed_tokens: int = 0
    replay_exact: int = 0
    #: Largest replay distance (probability mass) among tokens accepted by replay.
    max_replay_distance: float = 0.0
    per_chunk_match: tuple[float, ...] = field(default_factory=tuple)


def _check_chunk(
    coeffs: Sequence[int], hidden: torch.Tensor, tol: ProofTolerances
) -> tuple[float, float]:
    """(fraction of matching values, max relative deviation among the matches)."""
    indices, values = _select_topk(hidden, len(coeffs))
    matched, max_rel = 0, 0.0
    for idx, ref in zip(indices, values, strict=True):
        code = _evaluate(coeffs, idx % FIELD_PRIME)
        if code > _F16_MAX_FINITE_CODE:
            continue
        claimed = _f16_value(code)
        dev = abs(claimed - ref)
        if dev <= tol.hidden_atol + tol.hidden_rtol * abs(ref):
            matched += 1
            max_rel = max(max_rel, dev / max(abs(ref), 1e-12))
    return matched / max(1, len(indices)), max_rel


def _sampling_violation(
    logits: torch.Tensor, token: int, params: SamplingParams, tol: ProofTolerances
) -> str | None:
    """Why ``token`` could not have been drawn under ``params`` from ``logits`` (or None),
    whatever the random draw: the membership check behind exact replay."""
    import torch

    scaled = logits.double() / params.temperature
    if params.top_k > 0 and params.top_k < scaled.numel():
        kth = torch.topk(scaled, params.top_k).values[-1].item()
        if scaled[token].item() < kth - tol.sampling_margin / params.temperature:
            return f"token {token} is outside the top-{params.top_k}"
        scaled = torch.where(scaled >= kth, scaled, torch.full_like(scaled, -math.inf))
    probs = torch.softmax(scaled, dim=-1)
    p_tok = probs[token].item()
    if p_tok <= 0.0:
        return f"token {token} has probability 0 under the sampling rules"
    if params.top_p < 1.0:
        # Mass of tokens strictly more likely than the chosen one must be < top_p, or the
        # nucleus would have closed before reaching it.
        above = probs[probs > p_tok * (1 + 1e-9)].sum().item()
        if above >= params.top_p + tol.sampling_margin:
            return f"token {token} is outside the top-p={params.top_p} nucleus (mass above {above:.4f})"
    return None


@_inference_mode
def verify_inference(
    model: Any,
    prompt_token_ids: Sequence[int],
    output_token_ids: Sequence[int],
    params: SamplingParams,
    proof: InferenceProof,
    *,
    seed: int | None = None,
    tolerances: ProofTolerances | None = None,
) -> ProofVerdict:
    """Check ``proof`` for a completion with ONE prefill pass of the reference ``model``.

    Checks, in order: the proof covers exactly ``output_token_ids``; every chunk's hidden-state
    commitment matches the recomputed final hidden states (at least
    ``min_chunk_match_fraction`` of its top-k values within tolerance); every reported
    log-prob matches; greedy tokens are the argmax up to ``greedy_tie_margin``; sampled tokens
    are replayed exactly from ``seed`` (the request's, or the one the miner reported): each
    must be the token the sampling rule picks from the verifier's own distribution with the
    same uniform, up to ``replay_margin``; at most ``max_replay_miss_fraction`` of them may
    miss and still lie inside the top-k / top-p set (filter-boundary near-ties). Without a
    seed, sampled tokens only get the membership check. ``tolerances`` default to
    :meth:`ProofTolerances.for_dtype` of the model's dtype.
    """
    import torch

    tol = tolerances or ProofTolerances.for_dtype(next(model.parameters()).dtype)
    n = len(output_token_ids)
    if n == 0 or proof.num_tokens != n or len(proof.token_logprobs) != n:
        return ProofVerdict(False, f"proof covers {proof.num_tokens} tokens, completion has {n}")
    lengths = _chunk_lengths(n)
    if len(proof.chunk_commitments) != len(lengths) or any(
        len(c) != chunk_topk(m) for c, m in zip(proof.chunk_commitments, lengths, strict=True)
    ):
        return ProofVerdict(False, "proof chunk layout does not match the completion length")
    if not prompt_token_ids:
        return ProofVerdict(False, "empty prompt")
    vocab = model.get_output_embeddings().weight.shape[0]
    if any(not 0 <= t < vocab for t in output_token_ids):
        return ProofVerdict(False, "completion contains a token id outside the vocabulary")
    seed = params.seed if params.seed is not None else seed
    if params.seed is not None and seed != params.seed:
        return ProofVerdict(False, "reported seed differs from the request's seed")

    device = next(model.parameters()).device
    ids = list(prompt_token_ids) + list(output_token_ids[:-1])
    input_ids = torch.tensor([ids], dtype=torch.long, device=device)
    logits, hidden = final_hidden_forward(model, input_ids)
    start = len(prompt_token_ids) - 1  # position whose output is the first generated token
    logits = logits[0, start:].float()
    hidden = hidden[0, start:]
    logprobs = torch.log_softmax(logits, dim=-1)

    fractions: list[float] = []
    max_rel = 0.0
    for c, (coeffs, m) in enumerate(zip(proof.chunk_commitments, lengths, strict=True)):
        lo = c * CHUNK_TOKENS
        frac, rel = _check_chunk(coeffs, hidden[lo : lo + m], tol)
        fractions.append(frac)
        max_rel = max(max_rel, rel)
    measured: dict[str, Any] = {
        "chunks_checked": len(lengths),
        "min_chunk_match_fraction": min(fractions),
        "max_hidden_rel_deviation": max_rel,
        "per_chunk_match": tuple(fractions),
    }
    bad = [c for c, f in enumerate(fractions) if f < tol.min_chunk_match_fraction]
    if bad:
        return ProofVerdict(
            False,
            f"hidden-state commitment mismatch in chunk {bad[0]} "
            f"({fractions[bad[0]]:.0%} of values match)",
            **measured,
        )

    tokens = torch.tensor(list(output_token_ids), device=logprobs.device)
    chosen = logprobs.gather(1, tokens[:, None])[:, 0].cpu().tolist()
    best = logprobs.max(dim=-1).values.cpu().tolist()
    max_lp_dev, max_gap = 0.0, 0.0
    for i, (reported, ref) in enumerate(zip(proof.token_logprobs, chosen, strict=True)):
        dev = abs(reported - ref)
        max_lp_dev = max(max_lp_dev, dev)
        if dev > tol.logprob_atol + tol.logprob_rtol * abs(ref):
            return ProofVerdict(
                False,
                f"log-prob of token {i} is {reported:.4f}, recomputed {ref:.4f}",
                max_logprob_deviation=dev,
                **measured,
            )
    measured["max_logprob_deviation"] = max_lp_dev
    if params.greedy:
        for i in range(n):
            gap = best[i] - chosen[i]
            max_gap = max(max_gap, gap)
            if gap > tol.greedy_tie_margin:
                return ProofVerdict(
                    False,
                    f"greedy token {i} is not the argmax (log-prob gap {gap:.4f})",
                    max_greedy_gap=gap,
                    **measured,
                )
        return ProofVerdict(True, "ok", max_greedy_gap=max_gap, **measured)
    return _verify_sampled(logits, output_token_ids, params, seed, tol, measured)


def _verify_sampled(
    logits: torch.Tensor,
    output_token_ids: Sequence[int],
    params: SamplingParams,
    seed: int | None,
    tol: ProofTolerances,
    measured: dict[str, Any],
) -> ProofVerdict:
    """Exact replay of the miner's draws from ``seed`` (module ``protocol.sampling``)."""
    generator = request_generator(seed) if seed is not None else None
    exact, misses, max_dist = 0, 0, 0.0
    allowed_misses = math.floor(tol.max_replay_miss_fraction * len(output_token_ids))
    for i, token in enumerate(output_token_ids):
        if generator is not None:
            u = next_uniform(generator)
            dist = replay_distance(sampling_cdf(logits[i], params), int(token), u)
            if dist == 0.0:
                exact += 1
                continue
            if dist <= tol.replay_margin:
                max_dist = max(max_dist, dist)
                continue
            misses += 1
            if misses > allowed_misses:
                return ProofVerdict(
                    False,
                    f"sampled token {i} is not the seeded draw "
                    f"(replay off by {dist:.2e} of probability mass; {misses} misses)",
                    replayed_tokens=i + 1,
                    replay_exact=exact,
                    **measured,
                )
        why = _sampling_violation(logits[i], int(token), params, tol)
        if why is not None:
            return ProofVerdict(False, f"sampled token {i}: {why}", **measured)
    return ProofVerdict(
        True,
        "ok" if generator is not None else "ok (no seed: membership check only)",
        replayed_tokens=len(output_token_ids) if generator is not None else 0,
        replay_exact=exact,
        max_replay_distance=max_dist,
        **measured,
    )
