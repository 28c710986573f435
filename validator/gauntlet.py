"""The cheat gauntlet: named cheating miners, and how often the verifier catches each.

Every cheat is a real :class:`miner.engine.InferenceEngine` built from the honest model
directory (:func:`build_engine`), so a miner process can serve it (``--cheat KIND``) and the
validator sees exactly what a dishonest miner would send: tokens, a proof, a seed. Cheats
that only change the model (weights, precision, depth) are the plain engine over a changed
model; cheats that change what is answered are small subclasses overriding the public
``generate`` / ``stream``.

:func:`run_gauntlet` serves seeded challenges (``validator.challenge_prompts``) through the
honest engine and every cheat at several batch sizes (batch neighbours are the other
challenges of the group), verifies every answer with ONE prefill of the fp32 reference model
(``protocol.proof.verify_inference``), and reports detection rates per cheat, the honest
false-positive rate (greedy and sampled, per batch size), the honest deviations against the
tolerances, verification time and every check's reason. ``latent bench gauntlet``
(``validator.bench_cli``) prints it.

The cheats (:data:`CHEATS`), strongest form of each that is cheap to build:

* ``other-weights``: same architecture, every weight matrix redrawn from another seed with
  the same per-tensor std (for the generated presets: ``build_tiny_model``'s recipe, seed 1).
* ``perturbed-layer``: Gaussian noise of :data:`PERTURBATION_REL_STD` (1%) of the weight
  std on ONE matrix (the first decoder layer's MLP down-projection). Measured on the tiny
  model (100 checks each, batch sizes 1-16): noise of 0.1% of the std is caught on 95% of
  checks (mostly by the log-probs), 0.3% on 100% (4 of them by the log-probs alone), 1% on
  100% by the commitments with a wide margin (the best chunk matched 46% of its values,
  against 87.5% to pass). 1% is the smallest round figure caught by the commitments
  alone; any lossy change a cheater would make for speed (int4 quantisation noise is ~10%
  of the std) is far larger.
* ``low-precision`` / ``half-precision``: the pinned fp32 model run in bfloat16 / float16.
  bf16 is always caught (<= 40% of a chunk's values match). fp16 sits at the proof's
  resolution (commitments are float16 codes; fp16 arithmetic errs by about as much as that
  rounding): on the tiny model ~1% of checks -- short answers, one partial chunk -- pass.
  A miner is challenged many times per epoch, so it passes n checks with probability
  ~0.01**n; the tolerances are not tightened for it (honest fp32 deviations already use
  half of them, ``tests/protocol/test_calibration.py``).
* ``dropped-layers``: the last decoder layer skipped (the tiny preset has two).
* ``random-tokens``: uniformly random token ids with an HONEST proof over them: one prefill
  of the real model over prompt + random tokens gives matching commitments and log-probs, so
  only the sampling-rule checks (argmax / seeded replay) stand between it and a pass.
* ``replay``: answers from a cache of answers (with their proofs) to other prompts, with the
  same greedy/sampled mode, claiming the request's seed.
* ``tampered-prompt``: generates for the prompt without its first quarter (after BOS) --
  context truncation to save prefill -- and sends that completion with its proof.
* ``slow``: honest answers, plus latency (first token and every token). It must PASS
  verification; the report shows its lower tokens/s and higher TTFT, which scoring turns
  into a lower, non-zero weight.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import statistics
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.utils import logging as hf_logging

from chain.errors import ConfigError
from miner.engine import InferenceEngine
from miner.types import GenerationRequest, GenerationResult, TokenDelta
from protocol.proof import (
    CHUNK_TOKENS,
    DEFAULT_TOLERANCES,
    InferenceProof,
    ProofTolerances,
    ProofVerdict,
    chunk_commitment,
    final_hidden_forward,
    verify_inference,
)
from protocol.sampling import SamplingParams
from validator.challenge_prompts import ChallengeRequest, challenge_requests

__all__ = [
    "CHEATS",
    "CHEAT_KINDS",
    "HONEST",
    "PERTURBATION_REL_STD",
    "Cheat",
    "CheckRecord",
    "EngineSummary",
    "GauntletReport",
    "RandomTokensEngine",
    "ReplayEngine",
    "SlowEngine",
    "TamperedPromptEngine",
    "build_engine",
    "check_answer",
    "drop_last_layers",
    "honest_margins",
    "load_reference",
    "perturb_layer",
    "prove_completion",
    "redraw_weights",
    "run_gauntlet",
    "serve_challenges",
    "tampered_prompt",
]

HONEST = "honest"
#: Noise std of the ``perturbed-layer`` cheat, relative to the perturbed matrix's std.
PERTURBATION_REL_STD = 0.01
#: Default added latency of the ``slow`` cheat: 50 ms to the first token, then at most 100
#: tokens/s per request (deltas are held back; the engine keeps decoding meanwhile).
SLOW_TTFT_DELAY_S = 0.05
SLOW_PER_TOKEN_DELAY_S = 0.01


# ---------------------------------------------------------------------------------------------
# Model changes (pure functions of a loaded model; in place, under no_grad)
# ---------------------------------------------------------------------------------------------


@torch.no_grad()
def redraw_weights(model: torch.nn.Module, seed: int) -> None:
    """Replace every weight matrix / embedding by N(0, its own std) draws from ``seed``
    (norm weights stay): same architecture and scale, other weights."""
    generator = torch.Generator().manual_seed(seed)
    for name, param in sorted(model.named_parameters()):
        if name.endswith("norm.weight"):
            continue
        std = float(param.float().std())
        noise = torch.randn(param.shape, generator=generator, dtype=torch.float32) * std
        param.copy_(noise.to(param.dtype))


def _mlp_matrix_name(model: torch.nn.Module, layer: int) -> str:
    names = [n for n, p in model.named_parameters() if p.dim() == 2]
    prefix = f"layers.{layer}."
    mlp = [n for n in names if prefix in n and ".mlp." in n]
    if not mlp:
        raise ConfigError(f"cannot find an MLP weight matrix in decoder layer {layer}")
    down = [n for n in mlp if "down_proj" in n]
    return (down or mlp)[0]


@torch.no_grad()
def perturb_layer(model: torch.nn.Module, rel_std: float, seed: int, *, layer: int = 0) -> str:
    """Add N(0, (rel_std * std(W))^2) noise to one MLP matrix ``W`` of decoder ``layer``;
    returns the parameter's name."""
    name = _mlp_matrix_name(model, layer)
    param = dict(model.named_parameters())[name]
    generator = torch.Generator().manual_seed(seed)
    std = float(param.float().std())
    noise = torch.randn(param.shape, generator=generator, dtype=torch.float32) * (rel_std * std)
    param.add_(noise.to(param.dtype))
    return name


