"""Validator rounds end to end over HTTP, against real miner servers (tiny model, CPU).

The chain is a fake ``ChainView`` (the on-chain duties are tested in test_chain_duties.py
and by the localnet end-to-end test): its metagraph lists an honest miner, a miner serving
other weights, a dead endpoint and a miner answering garbage. After a few rounds the honest
miner holds all the weight, the others score an explicit 0 with a logged reason, the state
survives a restart, and the re-check endpoint turns a forwarded forged answer into a cheat.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import httpx
import pytest
from eth_account import Account
from fastapi import FastAPI
from fastapi.responses import Response

from chain.metagraph import Hyperparameters, Metagraph
from miner.config import MinerConfig, PaymentConfig, ServerConfig
from miner.engine import InferenceEngine
from miner.server import create_app
from protocol.recheck import RECHECK_PATH
from protocol.serving import serve_in_loop
from validator.client import MinerClient
from validator.service import Validator, ValidatorConfig
from validator.state import ValidatorState
from validator.verify import AnswerVerifier

CHAIN_ID = 31337
HONEST = Account.from_key("0x" + "d1" * 32)
OTHER = Account.from_key("0x" + "d2" * 32)
DEAD = Account.from_key("0x" + "d3" * 32)
GARBAGE = Account.from_key("0x" + "d4" * 32)
ME = Account.from_key("0x" + "d5" * 32)


def _metagraph(endpoints: dict[str, str]) -> Metagraph:
    hotkeys = [HONEST.address, OTHER.address, DEAD.address, GARBAGE.address, ME.address]
    n = len(hotkeys)
    return Metagraph(
        address="0x" + "00" * 20,
        block=100,
        hotkeys=tuple(hotkeys),
        coldkeys=tuple(hotkeys),
        stake=(0,) * (n - 1) + (10**21,),
        emission=(0,) * n,
        registered_at=tuple(range(1, n + 1)),
        last_update=(0,) * n,
        validator_permit=(False,) * (n - 1) + (True,),
        incentive=(0,) * n,
        dividends=(0,) * n,
        consensus=(0,) * n,
        validator_trust=(0,) * n,
        endpoints=tuple(endpoints.get(hk, "") for hk in hotkeys),
        hyperparameters=Hyperparameters(*([0] * 10), False, *([0] * 10)),
        registration_price=0,
    )


class FakeChain:
    """A ChainView whose metagraph is fixed and whose duties record the weights."""

    hotkey = ME.address

    def __init__(self, endpoints: dict[str, str]) -> None:
        self.endpoints = endpoints
        self.posted: list[dict[int, float]] = []

    def snapshot(self) -> Metagraph:
        return _metagraph(self.endpoints)

    def block_number(self) -> int:
        return 100

    def duties(self, block: int, weights: dict[int, float]) -> list[str]:
        self.posted.append(weights)
        return []

    def next_duty_block(self, block: int) -> int:
        return block + 1

    def block_time_s(self) -> float:
        return 1.0


def _open_miner(engine: InferenceEngine, hotkey: Account) -> FastAPI:
    config = MinerConfig(
        model_path="unused",
        server=ServerConfig(model_id="tiny"),
        payment=PaymentConfig(require_payment=False, chain_id=CHAIN_ID),
    )
    return create_app(config, engine, hotkey=hotkey, gate=None)


def _garbage_app() -> FastAPI:
    app = FastAPI()

    @app.post("/v1/completions")
    @app.post("/v1/chat/completions")
    async def answer() -> Response:
        return Response(
            b'{"choices": [], "latent": {"proof": "!!"}}', media_type="application/json"
        )

    return app


@asynccontextmanager
async def _subnet(engine: InferenceEngine, other: InferenceEngine) -> AsyncIterator[dict[str, str]]:
    async with AsyncExitStack() as stack:
        honest = await stack.enter_async_context(serve_in_loop(_open_miner(engine, HONEST)))
        cheat = await stack.enter_async_context(serve_in_loop(_open_miner(other, OTHER)))
        garbage = await stack.enter_async_context(serve_in_loop(_garbage_app()))
        yield {
            HONEST.address: honest,
            OTHER.address: cheat,
            DEAD.address: "http://127.0.0.1:9",
            GARBAGE.address: garbage,
        }


@pytest.fixture(scope="module")
def other_engine(tiny_model_other_path: Path) -> InferenceEngine:
    return InferenceEngine.load(tiny_model_other_path, device="cpu", model_id="tiny")


def test_rounds_score_honest_above_everyone_and_survive_a_restart(
    engine: InferenceEngine, other_engine: InferenceEngine, tmp_path: Path
) -> None:
    state_path = tmp_path / "state.json"
    config = ValidatorConfig(
        state_path=state_path, model_id="tiny", checks_per_miner=3, request_timeout_s=20, seed=7
    )
    verifier = AnswerVerifier(engine.model, engine.tokenizer, chain_id=CHAIN_ID)

    async def main() -> tuple[Validator, FakeChain]:
        await engine.start()
        await other_engine.start()
        try:
            async with _subnet(engine, other_engine) as endpoints, httpx.AsyncClient() as http:
                chain = FakeChain(endpoints)
                validator = Validator(
                    config,
                    chain=chain,
                    verifier=verifier,
                    client=MinerClient(http, None, timeout_s=20),
                    state=ValidatorState.load(state_path),
                )
                for _ in range(2):
                    outcomes = await validator.run_round()
                    assert len(outcomes) == 4 * config.checks_per_miner
                await validator.chain_step()
                return validator, chain
        finally:
            await engine.stop()
            await other_engine.stop()

    validator, chain = asyncio.run(main())
    records = validator.state.records
    assert records[HONEST.address].score > 0
    assert records[HONEST.address].passes == records[HONEST.address].checks == 6
    for bad in (OTHER, DEAD, GARBAGE):
        assert records[bad.address].score == 0.0, records[bad.address]
    assert records[OTHER.address].cheats > 0  # caught, not merely absent
    assert (
        "hidden-state" in records[OTHER.address].last_reason
        or "log-prob" in records[OTHER.address].last_reason
    )
    assert "connection" in records[DEAD.address].last_reason
    assert "malformed" in records[GARBAGE.address].last_reason
    # All the weight on the honest miner's uid (0); the validator never weighs itself.
    assert chain.posted[-1] == {0: 1.0}
    # A validator killed now and restarted from its state file keeps its scores.
    restored = ValidatorState.load(state_path)
    assert restored.round_index == 2
    assert restored.records == records


def test_recheck_endpoint_accepts_only_verifiable_submissions(
    engine: InferenceEngine, tmp_path: Path
) -> None:
    config = ValidatorConfig(state_path=tmp_path / "s.json", model_id="tiny")
    verifier = AnswerVerifier(engine.model, engine.tokenizer, chain_id=CHAIN_ID)

    async def main() -> list[int]:
        validator = Validator(
            config,
            chain=FakeChain({}),
            verifier=verifier,
            client=MinerClient(httpx.AsyncClient(), None, timeout_s=5),
            state=ValidatorState.load(config.state_path),
        )
        statuses = []
        async with serve_in_loop(validator.app()) as url, httpx.AsyncClient(base_url=url) as http:
            statuses.append((await http.post(RECHECK_PATH, content=b"{nope")).status_code)
            statuses.append((await http.post(RECHECK_PATH, json={"kind": "text"})).status_code)
            statuses.append((await http.get("/health")).status_code)
            metrics = await http.get("/metrics")
            assert "latent_validator_rounds_total" in metrics.text
            status = (await http.get("/status")).json()
            assert status["hotkey"] == ME.address and status["miners"] == []
        return statuses

    assert asyncio.run(main()) == [400, 400, 200]


def test_forwarded_forged_answer_counts_as_a_cheat(engine: InferenceEngine, tmp_path: Path) -> None:
    """A renter forwards an answer whose tokens were altered after the miner signed: the
    validator's re-check marks the miner as cheating (receipt mismatch) in the next round."""
    from protocol.openai import LatentField
    from protocol.recheck import RecheckSubmission

    config = ValidatorConfig(state_path=tmp_path / "s.json", model_id="tiny", checks_per_miner=1)
    verifier = AnswerVerifier(engine.model, engine.tokenizer, chain_id=CHAIN_ID)
    body = json.dumps(
        {"model": "tiny", "prompt": "Hello there", "max_tokens": 8, "temperature": 0}
    ).encode()

    async def main() -> Validator:
        await engine.start()
        try:
            async with (
                serve_in_loop(_open_miner(engine, HONEST)) as url,
                httpx.AsyncClient() as http,
            ):
                reply = (await http.post(url + "/v1/completions", content=body)).json()
                latent = LatentField.from_json(reply["latent"])
                forged = LatentField(
                    latent.receipt,
                    latent.proof,
                    latent.proof_bytes,
                    tuple(reversed(latent.output_token_ids)),
                    latent.seed,
                    latent.access,
                )
                validator = Validator(
                    config,
                    chain=FakeChain({}),
                    verifier=verifier,
                    client=MinerClient(http, None, timeout_s=5),
                    state=ValidatorState.load(config.state_path),
                )
                async with serve_in_loop(validator.app()) as vurl:
                    sub = RecheckSubmission("text", body, HONEST.address, forged)
                    accepted = await http.post(vurl + RECHECK_PATH, json=sub.to_json())
                    assert accepted.status_code == 202, accepted.text
                    await validator.run_round()
                return validator
        finally:
            await engine.stop()

    validator = asyncio.run(main())
    record = validator.state.records[HONEST.address]
    assert record.score == 0.0 and record.cheats == 1
    assert "receipt" in record.last_reason


def test_validator_status_prints_the_saved_state(tmp_path: Path) -> None:
    """`latent validator status` reads the state file a running (or stopped) validator saved."""
    import subprocess
    import sys

    from validator.scoring import CheckOutcome, ScoringConfig, update_records

    state = ValidatorState.load(tmp_path / "state.json")
    outcomes = [CheckOutcome(HONEST.address, True, True, False, "ok", 32, 0.4, 0.05)]
    state.records = update_records({}, outcomes, 0, {HONEST.address: 1}, ScoringConfig())
    state.round_index = 1
    state.save(tmp_path / "state.json")
    done = subprocess.run(
        [sys.executable, "-m", "latent", "validator", "status", "--state", str(tmp_path / "state.json"), "--json"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["round"] == 1
    (row,) = data["miners"]
    assert row["hotkey"] == HONEST.address and row["pass_rate"] == 1.0 and row["score"] > 0
    missing = subprocess.run(
        [sys.executable, "-m", "latent", "validator", "status", "--state", str(tmp_path / "nope.json")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert missing.returncode == 1 and missing.stderr.startswith("error:")
