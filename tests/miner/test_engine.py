"""The inference engine: exactness vs transformers, batching, sampling, streaming, stops."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import torch
from engine_cases import PROMPTS as ALL_PROMPTS
from engine_cases import Serve

from chain.errors import ConfigError
from miner.engine import EngineNotRunning, InferenceEngine, resolve_device_dtype
from miner.types import GenerationRequest, GenerationResult
from protocol.sampling import InvalidRequest, SamplingParams

PROMPTS = ALL_PROMPTS[:5]


def _hf_greedy(engine: InferenceEngine, prompt_ids: tuple[int, ...], n: int) -> list[int]:
    x = torch.tensor([prompt_ids])
    out = engine.model.generate(
        x, attention_mask=torch.ones_like(x), max_new_tokens=n, do_sample=False
    )
    return [int(t) for t in out[0, x.shape[1] :]]


def test_greedy_matches_model_generate_alone_and_batched(
    engine: InferenceEngine, serve: Serve
) -> None:
    requests = [
        GenerationRequest(engine.encode_prompt(p), SamplingParams(max_tokens=24 + 9 * i))
        for i, p in enumerate(PROMPTS)
    ]
    batched = serve(engine, requests)
    alone = serve(engine, requests[:1])
    for req, res in zip(requests, batched, strict=True):
        expected = _hf_greedy(engine, req.prompt_token_ids, req.params.max_tokens)
        assert list(res.output_token_ids) == expected
        assert res.finish_reason == ("stop" if expected[-1] in engine.eos_token_ids else "length")
        assert res.text == engine.decode(expected)
    assert alone[0].output_token_ids == batched[0].output_token_ids


def test_request_joins_running_batch(engine: InferenceEngine) -> None:
    """Continuous batching: a short request submitted mid-way through a long one finishes
    first, and both produce exactly their solo greedy output."""
    long_req = GenerationRequest(engine.encode_prompt(PROMPTS[1]), SamplingParams(max_tokens=120))
    short_req = GenerationRequest(engine.encode_prompt(PROMPTS[2]), SamplingParams(max_tokens=6))
    finished: list[str] = []

    async def main() -> tuple[GenerationResult, GenerationResult]:
        await engine.start()
        try:
            stream = engine.stream(long_req)
            seen = 0
            long_result = None
            short_task = None
            async for delta in stream:
                seen += 1
                if seen == 10:
                    short_task = asyncio.create_task(engine.generate(short_req))
                    short_task.add_done_callback(lambda _: finished.append("short"))
                if delta.result is not None:
                    long_result = delta.result
            finished.append("long")
            assert short_task is not None and long_result is not None
            return long_result, await short_task
        finally:
            await engine.stop()

    long_res, short_res = asyncio.run(main())
    assert finished == ["short", "long"]
    assert list(short_res.output_token_ids) == _hf_greedy(engine, short_req.prompt_token_ids, 6)
    assert list(long_res.output_token_ids) == _hf_greedy(engine, long_req.prompt_token_ids, 120)


def test_seeded_sampling_reproducible_and_independent_of_neighbours(
    engine: InferenceEngine, serve: Serve
) -> None:
    params = SamplingParams(max_tokens=40, temperature=0.9, top_k=40, top_p=0.95, seed=1234)
    target = GenerationRequest(engine.encode_prompt(PROMPTS[0]), params)
    alone = serve(engine, [target])[0]
    neighbours = [
        GenerationRequest(
            engine.encode_prompt(p), SamplingParams(max_tokens=30, temperature=1.3, seed=i)
        )
        for i, p in enumerate(PROMPTS)
    ]
    in_batch = serve(engine, [*neighbours[:3], target, *neighbours[3:]])[3]
    assert in_batch.output_token_ids == alone.output_token_ids
    other_seed = GenerationRequest(
        target.prompt_token_ids, SamplingParams(**{**params.__dict__, "seed": 99})
    )
    assert serve(engine, [other_seed])[0].output_token_ids != alone.output_token_ids
    greedy = serve(
        engine, [GenerationRequest(target.prompt_token_ids, SamplingParams(max_tokens=40))]
    )
    assert greedy[0].output_token_ids != alone.output_token_ids  # sampling really samples


def test_stream_and_generate_agree(engine: InferenceEngine, serve: Serve) -> None:
    requests = [
        GenerationRequest(engine.encode_prompt(PROMPTS[3]), SamplingParams(max_tokens=50)),
        GenerationRequest(
            engine.encode_prompt(PROMPTS[4]),
            SamplingParams(max_tokens=50, temperature=0.7, top_p=0.9, seed=5),
        ),
    ]
    expected = serve(engine, requests)

    async def collect(req: GenerationRequest) -> tuple[str, list[int], GenerationResult]:
        text, ids, result = "", [], None
        async for delta in engine.stream(req):
            text += delta.text
            ids += delta.token_ids
            if delta.result is not None:
                result = delta.result
        assert result is not None
        return text, ids, result

    async def main() -> list[tuple[str, list[int], GenerationResult]]:
        await engine.start()
        try:
            return list(await asyncio.gather(*(collect(r) for r in requests)))
        finally:
            await engine.stop()

    for (text, ids, result), want in zip(asyncio.run(main()), expected, strict=True):
        assert result.output_token_ids == want.output_token_ids
        assert tuple(ids) == want.output_token_ids
        assert text == result.text == want.text
        assert result.proof == want.proof


def _stop_string(text: str) -> tuple[str, int]:
    """A 2-character stop string first occurring around the middle of ``text``."""
    for k in range(len(text) // 2, len(text) - 2):
        cand = text[k : k + 2]
        if "\ufffd" not in cand and text.find(cand) == k:
            return cand, k
    raise AssertionError("no usable stop string in the sample text")


def test_stop_sequence_trims_text_in_both_modes(engine: InferenceEngine, serve: Serve) -> None:
    prompt = engine.encode_prompt(PROMPTS[1])
    full = serve(engine, [GenerationRequest(prompt, SamplingParams(max_tokens=60))])[0]
    stop, at = _stop_string(full.text)
    req = GenerationRequest(prompt, SamplingParams(max_tokens=60, stop=("never-appears", stop)))

    async def main() -> tuple[str, GenerationResult]:
        await engine.start()
        try:
            text, result = "", None
            async for delta in engine.stream(req):
                text += delta.text
                result = delta.result or result
            assert result is not None
            return text, result
        finally:
            await engine.stop()

    streamed_text, result = asyncio.run(main())
    assert result.finish_reason == "stop"
    assert result.text == full.text[:at] == streamed_text
    n = len(result.output_token_ids)
    assert n < len(full.output_token_ids)
    assert result.output_token_ids == full.output_token_ids[:n]
    assert stop in engine.decode(result.output_token_ids)
    assert stop not in engine.decode(result.output_token_ids[:-1])


def test_eos_and_length_finish_reasons(tiny_model_path: Path, serve: Serve) -> None:
    eng = InferenceEngine.load(tiny_model_path, device="cpu", model_id="tiny")
    prompt = eng.encode_prompt(PROMPTS[3])
    full = serve(eng, [GenerationRequest(prompt, SamplingParams(max_tokens=12))])[0]
    assert full.finish_reason == "length" and len(full.output_token_ids) == 12
    eos = full.output_token_ids[5]
    first = full.output_token_ids.index(eos)
    eng.eos_token_ids = frozenset({eos})  # pretend this token is the model's EOS
    res = serve(eng, [GenerationRequest(prompt, SamplingParams(max_tokens=12))])[0]
    assert res.finish_reason == "stop"
    assert res.output_token_ids == full.output_token_ids[: first + 1]


@pytest.mark.parametrize(
    ("params", "prompt_len", "param"),
    [
        (SamplingParams(max_tokens=0), 3, "max_tokens"),
        (SamplingParams(max_tokens=2000), 3, "max_tokens"),
        (SamplingParams(temperature=-0.5), 3, "temperature"),
        (SamplingParams(top_p=0.0), 3, "top_p"),
        (SamplingParams(top_k=-1), 3, "top_k"),
        (SamplingParams(stop=("",)), 3, "stop"),
        (SamplingParams(), 0, "prompt"),
        (SamplingParams(), 1024, "prompt"),
    ],
)
def test_invalid_requests_rejected_before_streaming(
    engine: InferenceEngine, params: SamplingParams, prompt_len: int, param: str
) -> None:
    req = GenerationRequest(tuple([65] * prompt_len), params)
    with pytest.raises(InvalidRequest) as info:
        engine.stream(req)
    assert info.value.param == param


def test_not_started_engine_refuses(engine: InferenceEngine) -> None:
    with pytest.raises(EngineNotRunning):
        engine.stream(GenerationRequest((65, 66), SamplingParams()))


def test_cancelled_stream_frees_its_slot(engine: InferenceEngine) -> None:
    async def main() -> GenerationResult:
        await engine.start()
        try:
            stream = engine.stream(
                GenerationRequest(engine.encode_prompt("x"), SamplingParams(max_tokens=500))
            )
            async for _ in stream:
                assert engine.queue_depth == 1
                break
            await stream.aclose()  # type: ignore[attr-defined]
            result = await engine.generate(
                GenerationRequest(engine.encode_prompt("y"), SamplingParams(max_tokens=3))
            )
            assert engine.queue_depth == 0
            return result
        finally:
            await engine.stop()

    assert len(asyncio.run(main()).output_token_ids) == 3


def test_device_and_dtype_resolution() -> None:
    if not torch.cuda.is_available():
        assert resolve_device_dtype(None, None) == (torch.device("cpu"), torch.float32)
        with pytest.raises(ConfigError):
            resolve_device_dtype("cuda", None)
    assert resolve_device_dtype("cpu", "bf16") == (torch.device("cpu"), torch.bfloat16)
    with pytest.raises(ConfigError):
        resolve_device_dtype("cpu", "int3")
