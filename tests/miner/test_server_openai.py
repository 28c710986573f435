"""The official ``openai`` client against the miner serving the real tiny model.

Server started in-process under uvicorn on a free port; payment required, vouchers real,
channels in memory (the on-chain reader is tested in test_payment.py against anvil).
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import openai
import pytest
from eth_account import Account
from eth_utils import keccak

from chain.receipts import Receipt, output_hash, verify_receipt
from chain.vouchers import encode_voucher_header, sign_voucher
from miner.config import MinerConfig, PaymentConfig, PricingConfig, ServerConfig
from miner.engine import InferenceEngine
from miner.payment import ChannelView, InMemoryChannels, PaymentGate
from miner.server import create_app
from miner.types import GenerationRequest
from protocol.headers import VOUCHER_HEADER
from protocol.proof import InferenceProof, verify_inference
from protocol.sampling import SamplingParams
from protocol.serving import serve_in_loop

HOTKEY = Account.from_key("0x" + "b1" * 32)
RENTER = Account.from_key("0x" + "b2" * 32)
ESCROW = "0x" + "e5" * 20
TOKEN = "0x" + "70" * 20
CHAIN_ID = 31337
CHANNEL = b"\x07" * 32
PRICING = PricingConfig(per_prompt_token=3, per_completion_token=7)

Scenario = Callable[[openai.AsyncOpenAI, list[bytes]], Awaitable[None]]


def _run(engine: InferenceEngine, scenario: Scenario) -> None:
    config = MinerConfig(
        model_path="unused",
        server=ServerConfig(),
        pricing=PRICING,
        payment=PaymentConfig(escrow_address=ESCROW, token_address=TOKEN, chain_id=CHAIN_ID),
    )
    channels = InMemoryChannels()
    channels.put(
        ChannelView(
            channel_id=CHANNEL,
            renter=RENTER.address,
            miner=HOTKEY.address,
            token=TOKEN,
            deposit=10**9,
            settled=0,
            session_key=None,
            closing=False,
            finalised=False,
        )
    )
    gate = PaymentGate(
        miner=HOTKEY.address, reader=channels, payment=config.payment, pricing=config.pricing
    )
    app = create_app(config, engine, hotkey=HOTKEY, gate=gate)
    bodies: list[bytes] = []

    async def capture(request: httpx.Request) -> None:
        bodies.append(request.content)

    async def main() -> None:
        async with (
            serve_in_loop(app) as url,
            httpx.AsyncClient(event_hooks={"request": [capture]}) as http,
        ):
            client = openai.AsyncOpenAI(
                base_url=url + "/v1", api_key="not-used", http_client=http, max_retries=0
            )
            await scenario(client, bodies)

    asyncio.run(main())


class Payer:
    """A renter paying each request with a voucher covering every earlier receipt."""

    def __init__(self) -> None:
        self.owed = 0

    def headers(self) -> dict[str, str]:
        voucher = sign_voucher(
            RENTER,
            escrow=ESCROW,
            chain_id=CHAIN_ID,
            channel_id=CHANNEL,
            cumulative_amount=self.owed,
        )
        return {VOUCHER_HEADER: encode_voucher_header(voucher)}

    def paid(self, latent: dict[str, Any]) -> Receipt:
        receipt = Receipt.from_json(latent["receipt"])
        self.owed += receipt.price
        return receipt


def _latent(obj: Any) -> dict[str, Any]:
    extra = obj.model_extra or {}
    return extra["latent"]


def test_openai_completion_round_trip_with_receipt_and_verifiable_proof(
    engine: InferenceEngine,
) -> None:
    payer = Payer()

    async def scenario(client: openai.AsyncOpenAI, bodies: list[bytes]) -> None:
        completion = await client.completions.create(
            model="tiny",
            prompt="hello miner",
            max_tokens=12,
            temperature=0,
            extra_headers=payer.headers(),
        )
        latent = _latent(completion)
        receipt = payer.paid(latent)
        ids = tuple(latent["output_token_ids"])
        proof = InferenceProof.from_bytes(base64.b64decode(latent["proof"]))
        verify_receipt(
            receipt,
            miner=HOTKEY.address,
            chain_id=CHAIN_ID,
            request_hash=keccak(bodies[-1]),
            output_hash=output_hash(ids),
            proof_commitment=proof.commitment(),
        )
        prompt_ids = engine.encode_prompt("hello miner")
        assert completion.usage is not None
        assert completion.usage.prompt_tokens == len(prompt_ids)
        assert completion.usage.completion_tokens == len(ids)
        assert receipt.price == PRICING.price(
            prompt_tokens=len(prompt_ids), completion_tokens=len(ids)
        )
        # Same tokens as the bare engine, and the proof checks against the model.
        direct = await engine.generate(
            GenerationRequest(prompt_ids, SamplingParams(max_tokens=12, temperature=0.0))
        )
        assert direct.output_token_ids == ids
        assert completion.choices[0].text == direct.text
        verdict = verify_inference(
            engine.model, prompt_ids, ids, SamplingParams(max_tokens=12), proof
        )
        assert verdict.ok, verdict.reason

        # A replayed voucher is refused with 402 and a quote naming the exact amount owed.
        stale = sign_voucher(
            RENTER, escrow=ESCROW, chain_id=CHAIN_ID, channel_id=CHANNEL, cumulative_amount=0
        )
        with pytest.raises(openai.APIStatusError) as info:
            await client.completions.create(
                model="tiny",
                prompt="again",
                max_tokens=4,
                extra_headers={VOUCHER_HEADER: encode_voucher_header(stale)},
            )
        assert info.value.status_code == 402
        body = info.value.body
        assert isinstance(body, dict)
        assert body["code"] == "voucher_short"
        assert info.value.response.json()["quote"]["required_cumulative"] == str(payer.owed)

    _run(engine, scenario)


def test_openai_chat_streaming_agrees_with_non_streaming(engine: InferenceEngine) -> None:
    payer = Payer()
    messages: list[Any] = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "what is latent?"},
    ]

    async def scenario(client: openai.AsyncOpenAI, bodies: list[bytes]) -> None:
        chat = await client.chat.completions.create(
            model="tiny",
            messages=messages,
            max_tokens=40,
            temperature=0,
            extra_headers=payer.headers(),
        )
        plain = payer.paid(_latent(chat))
        text = chat.choices[0].message.content
        assert chat.choices[0].message.role == "assistant"
        assert chat.choices[0].finish_reason in {"stop", "length"}

        stream = await client.chat.completions.create(
            model="tiny",
            messages=messages,
            max_tokens=40,
            temperature=0,
            stream=True,
            extra_headers=payer.headers(),
        )
        pieces: list[str] = []
        finals: list[dict[str, Any]] = []
        async for chunk in stream:
            delta = chunk.choices[0].delta
            pieces.append(delta.content or "")
            if chunk.choices[0].finish_reason is not None:
                finals.append(_latent(chunk))
                assert chunk.choices[0].finish_reason == chat.choices[0].finish_reason
        assert "".join(pieces) == text
        assert len(finals) == 1
        streamed = payer.paid(finals[0])
        assert streamed.output_hash == plain.output_hash
        assert streamed.price == plain.price
        verify_receipt(
            streamed,
            miner=HOTKEY.address,
            chain_id=CHAIN_ID,
            request_hash=keccak(bodies[-1]),
            output_hash=output_hash(finals[0]["output_token_ids"]),
        )
        # Seeded sampling through the API is reproducible.
        sampled = []
        for _ in range(2):
            response = await client.chat.completions.create(
                model="tiny",
                messages=messages,
                max_tokens=10,
                temperature=0.9,
                seed=1234,
                extra_headers=payer.headers(),
            )
            payer.paid(_latent(response))
            sampled.append(response)
        assert sampled[0].choices[0].message.content == sampled[1].choices[0].message.content

        models = await client.models.list()
        assert [m.id for m in models.data] == ["tiny"]

    _run(engine, scenario)


def test_openai_client_sees_bad_input_as_4xx(engine: InferenceEngine) -> None:
    async def scenario(client: openai.AsyncOpenAI, _: list[bytes]) -> None:
        with pytest.raises(openai.BadRequestError) as info:
            await client.completions.create(model="tiny", prompt="x " * 2000, max_tokens=4)
        assert info.value.code == "context_length_exceeded"
        with pytest.raises(openai.NotFoundError):
            await client.completions.create(model="gpt-4", prompt="x", max_tokens=4)
        with pytest.raises(openai.BadRequestError) as info:
            await client.chat.completions.create(
                model="tiny", messages=[{"role": "user", "content": "x"}], temperature=-1
            )
        assert info.value.param == "temperature"

    _run(engine, scenario)
