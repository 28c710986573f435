"""The validator process: rounds of checks, organic re-checks, scores, weights, the keeper.

One asyncio loop (STYLE.md). Three tasks share it:

- **rounds**: every ``round_interval_s`` the validator reads the metagraph, sends
  ``checks_per_miner`` seeded challenges (``validator.challenge_prompts``) to every serving
  miner concurrently (each with a timeout; a miner's checks run one after another, like one
  renter), verifies every answer in a worker thread (one prefill each, serialised: the
  reference model is the expensive part), folds forwarded organic answers in, updates the
  per-hotkey records (``validator.scoring``) and persists the state atomically;
- **chain**: sleeps until the next block where the weight setter or the epoch keeper has
  something to do (``validator.chain_duties``), never busy-waiting;
- **http**: ``/metrics`` (Prometheus), ``/health``, ``/status`` (JSON) and ``POST
  /v1/recheck`` (``protocol.recheck``), where renters forward answers with receipts.

Every iteration catches the typed errors it can meet and goes on: a miner that times out
or answers garbage scores 0 for the round; a chain error is logged and retried next time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from chain.errors import LatentError
from chain.metagraph import Metagraph
from protocol.openai import ApiError, InvalidResponse
from protocol.recheck import RECHECK_PATH, RecheckSubmission
from protocol.serving import install_openai_errors
from validator.challenge_prompts import challenge_requests
from validator.client import MinerAnswer, MinerClient, MinerTarget
from validator.scoring import CheckOutcome, ScoringConfig, update_records, weights_for_chain
from validator.state import ValidatorState
from validator.verify import AnswerVerifier, Verdict

__all__ = ["ChainView", "Validator", "ValidatorConfig", "ValidatorMetrics"]

log = logging.getLogger("latent.validator")


@dataclass(frozen=True)
class ValidatorConfig:
    """Settings of one validator process (parsed once by ``latent validator run``)."""

    state_path: Path
    """The validator's state file (scores by hotkey, pending commit); restored on start."""
    model_id: str
    """The subnet's model name, as miners serve it (the ``model`` of every challenge)."""
    checks_per_miner: int = 2
    """Challenges sent to every serving miner each round."""
    round_interval_s: float = 10.0
    """Seconds from the start of one round to the start of the next."""
    request_timeout_s: float = 30.0
    """A miner's answer must be complete within this many seconds, or it scores 0."""
    stream_fraction: float = 0.5
    """Share of challenges sent with ``stream: true`` (renters stream about as often)."""
    max_rechecks_per_round: int = 16
    """Forwarded organic answers verified per round (more wait in the queue)."""
    recheck_queue_max: int = 256
    """Forwarded answers kept waiting; beyond it new ones are refused with 429."""
    seed: int | None = None
    """Seed of the challenge generator (None: fresh randomness each round)."""
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    """How checks become scores."""


class ChainView(Protocol):
    """What the validator needs from the chain (``validator.cli`` wires the real one)."""

    hotkey: str

    def snapshot(self) -> Metagraph:
        """The metagraph now."""
        ...

    def block_number(self) -> int:
        """The current block."""
        ...

    def duties(self, block: int, weights: dict[int, float]) -> list[str]:
        """Do what is due at ``block`` (commit, reveal, epoch); return log lines."""
        ...

    def next_duty_block(self, block: int) -> int:
        """The next block at which :meth:`duties` may have something to do."""
        ...

    def block_time_s(self) -> float:
        """Seconds per block (to sleep until a block)."""
        ...