def drop_last_layers(model: Any, count: int) -> None:
    """Skip the last ``count`` decoder layers (HF decoders run ``layers[:num_hidden_layers]``
    and size their KV cache from the same field)."""
    total = int(model.config.num_hidden_layers)
    if not 0 < count < total:
        raise ConfigError(f"can drop 1..{total - 1} of {total} decoder layers, not {count}")
    model.config.num_hidden_layers = total - count
    model.model.layers = model.model.layers[: total - count]
    layer_types = getattr(model.config, "layer_types", None)
    if layer_types:
        model.config.layer_types = layer_types[: total - count]


@torch.inference_mode()
def prove_completion(
    model: Any, prompt_token_ids: Sequence[int], output_token_ids: Sequence[int]
) -> InferenceProof:
    """The proof an honest prover would send for ``output_token_ids``, from ONE prefill of
    ``model`` over prompt + output (commitments of the final hidden states that scored each
    output token, and each token's log-prob): what a cheater who picks tokens by other means
    can still compute exactly."""
    device = next(model.parameters()).device
    ids = list(prompt_token_ids) + list(output_token_ids[:-1])
    logits, hidden = final_hidden_forward(model, torch.tensor([ids], device=device))
    start = len(prompt_token_ids) - 1
    logprobs = torch.log_softmax(logits[0, start:].float(), dim=-1)
    tokens = torch.tensor(list(output_token_ids), device=device)
    chosen = logprobs.gather(1, tokens[:, None])[:, 0].tolist()
    rows = hidden[0, start:]
    chunks = [
        chunk_commitment(rows[lo : lo + CHUNK_TOKENS]) for lo in range(0, len(tokens), CHUNK_TOKENS)
    ]
    return InferenceProof.build(chunks, chosen)


