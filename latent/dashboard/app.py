"""The dashboard service: a refresher that keeps the page model current, and its web app.

``/`` is the page, ``/static/...`` its script and style (shipped with the package, no CDN),
``/api/state`` the JSON model (:func:`latent.dashboard.model.build_state`). One refresher per
dashboard reads the chain and polls validators and miners every ``refresh_s`` seconds, so
any number of open pages cost the chain nothing extra; pages poll ``/api/state``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from importlib import resources
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from web3 import Web3

from latent.dashboard.model import Pricing, build_state
from latent.dashboard.sources import (
    READ_ERRORS,
    ChainSource,
    fetch_prices,
    fetch_validator_reports,
)
from protocol.serving import serve_in_loop

log = logging.getLogger(__name__)

#: Seconds between refreshes (the page polls at the same pace).
REFRESH_S = 2.0
#: Miner prices change rarely: each endpoint is asked at most this often.
PRICE_TTL_S = 30.0


class Dashboard:
    """Holds the latest page model; :meth:`refresh` rebuilds it.

    ``validator_urls`` is read at every refresh, so a list the caller appends to (validators
    started later) is followed.
    """

    def __init__(
        self,
        source: ChainSource,
        validator_urls: Sequence[str] = (),
        *,
        http: httpx.AsyncClient,
        refresh_s: float = REFRESH_S,
    ) -> None:
        self.source = source
        self.validator_urls = validator_urls
        self.http = http
        self.refresh_s = refresh_s
        self.state: dict[str, Any] | None = None
        self.last_error = ""
        self._prices: dict[str, Pricing | None] = {}
        self._prices_at = 0.0
        self._lock = asyncio.Lock()

    async def refresh(self) -> dict[str, Any]:
        """Read everything once and rebuild the model (serialised: one refresh at a time)."""
        async with self._lock:
            info, mg = await asyncio.to_thread(self.source.read)
            timestamps = await asyncio.to_thread(self.source.timestamps)
            reports = await fetch_validator_reports(self.http, list(self.validator_urls))
            endpoints = [e for e in mg.endpoints if e]
            now = time.time()
            if now - self._prices_at >= PRICE_TTL_S or set(endpoints) - set(self._prices):
                self._prices = await fetch_prices(self.http, endpoints)
                self._prices_at = now
            self.state = build_state(
                info,
                mg,
                reports=reports,
                prices=self._prices,
                history=self.source.history,
                escrow_events=self.source.escrow_events,
                timestamps=timestamps,
                errors=self.source.errors,
                now=now,
            )
            self.last_error = ""
            return self.state

    async def run(self, stop: asyncio.Event) -> None:
        """Refresh every ``refresh_s`` until ``stop`` is set; a failed refresh keeps the last
        model (marked stale) and is retried on the next tick. Starts with a refresh unless a
        model is already there."""
        wait = self.state is not None
        while not stop.is_set():
            if wait:
                with suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.refresh_s)
                if stop.is_set():
                    return
            wait = True
            try:
                await self.refresh()
            except READ_ERRORS as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"[:300]
                log.warning("dashboard refresh failed: %s", self.last_error)

    def api_state(self) -> tuple[int, dict[str, Any]]:
        """``(HTTP status, body)`` of ``/api/state``."""
        if self.state is None:
            return 503, {"error": self.last_error or "the dashboard is reading the chain"}
        return 200, {**self.state, "stale": bool(self.last_error), "error": self.last_error}


def _static_dir() -> Any:
    return resources.files("latent.dashboard") / "static"


def create_app(dashboard: Dashboard) -> FastAPI:
    """``/`` (the page), ``/static`` and ``/api/state``."""
    app = FastAPI(title="Latent dashboard", docs_url=None, redoc_url=None)
    static = _static_dir()
    index = (static / "index.html").read_text(encoding="utf-8")

    @app.get("/", response_class=HTMLResponse)
    async def page() -> HTMLResponse:
        return HTMLResponse(index)

    @app.get("/api/state")
    async def api_state() -> JSONResponse:
        status, body = dashboard.api_state()
        return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})

    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    return app


@asynccontextmanager
async def serve_dashboard(
    w3: Web3,
    *,
    metagraph: str,
    epoch: str | None = None,
    escrow: str | None = None,
    validator_urls: Sequence[str] = (),
    network: str = "",
    from_block: int = 0,
    host: str = "127.0.0.1",
    port: int = 0,
    refresh_s: float = REFRESH_S,
) -> AsyncIterator[str]:
    """Serve the dashboard inside the running event loop; yields its URL.

    ``metagraph`` / ``epoch`` / ``escrow`` are contract addresses (``epoch`` defaults to the
    metagraph's epoch contract; no ``escrow``: no payments section); ``validator_urls`` the
    validators whose ``/status`` feeds the quality columns (read at every refresh);
    ``from_block`` the first block to scan for logs (the deployment's). ``port=0`` picks a
    free port. The first refresh runs before the URL is yielded, so the page opens on data.
    """
    source = await asyncio.to_thread(
        ChainSource,
        w3,
        metagraph=metagraph,
        epoch=epoch,
        escrow=escrow,
        network=network,
        from_block=from_block,
    )
    stop = asyncio.Event()
    async with httpx.AsyncClient() as http:
        dashboard = Dashboard(source, validator_urls, http=http, refresh_s=refresh_s)
        try:
            await dashboard.refresh()
        except READ_ERRORS as exc:  # the refresher retries; the page says what is wrong
            dashboard.last_error = f"{type(exc).__name__}: {exc}"[:300]
        refresher = asyncio.create_task(dashboard.run(stop))
        try:
            async with serve_in_loop(create_app(dashboard), host=host, port=port) as url:
                yield url
        finally:
            stop.set()
            await refresher


__all__ = ["REFRESH_S", "Dashboard", "create_app", "serve_dashboard"]
