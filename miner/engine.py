"""Continuous-batching inference engine on transformers + torch, with proofs of inference.

Design (decisions where the issue is silent):

* **One batch, continuously refilled.** Running sequences share one left-padded KV cache
  (a transformers ``DynamicCache``), a 2-D attention mask and explicit per-row position ids.
  Each loop iteration (a) prefills newly arrived requests as a group and merges them into the
  running batch by left-padding the shorter cache with masked zeros, (b) runs one decode step
  for every row, (c) drops finished rows (``batch_select_indices``) and trims all-padding
  columns. A request therefore never waits for another request to finish. For caches that are
  not plain ``DynamicLayer`` stacks (sliding-window / hybrid models) merging is not attempted:
  requests are then admitted only when the batch is empty (dynamic batching).
* **Per-request randomness.** A sampled request gets its own CPU ``torch.Generator`` seeded
  with ``params.seed`` (a random seed when absent, reported in the result so a verifier can
  replay it) and draws exactly one uniform per token; the token is picked by inverse CDF over
  the filtered distribution (the rule is ``protocol.sampling``'s, which the verifier replays). Its tokens thus do not
  depend on batch neighbours (up to float noise in the logits), nor on the device's RNG.
  Filters apply in the order temperature -> top-k -> top-p (as transformers' warpers).
* **Greedy** is ``argmax`` (first index on exact ties), as ``model.generate(do_sample=False)``.
* **Output tokens** include the EOS token and the token that completed a stop string (the
  proof covers exactly these); the text omits special tokens and is cut before the first stop
  string. Streaming holds back text that could be the start of a stop string, and a trailing
  incomplete UTF-8 character.
* The batching loop runs in its own thread, started and stopped from the asyncio loop, and
  steps back to back while there is work: it never waits for the event loop between steps
  (a busy HTTP server used to delay every step by a loop iteration), and the loop no longer
  pays a thread hand-off per step. Requests reach it through a deque plus a
  ``threading.Event``; each step's deltas go back in one ``call_soon_threadsafe`` callback
  that feeds the per-request ``asyncio.Queue`` s, in order.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache, PreTrainedTokenizerBase

from chain.errors import ConfigError, LatentError
from miner.types import GenerationRequest, GenerationResult, TokenDelta
from protocol.openai import encode_chat, encode_text
from protocol.proof import CHUNK_TOKENS, InferenceProof, chunk_commitment, final_hidden_forward
from protocol.sampling import InvalidRequest, request_generator, sample_token

__all__ = ["EngineNotRunning", "InferenceEngine", "InferenceFailed", "resolve_device_dtype"]

log = logging.getLogger(__name__)

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
}


class InferenceFailed(LatentError):
    """The model failed while serving a request (e.g. out of memory); the request is lost."""


class EngineNotRunning(LatentError):
    """A request reached an engine whose batching loop is not running (call ``start()``)."""


def resolve_device_dtype(device: str | None, dtype: str | None) -> tuple[torch.device, torch.dtype]:
    """Pick device and dtype: CUDA with bf16 (fp16 where bf16 is unsupported), else CPU fp32.

    Either can be overridden (``device="cpu"``, ``dtype="bfloat16"``, ...); ``"auto"`` or None
    means automatic.
    """
    if device in (None, "auto"):
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            dev = torch.device(device)
        except RuntimeError as exc:
            raise ConfigError(f"unknown device {device!r}: use cpu, cuda or cuda:N") from exc
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"device {device!r} requested but CUDA is not available")
    if dtype in (None, "auto"):
        if dev.type == "cuda":
            return dev, torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return dev, torch.float32
    if dtype not in _DTYPES:
        raise ConfigError(f"unknown dtype {dtype!r}: use one of auto, {', '.join(_DTYPES)}")
    return dev, _DTYPES[dtype]


@dataclass(eq=False)
class _Sequence:
    """Mutable per-request state, owned by the engine."""

    request: GenerationRequest
    queue: asyncio.Queue[TokenDelta | BaseException]
    submitted_at: float
    generator: torch.Generator | None
    #: The seed of ``generator`` (the request's, or one the engine drew); None when greedy.
    seed: int | None = None
    #: False for ``generate``: intermediate deltas are not queued (the event loop wakes once
    #: per request instead of once per token).
    want_deltas: bool = True
    output_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    chunk_rows: list[torch.Tensor] = field(default_factory=list)
    commitments: list[tuple[int, ...]] = field(default_factory=list)
    first_token_at: float | None = None
    sent_tokens: int = 0
    sent_chars: int = 0
    finish_reason: str | None = None
    final_text: str = ""
    cancelled: bool = False
    done: bool = False
    #: An error was delivered (set on the event loop); later deltas are dropped.
    failed: bool = False


@dataclass
class _Batch:
    """The running batch: rows of ``seqs`` share one left-padded KV cache."""

    seqs: list[_Sequence]
    cache: Any
    attention_mask: torch.Tensor  # [B, L] (1 = real token), covers the cache
    positions: torch.Tensor  # [B] position id of each row's next input token
    last_tokens: torch.Tensor  # [B] the token each row feeds next


class InferenceEngine:
    """Serves :class:`GenerationRequest` s from one HF causal LM with continuous batching.

    Build with :meth:`load` (or the constructor, passing a loaded model and tokenizer), then
    ``await start()`` inside the running event loop; ``generate`` / ``stream`` may then be
    called concurrently.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: PreTrainedTokenizerBase,
        *,
        model_id: str,
        max_batch_size: int = 16,
        max_context: int | None = None,
    ) -> None:
        if max_batch_size < 1:
            raise ConfigError(f"max_batch_size must be >= 1, got {max_batch_size}")
        self.model = model
        self.tokenizer = tokenizer
        self.model_id = model_id
        self.max_batch_size = max_batch_size
        config = model.config
        limits = [getattr(config, "max_position_embeddings", None), max_context]
        tok_max = getattr(tokenizer, "model_max_length", None)
        if isinstance(tok_max, int) and tok_max < 10_000_000:
            limits.append(tok_max)
        self.max_context: int = min([x for x in limits if x] or [2048])
        self.vocab_size: int = int(model.get_output_embeddings().weight.shape[0])
        eos = getattr(model.generation_config, "eos_token_id", None)
        eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if tokenizer.eos_token_id is not None:
            eos_ids.add(tokenizer.eos_token_id)
        self.eos_token_ids: frozenset[int] = frozenset(int(e) for e in eos_ids)
        pad = tokenizer.pad_token_id
        self._pad_id = int(pad if pad is not None else min(self.eos_token_ids, default=0))
        self._device = next(model.parameters()).device
        self._pending: deque[_Sequence] = deque()
        self._batch: _Batch | None = None
        self._wakeup = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        model_path: str | Path,
        *,
        device: str | None = None,
        dtype: str | None = None,
        max_batch_size: int = 16,
        model_id: str | None = None,
    ) -> InferenceEngine:
        """Load a causal LM + tokenizer from a local directory (or the local HF cache; never
        downloads) onto ``device`` / ``dtype`` (see :func:`resolve_device_dtype`)."""
        dev, torch_dtype = resolve_device_dtype(device, dtype)
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(model_path), local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(
                str(model_path), local_files_only=True, dtype=torch_dtype
            )
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"cannot load model {str(model_path)!r} from local files ({exc}); "
                "pass a directory written by save_pretrained, e.g. `latent model tiny`"
            ) from exc
        model = model.to(dev).eval()  # type: ignore[arg-type]
        name = model_id or Path(str(model_path)).name or str(model_path)
        return cls(model, tokenizer, model_id=name, max_batch_size=max_batch_size)

    @property
    def device(self) -> torch.device:
        """Where the model runs."""
        return self._device

    @property
    def dtype(self) -> torch.dtype:
        """The model's parameter dtype."""
        return next(self.model.parameters()).dtype

    # -- tokenization -----------------------------------------------------------------------

    def encode_prompt(self, prompt: str) -> tuple[int, ...]:
        """Token ids of a plain-text prompt (``protocol.openai.encode_text``)."""
        return encode_text(self.tokenizer, prompt)

    def encode_chat(self, messages: list[dict[str, str]]) -> tuple[int, ...]:
        """Token ids of chat ``messages`` (``protocol.openai.encode_chat``)."""
        return encode_chat(self.tokenizer, messages)

    def decode(self, token_ids: list[int] | tuple[int, ...]) -> str:
        """Text of ``token_ids`` without special tokens."""
        return str(self.tokenizer.decode(list(token_ids), skip_special_tokens=True))

    def check_request(self, request: GenerationRequest) -> None:
        """Raise :class:`InvalidRequest` if the request cannot be served by this model."""
        n = len(request.prompt_token_ids)
        if n == 0:
            raise InvalidRequest("prompt must not be empty", param="prompt")
        if n >= self.max_context:
            raise InvalidRequest(
                f"This model's maximum context length is {self.max_context} tokens. "
                f"However, your prompt has {n} tokens.",
                param="prompt",
            )
        if any(not 0 <= t < self.vocab_size for t in request.prompt_token_ids):
            raise InvalidRequest(
                f"prompt token ids must be in [0, {self.vocab_size})", param="prompt"
            )
        request.params.validate(max_new_tokens_limit=self.max_context - n)

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True while the batching loop runs."""
        return self._thread is not None and self._thread.is_alive() and not self._stopping

    async def start(self) -> None:
        """Start the batching loop in the running asyncio loop (idempotent)."""
        if self.running:
            return
        self._loop = asyncio.get_running_loop()
        self._stopping = False
        self._wakeup = threading.Event()
        self._thread = threading.Thread(
            target=self._thread_main, name=f"engine:{self.model_id}", daemon=True
        )
        self._thread.start()

    async def stop(self) -> None:
        """Stop the loop; requests still queued or running fail with :class:`EngineNotRunning`."""
        self._stopping = True
        self._wakeup.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)
            self._thread = None
        await asyncio.sleep(0)  # deliver the last step's deltas before failing the rest
        stopped = EngineNotRunning("the inference engine stopped before this request finished")
        for seq in [*self._pending, *(self._batch.seqs if self._batch else [])]:
            self._fail(seq, stopped)
        self._pending.clear()
        self._batch = None

    @property
    def queue_depth(self) -> int:
        """Requests waiting plus running (for 429 decisions)."""
        batch = self._batch  # the engine thread may replace it meanwhile
        live = [*self._pending, *(batch.seqs if batch is not None else [])]
        return sum(1 for s in live if not s.done and not s.cancelled)

    # -- requests ---------------------------------------------------------------------------

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        """Serve ``request`` to completion (only the final delta reaches the event loop)."""
        async for delta in self._submit(request, want_deltas=False):
            if delta.result is not None:
                return delta.result
        raise InferenceFailed("generation ended without a result")  # unreachable by design

    def stream(self, request: GenerationRequest) -> AsyncIterator[TokenDelta]:
        """Serve ``request`` as a stream of :class:`TokenDelta`; the last one carries the
        result. Validation errors raise here, before the first delta; leaving the iteration
        early cancels the request."""
        return self._submit(request, want_deltas=True)

    def _submit(
        self, request: GenerationRequest, *, want_deltas: bool
    ) -> AsyncIterator[TokenDelta]:
        self.check_request(request)
        if not self.running:
            raise EngineNotRunning("the inference engine is not running; call start() first")
        params = request.params
        generator, seed = None, None
        if not params.greedy:
            seed = params.seed if params.seed is not None else secrets.randbits(63)
            generator = request_generator(seed)
        seq = _Sequence(
            request=request,
            queue=asyncio.Queue(),
            submitted_at=time.perf_counter(),
            generator=generator,
            seed=seed,
            want_deltas=want_deltas,
        )
        self._pending.append(seq)
        self._wakeup.set()
        return self._drain(seq)

    async def _drain(self, seq: _Sequence) -> AsyncIterator[TokenDelta]:
        try:
            while True:
                item = await seq.queue.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
                if item.result is not None:
                    return
        finally:
            if not seq.done:
                seq.cancelled = True

    # -- the batching loop (engine thread) ---------------------------------------------------

    def _thread_main(self) -> None:
        try:
            self._serve_forever()
        except BaseException as exc:  # never leave requests hanging on a dead thread
            log.exception("inference engine thread died")
            self._stopping = True
            batch = self._batch
            seqs = [*self._pending, *(batch.seqs if batch is not None else [])]
            self._post(self._fail_all, seqs, InferenceFailed(f"inference engine died: {exc}"))

    def _serve_forever(self) -> None:
        while not self._stopping:
            if not self._pending and self._batch is None:
                self._wakeup.wait()
                self._wakeup.clear()
                continue
            admitted = self._take_admissible()
            try:
                deltas = self._step(admitted)
            except (RuntimeError, ValueError, IndexError, LatentError) as exc:
                log.exception("inference step failed; failing the running requests")
                failure = InferenceFailed(f"inference failed: {exc}")
                seqs = [*admitted, *(self._batch.seqs if self._batch else [])]
                self._batch = None
                self._post(self._fail_all, seqs, failure)
                continue
            if deltas:
                self._post(self._deliver, deltas)

    def _post(self, callback: Any, *args: Any) -> None:
        """Run ``callback(*args)`` on the event loop (FIFO with earlier posts)."""
        loop = self._loop
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the loop closed under us: nobody is left to tell
            self._stopping = True

    # -- event-loop side ----------------------------------------------------------------------

    @staticmethod
    def _deliver(deltas: list[tuple[_Sequence, TokenDelta]]) -> None:
        for seq, delta in deltas:
            if not seq.failed and (seq.want_deltas or delta.result is not None):
                seq.queue.put_nowait(delta)

    def _fail_all(self, seqs: list[_Sequence], exc: BaseException) -> None:
        for seq in seqs:
            self._fail(seq, exc)

    def _take_admissible(self) -> list[_Sequence]:
        while self._pending and self._pending[0].cancelled:
            self._pending.popleft().done = True
        running = len(self._batch.seqs) if self._batch else 0
        if running and not _mergeable(self._batch.cache if self._batch else None):
            return []
        room = self.max_batch_size - running
        admitted: list[_Sequence] = []
        while self._pending and len(admitted) < room:
            seq = self._pending.popleft()
            if seq.cancelled:
                seq.done = True
                continue
            admitted.append(seq)
        return admitted

    def _fail(self, seq: _Sequence, exc: BaseException) -> None:
        if not seq.done:
            seq.done = True
            seq.failed = True
            seq.queue.put_nowait(exc)

    # -- the batching loop (engine thread; pure torch work + bookkeeping) ---------------------

    @torch.inference_mode()
    def _step(self, admitted: list[_Sequence]) -> list[tuple[_Sequence, TokenDelta]]:
        deltas: list[tuple[_Sequence, TokenDelta]] = []
        self._drop_finished()
        if admitted:
            group, logits, hidden = self._prefill(admitted)
            deltas += self._advance(group.seqs, logits, hidden)
            self._batch = group if self._batch is None else _merge(self._batch, group)
            self._sync_last_tokens()
            self._drop_finished()
        batch = self._batch
        if batch is None:
            return deltas
        mask = torch.cat(
            [batch.attention_mask, torch.ones_like(batch.attention_mask[:, :1])], dim=1
        )
        logits, hidden = final_hidden_forward(
            self.model,
            batch.last_tokens[:, None],
            attention_mask=mask,
            position_ids=batch.positions[:, None],
            cache=batch.cache,
            logits_to_keep=1,
        )
        batch.attention_mask = mask
        batch.positions = batch.positions + 1
        deltas += self._advance(batch.seqs, logits[:, -1], hidden[:, -1])
        self._sync_last_tokens()
        return deltas

    def _prefill(self, seqs: list[_Sequence]) -> tuple[_Batch, torch.Tensor, torch.Tensor]:
        prompts = [list(s.request.prompt_token_ids) for s in seqs]
        width = max(len(p) for p in prompts)
        ids = torch.full((len(seqs), width), self._pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for row, prompt in enumerate(prompts):
            ids[row, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
            mask[row, width - len(prompt) :] = 1
        ids, mask = ids.to(self._device), mask.to(self._device)
        # Padding positions get id 1 (as transformers' generate); they are masked anyway.
        position_ids = (mask.cumsum(dim=1) - 1).clamp(min=0).masked_fill(mask == 0, 1)
        cache = DynamicCache(config=self.model.config)
        logits, hidden = final_hidden_forward(
            self.model,
            ids,
            attention_mask=mask,
            position_ids=position_ids,
            cache=cache,
            logits_to_keep=1,
        )
        group = _Batch(
            seqs=list(seqs),
            cache=cache,
            attention_mask=mask,
            positions=mask.sum(dim=1),
            last_tokens=torch.zeros(len(seqs), dtype=torch.long, device=self._device),
        )
        return group, logits[:, -1], hidden[:, -1]

    def _sync_last_tokens(self) -> None:
        batch = self._batch
        if batch is None:
            return
        last = [s.output_ids[-1] if s.output_ids else self._pad_id for s in batch.seqs]
        batch.last_tokens = torch.tensor(last, dtype=torch.long, device=self._device)

    def _drop_finished(self) -> None:
        batch = self._batch
        if batch is None:
            return
        keep = [i for i, s in enumerate(batch.seqs) if s.finish_reason is None and not s.cancelled]
        for s in batch.seqs:
            if s.cancelled:
                s.done = True
        if not keep:
            self._batch = None
            return
        if len(keep) < len(batch.seqs):
            index = torch.tensor(keep, dtype=torch.long, device=self._device)
            batch.cache.batch_select_indices(index)
            batch.seqs = [batch.seqs[i] for i in keep]
            batch.attention_mask = batch.attention_mask[index]
            batch.positions = batch.positions[index]
            batch.last_tokens = batch.last_tokens[index]
        # Trim columns that are padding in every remaining row.
        real = batch.attention_mask.any(dim=0).nonzero()
        lead = int(real[0].item()) if real.numel() else 0
        if lead and _mergeable(batch.cache):
            for layer in batch.cache.layers:
                layer.keys = layer.keys[:, :, lead:]
                layer.values = layer.values[:, :, lead:]
            batch.attention_mask = batch.attention_mask[:, lead:]

    def _advance(
        self, seqs: list[_Sequence], logits: torch.Tensor, hidden: torch.Tensor
    ) -> list[tuple[_Sequence, TokenDelta]]:
        """Pick each row's next token, record proof material, detect the end, build deltas."""
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        greedy_tokens = logits.argmax(dim=-1).tolist()
        live = [
            row for row, seq in enumerate(seqs) if seq.finish_reason is None and not seq.cancelled
        ]
        tokens: dict[int, int] = {}
        for row in live:
            seq = seqs[row]
            if seq.request.params.greedy:
                tokens[row] = int(greedy_tokens[row])
            else:
                assert seq.generator is not None
                tokens[row] = sample_token(logits[row], seq.request.params, seq.generator)
        # One device->host copy for all chosen log-probs (no per-row synchronisation).
        rows = torch.tensor(live, dtype=torch.long, device=logits.device)
        picked = torch.tensor([tokens[r] for r in live], dtype=torch.long, device=logits.device)
        chosen_lps = logprobs[rows, picked].tolist() if live else []
        now = time.perf_counter()
        deltas = []
        for row, lp in zip(live, chosen_lps, strict=True):
            seq, token = seqs[row], tokens[row]
            seq.output_ids.append(token)
            seq.logprobs.append(float(lp))
            seq.chunk_rows.append(hidden[row])
            if len(seq.chunk_rows) == CHUNK_TOKENS:
                seq.commitments.append(chunk_commitment(torch.stack(seq.chunk_rows)))
                seq.chunk_rows = []
            if seq.first_token_at is None:
                seq.first_token_at = now
            deltas.append((seq, self._delta(seq, token, now)))
        return deltas

    def _delta(self, seq: _Sequence, token: int, now: float) -> TokenDelta:
        params = seq.request.params
        text = self.decode(seq.output_ids)
        cut = _find_stop(text, params.stop)
        if cut is not None:
            text, seq.finish_reason = text[:cut], "stop"
        elif token in self.eos_token_ids:
            seq.finish_reason = "stop"
        elif len(seq.output_ids) >= params.max_tokens:
            seq.finish_reason = "length"
        new_tokens = tuple(seq.output_ids[seq.sent_tokens :])
        seq.sent_tokens = len(seq.output_ids)
        if seq.finish_reason is None:
            safe = _safe_prefix_len(text, params.stop)
            piece = text[seq.sent_chars : safe] if safe > seq.sent_chars else ""
            seq.sent_chars = max(seq.sent_chars, safe)
            return TokenDelta(text=piece, token_ids=new_tokens)
        if seq.chunk_rows:
            seq.commitments.append(chunk_commitment(torch.stack(seq.chunk_rows)))
            seq.chunk_rows = []
        proof = InferenceProof.build(seq.commitments, seq.logprobs)
        first = seq.first_token_at if seq.first_token_at is not None else now
        result = GenerationResult(
            prompt_token_ids=seq.request.prompt_token_ids,
            output_token_ids=tuple(seq.output_ids),
            text=text,
            finish_reason=seq.finish_reason,
            proof=proof,
            seed=seq.seed,
            time_to_first_token_s=first - seq.submitted_at,
            elapsed_s=now - seq.submitted_at,
        )
        seq.done = True
        return TokenDelta(text=text[seq.sent_chars :], token_ids=new_tokens, result=result)


