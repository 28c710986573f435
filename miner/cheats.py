"""Cheating miners: the engines ``latent bench gauntlet`` and ``latent localnet --cheat`` run.

A miner that cheats is a real :class:`miner.engine.InferenceEngine` built from the honest
model directory (:func:`build_engine`), served by an ordinary ``latent miner run --cheat
KIND``, so a validator sees exactly what a dishonest miner would send: tokens, a proof, a
seed. Cheats that only change the model (weights, precision, depth) are the plain engine over
a changed model; cheats that change what is answered are small subclasses overriding the
public ``generate`` / ``stream``. The validator's gauntlet (``validator.gauntlet``) measures
how often each is caught.

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
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers.utils import logging as hf_logging

from chain.errors import ConfigError
from miner.engine import InferenceEngine
from miner.types import GenerationRequest, GenerationResult, TokenDelta
from protocol.proof import CHUNK_TOKENS, InferenceProof, chunk_commitment, final_hidden_forward
from protocol.sampling import SamplingParams

__all__ = [
    "CHEATS",
    "CHEAT_KINDS",
    "HONEST",
    "PERTURBATION_REL_STD",
    "Cheat",
    "RandomTokensEngine",
    "ReplayEngine",
    "SlowEngine",
    "TamperedPromptEngine",
    "build_engine",
    "drop_last_layers",
    "perturb_layer",
    "prove_completion",
    "redraw_weights",
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
    model_id: str | None = None,
) -> InferenceEngine:
    """A (not started) engine serving ``model_dir`` the way miner ``kind`` does.

    ``kind`` is :data:`HONEST` or one of :data:`CHEAT_KINDS`; ``seed`` drives the cheat's
    randomness (other weights, noise, random tokens). The honest and the weight cheats run
    in fp32 (the pinned precision); ``low-precision``/``half-precision`` in bf16/fp16.
    ``model_id`` is the name served (default: ``kind``; a cheater claims the subnet's).
    """
    model_id = model_id or kind
    if kind != HONEST and kind not in CHEATS:
        raise ConfigError(
            f"unknown miner kind {kind!r}; choose {HONEST} or one of {', '.join(CHEAT_KINDS)}"
        )
    hf_logging.disable_progress_bar()
    dtype = {"low-precision": "bfloat16", "half-precision": "float16"}.get(kind, "float32")
    base = InferenceEngine.load(
        model_dir, device=device, dtype=dtype, max_batch_size=max_batch_size, model_id=model_id
    )
    model, tokenizer = base.model, base.tokenizer
    common: dict[str, Any] = {"model_id": model_id, "max_batch_size": max_batch_size}
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
