"""Seeded challenge requests for the cheat gauntlet and the validator benchmarks.

A stand-in for the validator's own challenge generator (``validator/challenges.py``, issue
#14): same shape of output, so the gauntlet can switch to it without changing. Each challenge
is an OpenAI request body as a renter proxy sends it (``/v1/completions`` or
``/v1/chat/completions``) plus what the verifier needs: the prompt token ids the miner must
continue and the sampling parameters.

The mix is what makes the gauntlet meaningful:

* prompt lengths from 1 to ~200 tokens (log-uniform, so short prompts -- where a tampered or
  replayed prompt differs least -- are frequent), completion and chat (with and without a
  system message);
* 8-96 new tokens, so both partial and several full proof chunks are exercised;
* half greedy, half sampled (temperature 0.6-1.2, top-k and top-p sometimes), every sampled
  request with a seed, as validators always set one (exact replay needs it).

Everything is drawn from one ``random.Random(seed)``: the same seed gives the same requests.
"""

from __future__ import annotations

import math
import random
from typing import Any, Literal, NamedTuple

from protocol.openai import encode_chat, encode_text
from protocol.sampling import SamplingParams

__all__ = ["ChallengeRequest", "challenge_requests"]

#: Longest prompt drawn (tokens, approximately: words are added until the length is reached).
MAX_PROMPT_TOKENS = 200
MIN_NEW_TOKENS = 8
MAX_NEW_TOKENS = 96

_WORD_TEXT = (
    "the of and to in is that it was for on are with as his they be at one have this from "
    "or had by hot word but what some we can out other were all there when up use your how "
    "said an each she which do their time if will way about many then them write would like "
    "so these her long make thing see him two has look more day could go come did number "
    "sound no most people my over know water than call first who may down side been now "
    "find any new work part take get place made live where after back little only round man "
    "year came show every good me give our under name very through just form sentence great "
    "think say help low line differ turn cause much mean before move right boy old too same "
    "tell does set three want air well also play small end put home read hand port large "
    "spell add even land here must big high such follow act why ask men change went light "
    "kind off need house picture try us again animal point mother world near build self "
    "earth father head stand own page should country found answer school grow study still "
    "learn plant cover food sun four between state keep eye never last let thought city tree "
    "cross farm hard start might story saw far sea draw left late run while press close night "
    "real life few north open seem together next white children begin got walk example ease "
    "paper group always music those both mark often letter until mile river car feet care "
    "second book carry took science eat room friend began idea fish mountain stop once base "
    "hear horse cut sure watch color face wood main enough plain girl usual young ready above "
    "ever red list though feel talk bird soon body dog family direct pose leave song measure "
    "door product black short numeral class wind question happen complete ship area half rock "
    "order fire south problem piece told knew pass since top whole king space heard best hour "
    "better true during hundred five remember step early hold west ground interest reach fast"
)
_WORDS = tuple(_WORD_TEXT.split())

_SYSTEM_PROMPTS = (
    "You are a helpful assistant.",
    "Answer briefly and precisely.",
    "You are a poet who writes about the sea.",
    "Reply in plain English, no lists.",
)


class ChallengeRequest(NamedTuple):
    """One challenge: the wire body, and what the verifier checks the answer against."""

    kind: Literal["text", "chat"]
    #: The OpenAI request body (``/v1/completions`` for text, ``/v1/chat/completions`` for chat).
    body: dict[str, Any]
    #: The prompt token ids the miner must continue (``protocol.openai`` encoding of ``body``).
    prompt_token_ids: tuple[int, ...]
    params: SamplingParams


def _words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(n))


def _text_prompt(rng: random.Random, tokenizer: Any, target: int) -> tuple[str, tuple[int, ...]]:
    """A word prompt of about ``target`` tokens (exactly 1 for ``target == 1``: BOS only)."""
    if target <= 1:
        return "", encode_text(tokenizer, "")
    # ~2.5 tokens per word with the tiny tokenizer; grow until the length is reached.
    words = max(1, target // 3)
    text = _words(rng, words)
    ids = encode_text(tokenizer, text)
    while len(ids) < target:
        text += " " + _words(rng, max(1, (target - len(ids)) // 3))
        ids = encode_text(tokenizer, text)
    return text, ids


def _sampling(rng: random.Random) -> dict[str, Any]:
    """Sampling fields of a body: greedy half the time, else temperature 0.6-1.2, sometimes
    top-k and/or top-p, always a seed."""
    if rng.random() < 0.5:
        return {"temperature": 0.0}
    fields: dict[str, Any] = {
        "temperature": round(rng.uniform(0.6, 1.2), 2),
        "seed": rng.randrange(2**31),
    }
    if rng.random() < 0.35:
        fields["top_k"] = rng.choice((5, 20, 40, 100))
    if rng.random() < 0.35:
        fields["top_p"] = round(rng.uniform(0.7, 0.97), 2)
    return fields


def challenge_requests(
    seed: int, n: int, tokenizer: Any, *, model: str = "latent-reference"
) -> list[ChallengeRequest]:
    """``n`` seeded challenges for ``tokenizer``'s model (see the module doc for the mix).

    ``model`` is the ``model`` field of the bodies (the pinned model id). Pure given the
    tokenizer: the same ``seed`` gives the same list.
    """
    rng = random.Random(seed)
    out: list[ChallengeRequest] = []
    for _ in range(n):
        target = round(math.exp(rng.uniform(0.0, math.log(MAX_PROMPT_TOKENS))))
        max_tokens = rng.randint(MIN_NEW_TOKENS, MAX_NEW_TOKENS)
        sampling = _sampling(rng)
        params = SamplingParams(
            max_tokens=max_tokens,
            temperature=float(sampling["temperature"]),
            top_k=int(sampling.get("top_k", 0)),
            top_p=float(sampling.get("top_p", 1.0)),
            seed=sampling.get("seed"),
        )
        base: dict[str, Any] = {"model": model, "max_tokens": max_tokens, **sampling}
        if rng.random() < 0.5:
            text, ids = _text_prompt(rng, tokenizer, target)
            out.append(ChallengeRequest("text", {**base, "prompt": text}, ids, params))
            continue
        messages: list[dict[str, str]] = []
        if rng.random() < 0.4:
            messages.append({"role": "system", "content": rng.choice(_SYSTEM_PROMPTS)})
        # The template and the other messages cost tokens too; the rest is user text.
        overhead = len(encode_chat(tokenizer, [*messages, {"role": "user", "content": ""}]))
        user_target = max(1, target - overhead)
        user_text, _ = _text_prompt(rng, tokenizer, user_target)
        messages.append({"role": "user", "content": user_text or _words(rng, 1)})
        ids = encode_chat(tokenizer, messages)
        out.append(ChallengeRequest("chat", {**base, "messages": messages}, ids, params))
    return out
