"""What the engine and proof tests share: the serve fixture's type and the prompts."""

from __future__ import annotations

from collections.abc import Callable

from miner.engine import InferenceEngine
from miner.types import GenerationRequest, GenerationResult

#: The ``serve`` fixture: run requests through an engine's batch loop, results in order.
Serve = Callable[[InferenceEngine, list[GenerationRequest]], list[GenerationResult]]

#: Prompts of 1 to 13 tokens under the tiny tokenizer.
PROMPTS = (
    "Hello there",
    "The quick brown fox jumps over the lazy dog and then",
    "a",
    "In the beginning was the word, and the word was",
    "1 2 3 4 5",
    "Once upon a time",
    "zebra",
    "What is the capital of France? The capital is",
)