# -------------------------------------------------------------------------------------------
# Pure helpers
# -------------------------------------------------------------------------------------------


def _find_stop(text: str, stops: tuple[str, ...]) -> int | None:
    hits = [i for i in (text.find(s) for s in stops) if i >= 0]
    return min(hits) if hits else None


def _safe_prefix_len(text: str, stops: tuple[str, ...]) -> int:
    """Length of the prefix of ``text`` that can be streamed now: excludes a trailing
    replacement character (incomplete UTF-8) and any suffix that starts a stop string."""
    end = len(text)
    while end and text[end - 1] == "\ufffd":
        end -= 1
    hold = 0
    for stop in stops:
        for n in range(min(len(stop) - 1, len(text)), 0, -1):
            if text.endswith(stop[:n]):
                hold = max(hold, n)
                break
    return max(0, min(end, len(text) - hold))


def _mergeable(cache: Any) -> bool:
    """True when every cache layer is a plain growing key/value store we can pad or trim."""
    layers: list[Any] = list(getattr(cache, "layers", None) or [])
    return bool(layers) and all(type(layer).__name__ == "DynamicLayer" for layer in layers)


def _left_pad(t: torch.Tensor, n: int, dim: int) -> torch.Tensor:
    if n == 0:
        return t
    shape = list(t.shape)
    shape[dim] = n
    return torch.cat([t.new_zeros(shape), t], dim=dim)


def _merge(a: _Batch, b: _Batch) -> _Batch:
    """One batch from two: left-pad the shorter cache with masked zeros, concatenate rows."""
    la, lb = a.attention_mask.shape[1], b.attention_mask.shape[1]
    width = max(la, lb)
    for layer_a, layer_b in zip(a.cache.layers, b.cache.layers, strict=True):
        layer_a.keys = torch.cat(
            [_left_pad(layer_a.keys, width - la, 2), _left_pad(layer_b.keys, width - lb, 2)]
        )
        layer_a.values = torch.cat(
            [_left_pad(layer_a.values, width - la, 2), _left_pad(layer_b.values, width - lb, 2)]
        )
    return _Batch(
        seqs=a.seqs + b.seqs,
        cache=a.cache,
        attention_mask=torch.cat(
            [_left_pad(a.attention_mask, width - la, 1), _left_pad(b.attention_mask, width - lb, 1)]
        ),
        positions=torch.cat([a.positions, b.positions]),
        last_tokens=torch.cat([a.last_tokens, b.last_tokens]),
    )