# ---------------------------------------------------------------------------------------------
# Cheating engines that change what is answered
# ---------------------------------------------------------------------------------------------


async def _single_delta(result: Awaitable[GenerationResult]) -> AsyncIterator[TokenDelta]:
    res = await result
    yield TokenDelta(text=res.text, token_ids=res.output_token_ids, result=res)


class RandomTokensEngine(InferenceEngine):
    """Answers ``max_tokens`` uniformly random token ids, with an honest proof over them
    (:func:`prove_completion`), and the request's seed (or a random one) as if it sampled."""

    def __init__(self, *args: Any, rng_seed: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rng = random.Random(rng_seed)
        self._model_lock = threading.Lock()  # one forward at a time (the LM-head hook)

    def _prove(self, prompt: Sequence[int], output: Sequence[int]) -> InferenceProof:
        with self._model_lock:
            return prove_completion(self.model, prompt, output)

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        """A random completion and its honestly computed proof (no decoding at all)."""
        self.check_request(request)
        t0 = time.perf_counter()
        params = request.params
        tokens = tuple(self._rng.randrange(self.vocab_size) for _ in range(params.max_tokens))
        proof = await asyncio.to_thread(self._prove, request.prompt_token_ids, tokens)
        seed = None
        if not params.greedy:
            seed = params.seed if params.seed is not None else self._rng.getrandbits(63)
        elapsed = time.perf_counter() - t0
        return GenerationResult(
            prompt_token_ids=request.prompt_token_ids,
            output_token_ids=tokens,
            text=self.decode(tokens),
            finish_reason="length",
            proof=proof,
            time_to_first_token_s=elapsed,
            elapsed_s=elapsed,
            seed=seed,
        )

    def stream(self, request: GenerationRequest) -> AsyncIterator[TokenDelta]:
        """The whole random answer as one delta."""
        self.check_request(request)
        return _single_delta(self.generate(request))


#: Prompts the ``replay`` cheat answers honestly once, then serves to everybody.
_REPLAY_PROMPTS = (
    "Once upon a time there was a",
    "The quick brown fox jumps over the lazy dog and then",
    "In the beginning",
)
_REPLAY_LENGTHS = (8, 16, 32, 64, 96)


class ReplayEngine(InferenceEngine):
    """Serves cached answers (with their proofs) to other prompts.

    The cache is filled on :meth:`start` with honest answers to :data:`_REPLAY_PROMPTS` at
    several lengths, greedy and sampled; a request gets a cached answer of its own mode
    (greedy/sampled) for another prompt, the longest that fits ``max_tokens``, claiming the
    request's seed -- the replay most likely to pass.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._cache: list[tuple[GenerationRequest, GenerationResult]] = []

    async def start(self) -> None:
        """Start the engine, then fill the answer cache (honestly) if it is empty."""
        await super().start()
        if self._cache:
            return
        requests = [
            GenerationRequest(
                self.encode_prompt(prompt),
                SamplingParams(max_tokens=n, temperature=temp, seed=1234 + n),
            )
            for prompt in _REPLAY_PROMPTS
            for n in _REPLAY_LENGTHS
            for temp in (0.0, 0.9)
        ]
        results = await asyncio.gather(*(InferenceEngine.generate(self, r) for r in requests))
        self._cache = list(zip(requests, results, strict=True))

    def _replayed(self, request: GenerationRequest) -> GenerationResult:
        params = request.params
        candidates = [
            res
            for req, res in self._cache
            if req.params.greedy == params.greedy
            and req.prompt_token_ids != request.prompt_token_ids
        ]
        if not candidates:
            raise ConfigError("the replay cache is empty: start() the engine first")
        fitting = [r for r in candidates if len(r.output_token_ids) <= params.max_tokens]
        pool = fitting or candidates
        cached = max(pool, key=lambda r: len(r.output_token_ids))
        seed = cached.seed if params.greedy or params.seed is None else params.seed
        return dataclasses.replace(
            cached,
            prompt_token_ids=request.prompt_token_ids,
            seed=seed,
            time_to_first_token_s=0.0,
            elapsed_s=0.0,
        )

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        """A cached answer to another prompt."""
        self.check_request(request)
        return self._replayed(request)

    def stream(self, request: GenerationRequest) -> AsyncIterator[TokenDelta]:
        """The cached answer as one delta."""
        self.check_request(request)
        return _single_delta(self.generate(request))


def tampered_prompt(prompt_token_ids: Sequence[int], vocab_size: int) -> tuple[int, ...]:
    """The prompt a context-truncating miner continues: the first quarter after the first
    token (BOS) dropped (at least one token); a two-token prompt loses its first token, a
    one-token prompt has its token replaced."""
    ids = tuple(prompt_token_ids)
    if len(ids) == 1:
        return ((ids[0] + 1) % vocab_size,)
    if len(ids) == 2:
        return ids[1:]
    drop = max(1, (len(ids) - 1) // 4)
    return ids[:1] + ids[1 + drop :]


async def _with_prompt(
    deltas: AsyncIterator[TokenDelta], prompt: tuple[int, ...]
) -> AsyncIterator[TokenDelta]:
    async for delta in deltas:
        if delta.result is not None:
            delta = dataclasses.replace(
                delta, result=dataclasses.replace(delta.result, prompt_token_ids=prompt)
            )
        yield delta


class TamperedPromptEngine(InferenceEngine):
    """Generates for :func:`tampered_prompt` of each request and proves that, honestly."""

    def _tampered(self, request: GenerationRequest) -> GenerationRequest:
        self.check_request(request)
        ids = tampered_prompt(request.prompt_token_ids, self.vocab_size)
        return dataclasses.replace(request, prompt_token_ids=ids)

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        """The completion of the tampered prompt, claimed for the original one."""
        result = await super().generate(self._tampered(request))
        return dataclasses.replace(result, prompt_token_ids=request.prompt_token_ids)

    def stream(self, request: GenerationRequest) -> AsyncIterator[TokenDelta]:
        """Streamed completion of the tampered prompt."""
        return _with_prompt(super().stream(self._tampered(request)), request.prompt_token_ids)


class SlowEngine(InferenceEngine):
    """Honest answers, delivered late: ``ttft_delay_s`` before the first delta and
    ``per_token_delay_s`` per token after it (timings in the result include the delays)."""

    def __init__(
        self,
        *args: Any,
        ttft_delay_s: float = SLOW_TTFT_DELAY_S,
        per_token_delay_s: float = SLOW_PER_TOKEN_DELAY_S,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.ttft_delay_s = ttft_delay_s
        self.per_token_delay_s = per_token_delay_s

    async def _slowed(self, request: GenerationRequest) -> AsyncIterator[TokenDelta]:
        await asyncio.sleep(self.ttft_delay_s)
        added = self.ttft_delay_s
        async for delta in super().stream(request):
            pause = self.per_token_delay_s * len(delta.token_ids)
            await asyncio.sleep(pause)
            added += pause
            if delta.result is not None:
                res = delta.result
                delta = dataclasses.replace(
                    delta,
                    result=dataclasses.replace(
                        res,
                        time_to_first_token_s=res.time_to_first_token_s + self.ttft_delay_s,
                        elapsed_s=res.elapsed_s + added,
                    ),
                )
            yield delta

    def stream(self, request: GenerationRequest) -> AsyncIterator[TokenDelta]:
        """The honest stream, delayed."""
        self.check_request(request)
        return self._slowed(request)

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        """The honest result, delayed like the stream."""
        async for delta in self.stream(request):
            if delta.result is not None:
                return delta.result
        raise ConfigError("stream ended without a result")  # unreachable by design


# ---------------------------------------------------------------------------------------------
# The catalogue
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cheat:
    """A named cheating miner."""

    kind: str
    description: str
    #: True for a cheat whose answers are honest (``slow``): it must pass verification.
    passes_verification: bool = False


CHEATS: dict[str, Cheat] = {
    c.kind: c
    for c in (
        Cheat("other-weights", "same architecture, weights drawn from another seed"),
        Cheat(
            "perturbed-layer",
            f"Gaussian noise of {PERTURBATION_REL_STD:.0%} of the weight std on one MLP matrix",
        ),
        Cheat("low-precision", "the fp32 model run in bfloat16"),
        Cheat("half-precision", "the fp32 model run in float16"),
        Cheat("dropped-layers", "the last decoder layer skipped"),
        Cheat("random-tokens", "random token ids with an honestly computed proof over them"),
        Cheat("replay", "a cached answer (and proof) to another prompt"),
        Cheat("tampered-prompt", "generates for the prompt without its first quarter"),
        Cheat("slow", "honest, plus latency", passes_verification=True),
    )
}
CHEAT_KINDS: tuple[str, ...] = tuple(CHEATS)


def build_engine(
    kind: str,
    model_dir: str | Path,
    *,
    device: str | None = "cpu",
    max_batch_size: int = 16,
    seed: int = 1,
) -> InferenceEngine:
    """A (not started) engine serving ``model_dir`` the way miner ``kind`` does.

    ``kind`` is :data:`HONEST` or one of :data:`CHEAT_KINDS`; ``seed`` drives the cheat's
    randomness (other weights, noise, random tokens). The honest and the weight cheats run
    in fp32 (the pinned precision); ``low-precision``/``half-precision`` in bf16/fp16.
    """
    if kind != HONEST and kind not in CHEATS:
        raise ConfigError(
            f"unknown miner kind {kind!r}; choose {HONEST} or one of {', '.join(CHEAT_KINDS)}"
        )
    hf_logging.disable_progress_bar()
    dtype = {"low-precision": "bfloat16", "half-precision": "float16"}.get(kind, "float32")
    base = InferenceEngine.load(
        model_dir, device=device, dtype=dtype, max_batch_size=max_batch_size, model_id=kind
    )
    model, tokenizer = base.model, base.tokenizer
    common: dict[str, Any] = {"model_id": kind, "max_batch_size": max_batch_size}
    if kind == "other-weights":
        redraw_weights(model, seed)
    elif kind == "perturbed-layer":
        perturb_layer(model, PERTURBATION_REL_STD, seed)
    elif kind == "dropped-layers":
        drop_last_layers(model, 1)
    elif kind == "random-tokens":
        return RandomTokensEngine(model, tokenizer, rng_seed=seed, **common)
    elif kind == "replay":
        return ReplayEngine(model, tokenizer, **common)
    elif kind == "tampered-prompt":
        return TamperedPromptEngine(model, tokenizer, **common)
    elif kind == "slow":
        return SlowEngine(model, tokenizer, **common)
    return base


# ---------------------------------------------------------------------------------------------
# Serving and verifying
# ---------------------------------------------------------------------------------------------


def load_reference(model_dir: str | Path) -> Any:
    """The validator's reference: the pinned model in fp32 on CPU, through ``from_pretrained``
    (local files only)."""
    hf_logging.disable_progress_bar()
    model = AutoModelForCausalLM.from_pretrained(
        str(model_dir), local_files_only=True, dtype=torch.float32
    )
    return model.eval()


def _batches(n: int, batch_sizes: Sequence[int]) -> list[tuple[int, int, int]]:
    """Groups of ``n`` challenges, ``(start, stop, batch_size)``, cycling over
    ``batch_sizes``: every size gets the same number of groups, so checks are proportional
    to the batch size and serving time (decode steps) is about the same per size."""
    groups: list[tuple[int, int, int]] = []
    pos, i = 0, 0
    while pos < n:
        size = batch_sizes[i % len(batch_sizes)]
        stop = min(n, pos + size)
        groups.append((pos, stop, size))
        pos, i = stop, i + 1
    return groups


async def serve_challenges(
    engine: InferenceEngine,
    challenges: Sequence[ChallengeRequest],
    batch_sizes: Sequence[int],
) -> tuple[list[tuple[int, GenerationResult]], float]:
    """Serve ``challenges`` through ``engine`` in groups cycling over ``batch_sizes``, each group
    concurrently (its members are each other's batch neighbours). Returns
    ``[(batch_size, result)]`` in challenge order and the serving wall time."""
    await engine.start()
    out: list[tuple[int, GenerationResult]] = []
    t0 = time.perf_counter()
    try:
        for start, stop, size in _batches(len(challenges), batch_sizes):
            group = [
                GenerationRequest(c.prompt_token_ids, c.params) for c in challenges[start:stop]
            ]
            results = await asyncio.gather(*(engine.generate(r) for r in group))
            out += [(size, r) for r in results]
    finally:
        await engine.stop()
    return out, time.perf_counter() - t0


@dataclass(frozen=True)
class CheckRecord:
    """One verified answer."""

    engine: str
    batch_size: int
    kind: str  # "text" | "chat"
    greedy: bool
    prompt_tokens: int
    output_tokens: int
    ok: bool
    reason: str
    #: Lowest fraction of a chunk's committed values that matched (1.0 for honest answers).
    min_chunk_match: float
    verify_s: float
    ttft_s: float
    elapsed_s: float


def check_answer(
    reference: Any,
    engine_name: str,
    challenge: ChallengeRequest,
    batch_size: int,
    result: GenerationResult,
    tolerances: ProofTolerances | None = None,
) -> tuple[CheckRecord, ProofVerdict]:
    """Verify ``result`` against the challenge the validator sent (never the prompt the miner
    claims) with one prefill of ``reference``."""
    t0 = time.perf_counter()
    verdict = verify_inference(
        reference,
        challenge.prompt_token_ids,
        result.output_token_ids,
        challenge.params,
        result.proof,
        seed=result.seed,
        tolerances=tolerances,
    )
    record = CheckRecord(
        engine=engine_name,
        batch_size=batch_size,
        kind=challenge.kind,
        greedy=challenge.params.greedy,
        prompt_tokens=len(challenge.prompt_token_ids),
        output_tokens=len(result.output_token_ids),
        ok=verdict.ok,
        reason=verdict.reason,
        min_chunk_match=verdict.min_chunk_match_fraction,
        verify_s=time.perf_counter() - t0,
        ttft_s=result.time_to_first_token_s,
        elapsed_s=result.elapsed_s,
    )
    return record, verdict


# ---------------------------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------------------------


def _reason_class(reason: str) -> str:
    """A reason without its numbers, for histograms."""
    for key in (
        "hidden-state commitment",
        "greedy token",
        "log-prob of token",
        "not the seeded draw",
        "top-p",
        "top-",
        "probability 0",
        "seed differs",
        "proof covers",
        "chunk layout",
    ):
        if key in reason:
            return key
    return reason


@dataclass(frozen=True)
class EngineSummary:
    """Outcome for one miner kind."""

    name: str
    description: str
    #: True when the miner's answers are honest (``honest``, ``slow``): rejections are
    #: false positives.
    should_pass: bool
    checks: int
    rejected: int
    #: ``rejected / checks``: the detection rate of a cheat, the false-positive rate of an
    #: honest miner.
    rejection_rate: float
    #: Rejections per (greedy|sampled, batch size): ``{"greedy/bs16": [rejected, checks]}``.
    by_mode_and_batch: dict[str, list[int]]
    reasons: dict[str, int]
    #: Highest ``min_chunk_match`` over the checks: how close the closest answer came to
    #: passing the commitment check (tolerance: ``min_chunk_match_fraction``).
    max_chunk_match: float
    #: Up to 5 reasons of checks that went the wrong way (missed cheats, false positives).
    wrong_way: list[str]
    output_tokens: int
    serve_wall_s: float
    #: Generated tokens per second of serving wall time, and mean time to first token.
    tokens_per_s: float
    ttft_s_mean: float


def _summarise(
    name: str,
    description: str,
    should_pass: bool,
    records: Sequence[CheckRecord],
    serve_wall_s: float,
) -> EngineSummary:
    rejected = [r for r in records if not r.ok]
    by: dict[str, list[int]] = {}
    for r in records:
        key = f"{'greedy' if r.greedy else 'sampled'}/bs{r.batch_size}"
        cell = by.setdefault(key, [0, 0])
        cell[0] += not r.ok
        cell[1] += 1
    wrong = [r for r in records if r.ok != should_pass]
    tokens = sum(r.output_tokens for r in records)
    return EngineSummary(
        name=name,
        description=description,
        should_pass=should_pass,
        checks=len(records),
        rejected=len(rejected),
        rejection_rate=len(rejected) / max(1, len(records)),
        by_mode_and_batch=dict(sorted(by.items())),
        reasons=dict(Counter(_reason_class(r.reason) for r in records).most_common()),
        max_chunk_match=max((r.min_chunk_match for r in records), default=0.0),
        wrong_way=[f"{r.kind} bs{r.batch_size} p{r.prompt_tokens}: {r.reason}" for r in wrong[:5]],
        output_tokens=tokens,
        serve_wall_s=serve_wall_s,
        tokens_per_s=tokens / serve_wall_s if serve_wall_s > 0 else 0.0,
        ttft_s_mean=statistics.fmean(r.ttft_s for r in records) if records else 0.0,
    )


def honest_margins(verdicts: Sequence[ProofVerdict], tol: ProofTolerances) -> dict[str, Any]:
    """Largest honest deviations, each as ``[measured, tolerance]`` (the chunk match is a
    floor, the others ceilings)."""
    replayed = sum(v.replayed_tokens for v in verdicts)
    exact = sum(v.replay_exact for v in verdicts)
    return {
        "min_chunk_match_fraction": [
            min((v.min_chunk_match_fraction for v in verdicts), default=1.0),
            tol.min_chunk_match_fraction,
        ],
        "max_hidden_rel_deviation": [
            max((v.max_hidden_rel_deviation for v in verdicts), default=0.0),
            tol.hidden_rtol,
        ],
        # Allowed: atol + rtol * |log-prob| (float16 on the wire is relative).
        "max_logprob_deviation": [
            max((v.max_logprob_deviation for v in verdicts), default=0.0),
            {"atol": tol.logprob_atol, "rtol": tol.logprob_rtol},
        ],
        "max_greedy_gap": [
            max((v.max_greedy_gap for v in verdicts), default=0.0),
            tol.greedy_tie_margin,
        ],
        "max_replay_distance": [
            max((v.max_replay_distance for v in verdicts), default=0.0),
            tol.replay_margin,
        ],
        "replay_miss_fraction": [
            (replayed - exact) / replayed if replayed else 0.0,
            tol.max_replay_miss_fraction,
        ],
    }


@dataclass(frozen=True)
class GauntletReport:
    """Everything :func:`run_gauntlet` measured (``to_json`` for ``--json``)."""

    model: dict[str, Any]
    seed: int
    batch_sizes: tuple[int, ...]
    honest: EngineSummary
    cheats: dict[str, EngineSummary]
    #: ``[measured, tolerance]`` per deviation, over the honest checks.
    honest_margins: dict[str, Any]
    verify_s: dict[str, float]
    wall_s: float
    checks: list[CheckRecord] = field(default_factory=list)

    @property
    def detection_rates(self) -> dict[str, float]:
        """Rejected fraction per cheat (``slow`` should be 0: it is honest)."""
        return {k: s.rejection_rate for k, s in self.cheats.items()}

    def to_json(self, *, with_checks: bool = True) -> dict[str, Any]:
        """A JSON-able dict (per-check records included unless ``with_checks`` is False)."""
        data = dataclasses.asdict(self)
        data["batch_sizes"] = list(self.batch_sizes)
        data["detection_rates"] = self.detection_rates
        if not with_checks:
            data.pop("checks")
        return data


def _model_info(model_dir: Path, reference: Any, preset: str | None) -> dict[str, Any]:
    config = reference.config
    return {
        "path": str(model_dir),
        "preset": preset,
        "dtype": str(next(reference.parameters()).dtype).removeprefix("torch."),
        "hidden_size": int(config.hidden_size),
        "layers": int(config.num_hidden_layers),
        "parameters": sum(p.numel() for p in reference.parameters()),
        "torch_threads": torch.get_num_threads(),
    }


def _percentile(ordered: Sequence[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def run_gauntlet(
    model_dir: str | Path,
    *,
    checks_per_cheat: int = 100,
    honest_checks: int = 1000,
    batch_sizes: Sequence[int] = (1, 4, 16),
    seed: int = 0,
    cheats: Sequence[str] = CHEAT_KINDS,
    preset: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> GauntletReport:
    """Serve seeded challenges through the honest engine and every cheat in ``cheats``, at
    ``batch_sizes`` (groups cycle over them: checks are proportional to the size), and verify every answer with one
    prefill of the fp32 reference (tolerances for fp32: :data:`DEFAULT_TOLERANCES`).

    Each miner gets its own challenge set (``challenge_requests(seed + i, ...)``), so no
    cheat is tuned to the honest run. ``preset`` only labels the report.
    """
    if checks_per_cheat < 0 or honest_checks < 1 or not batch_sizes:
        raise ConfigError("need honest_checks >= 1, checks_per_cheat >= 0 and a batch size")
    t_start = time.perf_counter()
    model_dir = Path(model_dir)
    reference = load_reference(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    records: list[CheckRecord] = []
    summaries: dict[str, EngineSummary] = {}
    honest_verdicts: list[ProofVerdict] = []
    miners = [(HONEST, honest_checks)] + [(k, checks_per_cheat) for k in cheats]
    for index, (kind, n) in enumerate(miners):
        if n == 0:
            continue
        challenges = challenge_requests(seed + index, n, tokenizer)
        engine = build_engine(kind, model_dir, seed=seed + 1)
        served, wall = asyncio.run(serve_challenges(engine, challenges, batch_sizes))
        mine: list[CheckRecord] = []
        for challenge, (size, result) in zip(challenges, served, strict=True):
            record, verdict = check_answer(reference, kind, challenge, size, result)
            mine.append(record)
            if kind == HONEST:
                honest_verdicts.append(verdict)
        cheat = CHEATS.get(kind)
        summaries[kind] = _summarise(
            kind,
            cheat.description if cheat else "the pinned model, fp32",
            cheat.passes_verification if cheat else True,
            mine,
            wall,
        )
        records += mine
        if progress is not None:
            s = summaries[kind]
            progress(f"{kind}: {s.rejected}/{s.checks} rejected, {wall:.1f}s serving")
    verify_times = sorted(r.verify_s for r in records)
    honest = summaries.pop(HONEST)
    return GauntletReport(
        model=_model_info(model_dir, reference, preset),
        seed=seed,
        batch_sizes=tuple(batch_sizes),
        honest=honest,
        cheats=summaries,
        honest_margins=honest_margins(honest_verdicts, DEFAULT_TOLERANCES),
        verify_s={
            "mean": statistics.fmean(verify_times) if verify_times else 0.0,
            "p50": _percentile(verify_times, 0.5),
            "p95": _percentile(verify_times, 0.95),
            "total": sum(verify_times),
        },
        wall_s=time.perf_counter() - t_start,
        checks=records,
    )
