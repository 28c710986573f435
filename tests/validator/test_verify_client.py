"""The validator's miner client and answer verifier against a real miner server (tiny model).

A miner serves in-process with paid access (vouchers real, channel in memory); the
validator's ``MinerClient`` pays like a renter, streams or not, and ``AnswerVerifier``
checks each answer with one prefill. Bad miners (garbage bodies, oversized answers,
unparseable proofs, receipts signed by another key, slow answers) give verdicts or
no-answers with a reason, never an exception.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from eth_account import Account
from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response

from chain.vouchers import encode_voucher_header, sign_voucher
from miner.config import MinerConfig, PaymentConfig, PricingConfig, ServerConfig
from miner.engine import InferenceEngine
from miner.payment import ChannelView, InMemoryChannels, PaymentGate
from miner.server import create_app
from protocol.openai import LatentField
from protocol.serving import serve_in_loop
from validator.client import MinerAnswer, MinerClient, MinerTarget
from validator.verify import AnswerVerifier

HOTKEY = Account.from_key("0x" + "c1" * 32)
PAYER = Account.from_key("0x" + "c2" * 32)
ESCROW = "0x" + "e5" * 20
TOKEN = "0x" + "70" * 20
CHAIN_ID = 31337
CHANNEL = b"\x09" * 32
PRICING = PricingConfig(per_prompt_token=3, per_completion_token=7)


class MemoryPayer:
    """The ChannelPayer's rule over one in-memory channel: vouchers cover delivered work."""

    def __init__(self) -> None:
        self.owed = 0

    def voucher_header(self, miner: str) -> str | None:
        del miner
        voucher = sign_voucher(
            PAYER, escrow=ESCROW, chain_id=CHAIN_ID, channel_id=CHANNEL, cumulative_amount=self.owed
        )
        return encode_voucher_header(voucher)

    def delivered(self, miner: str, price: int) -> None:
        del miner
        self.owed += price


def _miner_app(engine: InferenceEngine) -> FastAPI:
    config = MinerConfig(
        model_path="unused",
        server=ServerConfig(model_id="tiny"),
        pricing=PRICING,
        payment=PaymentConfig(escrow_address=ESCROW, token_address=TOKEN, chain_id=CHAIN_ID),
    )
    channels = InMemoryChannels()
    channels.put(
        ChannelView(
            channel_id=CHANNEL,
            renter=PAYER.address,
            miner=HOTKEY.address,
            token=TOKEN,
            deposit=10**12,
            settled=0,
            session_key=None,
            closing=False,
            finalised=False,
        )
    )
    gate = PaymentGate(
        miner=HOTKEY.address, reader=channels, payment=config.payment, pricing=config.pricing
    )
    return create_app(config, engine, hotkey=HOTKEY, gate=gate)


def _body(kind: str, **extra: Any) -> bytes:
    base: dict[str, Any] = {"model": "tiny", "max_tokens": 40}
    if kind == "chat":
        base["messages"] = [{"role": "user", "content": "Tell me about the quick brown fox"}]
    else:
        base["prompt"] = "Once upon a time there was a"
    base.update(extra)
    return json.dumps(base, separators=(",", ":")).encode()


def _serve(
    app: FastAPI, scenario: Callable[[str, MinerClient], Awaitable[None]], **kw: Any
) -> None:
    async def main() -> None:
        async with serve_in_loop(app) as url, httpx.AsyncClient(timeout=30) as http:
            await scenario(
                url, MinerClient(http, kw.get("payer"), timeout_s=kw.get("timeout", 30.0))
            )

    asyncio.run(main())


@pytest.fixture(scope="module")
def verifier(engine: InferenceEngine) -> AnswerVerifier:
    return AnswerVerifier(engine.model, engine.tokenizer, chain_id=CHAIN_ID)


def test_paid_answers_verify_streamed_or_not(
    engine: InferenceEngine, verifier: AnswerVerifier
) -> None:
    payer = MemoryPayer()
    seen: list[tuple[MinerAnswer, Any]] = []

    async def scenario(url: str, client: MinerClient) -> None:
        miner = MinerTarget(0, HOTKEY.address, url)
        cases: list[tuple[str, bytes, bool]] = [
            ("text", _body("text", temperature=0), False),
            ("text", _body("text", temperature=0.9, top_p=0.9, seed=7), True),
            ("chat", _body("chat", temperature=0), True),
            ("chat", _body("chat", temperature=1.1, top_k=20, seed=123), False),
        ]
        for kind, body, stream in cases:
            if stream:
                body = body[:-1] + b',"stream":true}'
            answer = await client.ask(miner, kind, body, stream=stream)  # type: ignore[arg-type]
            assert answer.responded, answer.error
            assert answer.latent is not None
            verdict = await asyncio.to_thread(
                verifier.check, kind, body, HOTKEY.address, answer.latent
            )  # type: ignore[arg-type]
            seen.append((answer, verdict))

    _serve(_miner_app(engine), scenario, payer=payer)
    for answer, verdict in seen:
        assert verdict.ok, verdict.reason
        assert not verdict.cheated
        assert 0 < answer.ttft_s <= answer.elapsed_s
    # Every delivered price was paid for by the next voucher (the last one rides on the next).
    assert payer.owed == sum(a.latent.receipt.price for a, _ in seen if a.latent) > 0