class ValidatorMetrics:
    """Prometheus metrics of one validator (own registry)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.checks = Counter(
            "latent_validator_checks",
            "Checks by result (valid, cheat, no_answer) and source (challenge, recheck).",
            ["result", "source"],
            registry=self.registry,
        )
        self.verify_seconds = Histogram(
            "latent_validator_verify_seconds",
            "Seconds per prefill verification.",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self.rounds = Counter(
            "latent_validator_rounds", "Rounds completed.", registry=self.registry
        )
        self.score = Gauge(
            "latent_validator_miner_score",
            "EMA score by hotkey.",
            ["hotkey"],
            registry=self.registry,
        )
        self.chain_actions = Counter(
            "latent_validator_chain_actions",
            "Chain duties done (commit, reveal, epoch) and failed.",
            ["action"],
            registry=self.registry,
        )


class Validator:
    """One validator; ``run`` until ``stop`` is set."""

    def __init__(
        self,
        config: ValidatorConfig,
        *,
        chain: ChainView,
        verifier: AnswerVerifier,
        client: MinerClient,
        state: ValidatorState,
        metrics: ValidatorMetrics | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.chain = chain
        self.verifier = verifier
        self.client = client
        self.state = state
        self.metrics = metrics or ValidatorMetrics()
        self.rng = rng or random.Random(config.seed)
        self.clock = clock
        self.rechecks: asyncio.Queue[RecheckSubmission] = asyncio.Queue(config.recheck_queue_max)
        self.last_outcomes: list[CheckOutcome] = []
        self.last_metagraph: Metagraph | None = None

    # -- rounds ----------------------------------------------------------------------------

    def targets(self, metagraph: Metagraph) -> list[MinerTarget]:
        """Every registered uid with an endpoint, except our own hotkey."""
        return [
            MinerTarget(uid, hk, ep)
            for uid, (hk, ep) in enumerate(zip(metagraph.hotkeys, metagraph.endpoints, strict=True))
            if ep and hk != self.chain.hotkey
        ]

    async def check_miner(self, miner: MinerTarget, round_seed: int) -> list[CheckOutcome]:
        """The round's challenges to one miner, one after another, each verified."""
        requests = challenge_requests(
            round_seed ^ miner.uid,
            self.config.checks_per_miner,
            self.verifier.tokenizer,
            model=self.config.model_id,
        )
        outcomes = []
        for challenge in requests:
            stream = self.rng.random() < self.config.stream_fraction
            body = dict(challenge.body, stream=True) if stream else challenge.body
            raw = json.dumps(body, separators=(",", ":")).encode()
            answer = await self.client.ask(miner, challenge.kind, raw, stream=stream)
            outcomes.append(
                await self._judge(miner.hotkey, challenge.kind, raw, answer, "challenge")
            )
        return outcomes

    async def _judge(
        self,
        hotkey: str,
        kind: Literal["text", "chat"],
        body: bytes,
        answer: MinerAnswer,
        source: str,
    ) -> CheckOutcome:
        if answer.latent is None:
            self.metrics.checks.labels("no_answer", source).inc()
            log.info("miner %s: no valid answer (%s)", hotkey, answer.error)
            return CheckOutcome(hotkey, False, False, False, answer.error)
        verdict: Verdict = await asyncio.to_thread(
            self.verifier.check, kind, body, hotkey, answer.latent
        )
        self.metrics.verify_seconds.observe(verdict.verify_s)
        self.metrics.checks.labels(
            "valid" if verdict.ok else ("cheat" if verdict.cheated else "no_answer"), source
        ).inc()
        if not verdict.ok:
            log.warning("miner %s failed a check: %s", hotkey, verdict.reason)
        return CheckOutcome(
            hotkey=hotkey,
            responded=True,
            valid=verdict.ok,
            cheated=verdict.cheated,
            reason=verdict.reason,
            completion_tokens=verdict.completion_tokens,
            elapsed_s=answer.elapsed_s,
            ttft_s=answer.ttft_s or answer.elapsed_s,
        )

    async def organic_outcomes(self, registered: set[str]) -> list[CheckOutcome]:
        """Verify queued forwarded answers; only failures count (they carry no timing)."""
        outcomes = []
        for _ in range(min(self.rechecks.qsize(), self.config.max_rechecks_per_round)):
            sub = self.rechecks.get_nowait()
            if sub.miner not in registered:
                continue
            answer = MinerAnswer(True, 200, sub.latent, "ok", 0.0, 0.0)
            outcome = await self._judge(sub.miner, sub.kind, sub.request_body, answer, "recheck")
            if outcome.cheated:
                outcomes.append(outcome)
        return outcomes

    async def run_round(self) -> list[CheckOutcome]:
        """One round over every serving miner; updates and persists the state."""
        metagraph = await asyncio.to_thread(self.chain.snapshot)
        self.last_metagraph = metagraph
        round_seed = self.rng.getrandbits(62)
        targets = self.targets(metagraph)
        results = await asyncio.gather(*(self.check_miner(m, round_seed) for m in targets))
        outcomes = [o for per_miner in results for o in per_miner]
        registered = {
            hk: reg for hk, reg in zip(metagraph.hotkeys, metagraph.registered_at, strict=True)
        }
        outcomes += await self.organic_outcomes(set(registered))
        self.state.records = update_records(
            self.state.records, outcomes, self.state.round_index, registered, self.config.scoring
        )
        self.state.round_index += 1
        await asyncio.to_thread(self.state.save, self.config.state_path)
        for hk, rec in self.state.records.items():
            self.metrics.score.labels(hk).set(rec.score)
        self.metrics.rounds.inc()
        self.last_outcomes = outcomes
        return outcomes

    def weights(self) -> dict[int, float]:
        """Normalised weights by uid from the current records and metagraph."""
        if self.last_metagraph is None:
            return {}
        uid_of = {hk: uid for uid, hk in enumerate(self.last_metagraph.hotkeys)}
        return weights_for_chain(self.state.records, uid_of)

    # -- chain duties ----------------------------------------------------------------------

    async def chain_step(self) -> float:
        """Do what is due now; return seconds to sleep until the next duty."""
        block = await asyncio.to_thread(self.chain.block_number)
        lines = await asyncio.to_thread(self.chain.duties, block, self.weights())
        for line in lines:
            log.info("%s", line)
            self.metrics.chain_actions.labels(line.split(" ", 1)[0]).inc()
        nxt = await asyncio.to_thread(self.chain.next_duty_block, block)
        # At least one block: a duty due now but not done (no scores yet) waits for news.
        return max(1, nxt - block) * self.chain.block_time_s()

    # -- loops -----------------------------------------------------------------------------

    async def _rounds(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            started = self.clock()
            try:
                await self.run_round()
            except (LatentError, OSError) as exc:
                log.warning("round failed: %s", exc)
            await _sleep_or_stop(stop, self.config.round_interval_s - (self.clock() - started))

    async def _chain(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                delay = await self.chain_step()
            except (LatentError, OSError) as exc:
                log.warning("chain duty failed: %s", exc)
                delay = 2.0
            await _sleep_or_stop(stop, delay)

    async def run(self, stop: asyncio.Event) -> None:
        """Run rounds and chain duties until ``stop`` is set."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._rounds(stop))
            tg.create_task(self._chain(stop))

    # -- status and HTTP -------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Per-miner records and the last commit/reveal, as JSON."""
        return self.state.to_status() | {"hotkey": self.chain.hotkey}

    def app(self) -> FastAPI:
        """``/metrics``, ``/health``, ``/status`` and ``POST /v1/recheck``."""
        app = FastAPI(title="Latent validator")
        install_openai_errors(app, internal="Internal validator error")

        @app.get("/metrics")
        async def metrics() -> Response:
            return Response(generate_latest(self.metrics.registry), media_type=CONTENT_TYPE_LATEST)

        @app.get("/health")
        async def health() -> dict[str, Any]:
            return {"status": "ok", "round": self.state.round_index}

        @app.get("/status")
        async def status() -> dict[str, Any]:
            return self.status()

        @app.post(RECHECK_PATH)
        async def recheck(request: Request) -> JSONResponse:
            raw = await request.body()
            if len(raw) > 8 << 20:
                return ApiError(413, "submission larger than 8 MiB").response()
            try:
                sub = RecheckSubmission.from_json(json.loads(raw))
            except (ValueError, InvalidResponse) as exc:
                return ApiError(400, str(exc)).response()
            if not _seed_fixed(sub):
                return ApiError(
                    422, "only greedy requests or requests whose body sets a seed can be re-checked"
                ).response()
            try:
                self.rechecks.put_nowait(sub)
            except asyncio.QueueFull:
                return ApiError(
                    429,
                    "re-check queue full; retry later",
                    type="busy",
                    headers={"Retry-After": "10"},
                ).response()
            return JSONResponse({"accepted": True}, status_code=202)

        return app


def _seed_fixed(sub: RecheckSubmission) -> bool:
    try:
        body = json.loads(sub.request_body)
    except ValueError:
        return False
    if not isinstance(body, dict):
        return False
    return body.get("temperature", 1.0) == 0 or isinstance(body.get("seed"), int)


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    if seconds <= 0:
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
