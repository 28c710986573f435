"""Verify one miner answer: receipt, request binding, and the proof with one prefill pass.

The validator never trusts what a miner says about the request: it parses the exact body
bytes it sent (or that a renter forwarded with the miner's receipt), rebuilds the prompt
token ids with the subnet's tokenizer (``protocol.openai``) and the sampling parameters, and
checks the proof against its own reference model (``protocol.proof.verify_inference``,
every threshold in ``ProofTolerances``). A receipt not signed by the miner's hotkey, or
naming other bytes, tokens or proof, fails like a bad proof.

Verdicts distinguish a miner that *cheated* (a well-formed answer that fails a check: it
served something other than the reference model under the request's rules) from one that
merely failed to answer; scoring punishes the first for several rounds.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from eth_utils import keccak
from pydantic import ValidationError
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.utils import logging as hf_logging

from chain.errors import ConfigError, LatentError
from chain.receipts import ReceiptInvalid, output_hash, verify_receipt
from protocol.openai import (
    ChatBody,
    CompletionBody,
    LatentField,
    SamplingBody,
    chat_messages,
    encode_chat,
    encode_text,
    requested_max_tokens,
    sampling_params,
)
from protocol.proof import ProofTolerances, verify_inference
from protocol.sampling import InvalidRequest

__all__ = ["AnswerVerifier", "Verdict", "load_reference"]


@dataclass(frozen=True)
class Verdict:
    """The outcome of checking one answer."""

    ok: bool
    #: True when the answer was well-formed but wrong (a cheat, not an outage).
    cheated: bool
    reason: str
    completion_tokens: int = 0
    #: Seconds the prefill verification took (the validator's cost).
    verify_s: float = 0.0


def load_reference(model_dir: str | Path, *, device: str = "cpu") -> tuple[Any, Any]:
    """The subnet's reference model (fp32) and tokenizer, through ``from_pretrained`` from
    local files only (nothing is downloaded at run time)."""
    hf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(
            str(model_dir), local_files_only=True, dtype=torch.float32
        )
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"cannot load the reference model from {str(model_dir)!r} ({exc}); pass the "
            "directory of the subnet's pinned model, e.g. one written by `latent model tiny`"
        ) from None
    model = model.to(torch.device(device)).eval()  # type: ignore[arg-type]
    return model, tokenizer


class AnswerVerifier:
    """Checks answers against the reference model; thread-safe (one check at a time)."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        chain_id: int,
        tolerances: ProofTolerances | None = None,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.chain_id = chain_id
        self.tolerances = tolerances
        self.max_context = int(getattr(model.config, "max_position_embeddings", 2048) or 2048)
        self._lock = threading.Lock()

    def prompt_token_ids(
        self, kind: Literal["text", "chat"], body: SamplingBody
    ) -> tuple[int, ...]:
        """The prompt token ids a miner must have continued (``protocol.openai`` rules)."""
        if kind == "chat":
            assert isinstance(body, ChatBody)
            return encode_chat(self.tokenizer, chat_messages(body.messages))
        assert isinstance(body, CompletionBody)
        prompt = body.prompt
        if isinstance(prompt, str):
            return encode_text(self.tokenizer, prompt)
        if prompt and all(isinstance(p, str) for p in prompt) and len(prompt) == 1:
            return encode_text(self.tokenizer, str(prompt[0]))
        if prompt and all(isinstance(p, int) for p in prompt):
            return tuple(int(p) for p in prompt)
        raise InvalidRequest("prompt must be one string or a list of token ids", param="prompt")

    def check(
        self,
        kind: Literal["text", "chat"],
        request_body: bytes,
        miner: str,
        latent: LatentField,
    ) -> Verdict:
        """Verify ``latent`` as ``miner``'s answer to ``request_body`` (blocking; run it in a
        worker thread). Never raises for a bad answer: the verdict says why."""
        n = len(latent.output_token_ids)
        try:
            verify_receipt(
                latent.receipt,
                miner=miner,
                chain_id=self.chain_id,
                request_hash=keccak(request_body),
                output_hash=output_hash(latent.output_token_ids),
                proof_commitment=keccak(latent.proof_bytes),
            )
        except ReceiptInvalid as exc:
            return Verdict(False, True, f"receipt: {exc}", n)
        try:
            schema = ChatBody if kind == "chat" else CompletionBody
            body = schema.model_validate(json.loads(request_body))
            prompt_ids = self.prompt_token_ids(kind, body)
        except (ValueError, ValidationError, InvalidRequest) as exc:
            # Our own (or a forwarded) request that the reference cannot parse: not the
            # miner's fault.
            return Verdict(False, False, f"request not verifiable: {exc}", n)
        requested = requested_max_tokens(body)
        limit = self.max_context - len(prompt_ids)
        params = sampling_params(body, requested if requested is not None else limit)
        if n > params.max_tokens:
            return Verdict(
                False, True, f"{n} tokens returned, max_tokens was {params.max_tokens}", n
            )
        if len(prompt_ids) + n > self.max_context:
            return Verdict(False, True, "answer runs past the model's context", n)
        started = time.perf_counter()
        with self._lock:
            try:
                verdict = verify_inference(
                    self.model,
                    prompt_ids,
                    latent.output_token_ids,
                    params,
                    latent.proof,
                    seed=latent.seed,
                    tolerances=self.tolerances,
                )
            except (LatentError, RuntimeError, IndexError) as exc:
                return Verdict(
                    False, True, f"proof not checkable: {exc}", n, time.perf_counter() - started
                )
        return Verdict(verdict.ok, not verdict.ok, verdict.reason, n, time.perf_counter() - started)