def test_forged_or_altered_answers_are_cheats(
    engine: InferenceEngine, verifier: AnswerVerifier
) -> None:
    got: list[tuple[bytes, LatentField]] = []

    async def scenario(url: str, client: MinerClient) -> None:
        body = _body("text", temperature=0.8, seed=5)
        answer = await client.ask(MinerTarget(0, HOTKEY.address, url), "text", body, stream=False)
        assert answer.latent is not None
        got.append((body, answer.latent))

    _serve(_miner_app(engine), scenario, payer=MemoryPayer())
    body, latent = got[0]
    assert verifier.check("text", body, HOTKEY.address, latent).ok
    # A receipt checked against another miner's hotkey (someone else's answer passed off).
    other = Account.create().address
    verdict = verifier.check("text", body, other, latent)
    assert not verdict.ok and verdict.cheated and "receipt" in verdict.reason
    # Tokens changed after signing: the receipt no longer covers them.
    altered = LatentField(
        receipt=latent.receipt,
        proof=latent.proof,
        proof_bytes=latent.proof_bytes,
        output_token_ids=(latent.output_token_ids[0] ^ 1, *latent.output_token_ids[1:]),
        seed=latent.seed,
        access=latent.access,
    )
    assert verifier.check("text", body, HOTKEY.address, altered).cheated
    # The answer to another request body (a replay) does not match the receipt.
    other_body = _body("text", temperature=0.8, seed=6)
    assert verifier.check("text", other_body, HOTKEY.address, latent).cheated
    # A wrong reported seed breaks the exact replay of the sampled draws.
    unseeded = _body("text", temperature=0.8)
    reseeded = LatentField(
        latent.receipt,
        latent.proof,
        latent.proof_bytes,
        latent.output_token_ids,
        999,
        latent.access,
    )
    verdict = verifier.check("text", unseeded, HOTKEY.address, reseeded)
    assert verdict.cheated


def _bad_miner_app(mode: str) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/completions")
    async def completions() -> Response:
        if mode == "garbage":
            return Response(b"{not json", media_type="application/json")
        if mode == "huge":
            return Response(b'{"x":"' + b"a" * (5 << 20) + b'"}', media_type="application/json")
        if mode == "bad-proof":
            return JSONResponse(
                {
                    "choices": [],
                    "latent": {
                        "receipt": {},
                        "proof": base64.b64encode(b"\x07garbage").decode(),
                        "output_token_ids": [1, 2],
                    },
                }
            )
        if mode == "slow":
            await asyncio.sleep(5)
        return JSONResponse({"error": {"message": "boom"}}, status_code=500)

    return app


@pytest.mark.parametrize("mode", ["garbage", "huge", "bad-proof", "slow", "error"])
def test_bad_miners_get_a_reason_not_an_exception(mode: str) -> None:
    answers: list[MinerAnswer] = []

    async def scenario(url: str, client: MinerClient) -> None:
        answers.append(
            await client.ask(
                MinerTarget(3, HOTKEY.address, url), "text", _body("text"), stream=False
            )
        )

    _serve(_bad_miner_app(mode), scenario, timeout=1.0)
    (answer,) = answers
    assert not answer.responded and answer.latent is None
    expected = {
        "garbage": "malformed answer",
        "huge": "larger than",
        "bad-proof": "malformed answer",
        "slow": "timeout",
        "error": "HTTP 500",
    }[mode]
    assert expected in answer.error


def test_unreachable_miner_is_a_no_answer() -> None:
    async def main() -> MinerAnswer:
        async with httpx.AsyncClient() as http:
            client = MinerClient(http, None, timeout_s=2.0)
            return await client.ask(
                MinerTarget(1, HOTKEY.address, "http://127.0.0.1:9"),
                "text",
                _body("text"),
                stream=False,
            )

    answer = asyncio.run(main())
    assert not answer.responded and "connection" in answer.error
