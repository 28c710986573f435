"""The dashboard end to end: a real anvil subnet (epochs, stake, weights, a settled escrow
channel), fake validator ``/status`` and miner ``/v1/models`` endpoints served in-process, the
dashboard served with :func:`serve_dashboard`, and the page rendered by a real headless
Chromium (Debian's ``chromium``; ``scripts/bootstrap.sh`` installs it).

Two Chromium runs against the same page: ``--dump-dom`` (the DOM after the page's scripts
ran: table rows, and each chart's drawn point count and position) and ``--screenshot`` (the
pixels: each chart's area must hold drawn lines, not just the background).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from dashboard_env import MINERS, TOKEN, DemoSubnet
from fastapi import FastAPI
from web3 import Web3

from chain.metagraph import Metagraph
from latent.dashboard import serve_dashboard
from latent.dashboard.sources import ChainSource
from protocol.serving import serve_in_loop

WINDOW = (1440, 1800)
#: The charts' background (``CHART_BG`` in dashboard.js).
CHART_BG = (0x17, 0x1D, 0x25)
UNREACHABLE = "http://127.0.0.1:9"


def find_chromium() -> str | None:
    """Debian's chromium (``LATENT_CHROMIUM`` overrides)."""
    override = os.environ.get("LATENT_CHROMIUM")
    if override:
        return override
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


async def chromium(binary: str, profile: Path, *args: str) -> bytes:
    """Run headless Chromium once; returns its stdout."""
    flags = [
        "--headless",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        "--disable-dev-shm-usage",
        "--force-device-scale-factor=1",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        # virtual time runs the page's timers fast and waits for its fetches: two polls
        "--virtual-time-budget=5000",
        f"--user-data-dir={profile}",
    ]
    if os.geteuid() == 0:
        flags.append("--no-sandbox")  # Chromium refuses to sandbox as root
    proc = await asyncio.create_subprocess_exec(
        binary,
        *flags,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 120)
    except TimeoutError:
        proc.kill()
        raise
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    return out


class PageDom(HTMLParser):
    """What the test reads from the rendered DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.table: str | None = None
        self.rows: dict[str, int] = {}
        self.uid_rows: list[int] = []
        self.canvases: dict[str, dict[str, str]] = {}
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "table":
            self.table = a.get("id")
        elif tag == "tr" and self.table and "data-uid" in a:
            self.uid_rows.append(int(a["data-uid"]))
        elif tag == "td" and self.table and "empty" not in a.get("class", ""):
            self.rows[self.table] = self.rows.get(self.table, 0) + 1
        elif tag == "canvas":
            self.canvases[a["data-metric"]] = a

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self.table = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def fake_endpoints(statuses: dict[int, dict[str, Any]]) -> FastAPI:
    """Validators' ``/status`` (filled once hotkeys exist) and miners' ``/v1/models``: miner 2
    publishes a price, miner 3 does not."""
    app = FastAPI()

    @app.get("/validator/{index}/status")
    async def status(index: int) -> dict[str, Any]:
        return statuses[index]

    @app.get("/miner/{uid}/v1/models")
    async def models(uid: int) -> dict[str, Any]:
        card: dict[str, Any] = {"id": "tiny", "object": "model"}
        if uid == 2:
            card["pricing"] = {"prompt": "0.000001", "completion": "0.000002"}
        return {"object": "list", "data": [card]}

    return app


def miner_record(hotkey: str, pass_rate: float, tps: float, ttft: float) -> dict[str, Any]:
    return {
        "hotkey": hotkey,
        "score": pass_rate * tps / 200,
        "checks": 10,
        "pass_rate": pass_rate,
        "tokens_per_s": tps,
        "ttft_s": ttft,
        "last_reason": "" if pass_rate > 0.5 else "hidden-state mismatch",
    }


def chart_pixels(png: Path, rect: str) -> tuple[int, int]:
    """(pixels that are not the chart background, distinct colours) inside ``rect``."""
    from PIL import Image

    x, y, w, h = (int(v) for v in rect.split(","))
    with Image.open(png) as image:
        raw = image.convert("RGB").crop((x, y, x + w, y + h)).tobytes()
    pixels = [tuple(raw[i : i + 3]) for i in range(0, len(raw), 3)]
    drawn = sum(1 for p in pixels if max(abs(a - b) for a, b in zip(p, CHART_BG, strict=True)) > 24)
    return drawn, len(set(pixels))


def test_chain_source_reads_past_epochs_then_follows_new_ones(
    demo: DemoSubnet, fresh_chain: Web3
) -> None:
    source = ChainSource(
        fresh_chain, metagraph=demo.metagraph, escrow=demo.escrow, from_block=demo.from_block
    )
    info, mg = source.read()
    assert info.epoch == demo.epoch and mg.n == 5
    epochs = [r.epoch_block for r in source.history]
    assert len(epochs) == demo.epochs and info.last_epoch_block == epochs[-1]
    # Each record holds the scores as its epoch left them (the latest equals the head's).
    assert source.history[-1].incentive == mg.incentive
    assert source.history[-2].incentive != mg.incentive
    settled = [e for e in source.escrow_events if e.name == "VoucherSettled"]
    assert len(settled) == 3
    assert source.read()[0] is info  # no new block: nothing read again

    demo.run_epoch()
    info2, _ = source.read()
    assert [r.epoch_block for r in source.history][:-1] == epochs
    assert source.history[-1].epoch_block == info2.last_epoch_block > info.last_epoch_block
    assert len(source.escrow_events) == len(demo.channels) + 3  # nothing scanned twice
    assert source.errors == []


def test_chain_source_without_past_state_keeps_the_latest_epoch(
    demo: DemoSubnet, fresh_chain: Web3, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A node that serves no past state: the latest epoch's scores come from the head."""
    source = ChainSource(fresh_chain, metagraph=demo.metagraph, from_block=demo.from_block)
    head = fresh_chain.eth.block_number
    real = source.reader.snapshot

    def pruned(block: int | str = "latest") -> Metagraph:
        if block != "latest" and int(block) < head:
            raise ValueError("missing trie node")  # what a pruned geth answers
        return real(block)

    monkeypatch.setattr(source.reader, "snapshot", pruned)
    _, mg = source.read()
    assert len(source.history) == 1
    assert source.history[0].incentive == mg.incentive
    assert len(source.errors) == 1 and "archive node" in source.errors[0]


def test_dashboard_renders_in_headless_chromium(
    demo: DemoSubnet, fresh_chain: Web3, tmp_path: Path
) -> None:
    binary = find_chromium()
    if binary is None:
        pytest.skip(
            "chromium is not installed and scripts/bootstrap.sh could not install it "
            "(needs root and apt: `apt-get install -y chromium`); set LATENT_CHROMIUM to a binary"
        )
    started = time.monotonic()
    w3 = fresh_chain
    statuses: dict[int, dict[str, Any]] = {}

    async def scenario() -> tuple[dict[str, Any], bytes, Path]:
        async with serve_in_loop(fake_endpoints(statuses)) as base:
            endpoints = {2: f"{base}/miner/2", 3: f"{base}/miner/3", 4: UNREACHABLE}
            await asyncio.to_thread(demo.set_endpoints, endpoints)
            miners = [demo.hotkeys[uid] for uid in MINERS]
            for index, hotkey, rows in (
                (0, demo.hotkeys[0], [(1.0, 120.0, 0.05), (1.0, 80.0, 0.2), (0.2, 150.0, 0.04)]),
                (1, demo.hotkeys[1], [(0.9, 100.0, 0.07), (1.0, 90.0, 0.3), (0.0, 140.0, 0.03)]),
            ):
                statuses[index] = {
                    "hotkey": hotkey,
                    "round": 7 + index,
                    "miners": [miner_record(hk, *r) for hk, r in zip(miners, rows, strict=True)],
                    "last_commit": None,
                    "last_reveal": None,
                }
            validators = [f"{base}/validator/0", f"{base}/validator/1", UNREACHABLE]
            async with serve_dashboard(
                w3,
                metagraph=demo.metagraph,
                escrow=demo.escrow,
                validator_urls=validators,
                network="test",
                from_block=demo.from_block,
                refresh_s=0.5,
            ) as url:
                async with httpx.AsyncClient() as http:
                    state = (await http.get(f"{url}/api/state")).json()
                    assert (await http.get(f"{url}/static/dashboard.js")).status_code == 200
                dom = await chromium(binary, tmp_path / "profile", "--dump-dom", url)
                png = tmp_path / "dashboard.png"
                await chromium(binary, tmp_path / "profile", f"--screenshot={png}", url)
        return state, dom, png

    state, dom_bytes, png = asyncio.run(scenario())
    if os.environ.get("LATENT_DASHBOARD_SCREENSHOT"):
        shutil.copy(png, os.environ["LATENT_DASHBOARD_SCREENSHOT"])

    # The JSON model: five uids, medians over the two answering validators, prices.
    neurons = {n["uid"]: n for n in state["neurons"]}
    assert sorted(neurons) == [0, 1, 2, 3, 4]
    assert neurons[2]["pass_rate"] == pytest.approx(0.95)
    assert neurons[2]["tokens_per_s"] == pytest.approx(110.0)
    assert neurons[2]["ttft_s"] == pytest.approx(0.06)
    assert neurons[2]["reported_by"] == 2
    assert (neurons[2]["price_prompt"], neurons[2]["price_completion"]) == (1e-6, 2e-6)
    assert neurons[3]["price_prompt"] is None and neurons[4]["price_prompt"] is None
    assert neurons[0]["validator_permit"] and neurons[0]["dividends"] > 0.5
    assert sum(neurons[u]["incentive"] for u in MINERS) == pytest.approx(1.0, abs=1e-3)
    assert [v["ok"] for v in state["validators"]] == [True, True, False]
    assert len(state["history"]["epochs"]) == 3
    channels = {
        c["channel_id"]: (c["miner_uid"], c["deposit"], c["settled"])
        for c in state["escrow"]["channels"]
    }
    assert channels == {
        cid: (uid, deposit / TOKEN, settled / TOKEN)
        for cid, (uid, deposit, settled) in demo.channels.items()
    }
    assert len(state["escrow"]["settlements"]) == 3
    assert state["escrow"]["settlements"][0]["timestamp"] is not None

    # The rendered DOM: one metagraph row per uid, both channels, every payment, all charts.
    dom = PageDom()
    dom.feed(dom_bytes.decode())
    assert sorted(dom.uid_rows) == [0, 1, 2, 3, 4], dom.uid_rows
    assert dom.rows.get("channels", 0) == 2 * 8
    assert dom.rows.get("payments", 0) == 3 * 7
    assert dom.rows.get("validators", 0) == 3 * 5
    text = " ".join(dom.text)
    assert "95%" in text and "110.0" in text and "60 ms" in text
    assert "1.00 / 2.00" in text  # LAT per 1M tokens
    for metric in ("incentive", "dividends", "emission"):
        canvas = dom.canvases[metric]
        assert int(canvas.get("data-points", "0")) == 5 * 3, (metric, canvas)

        # The screenshot: the chart's area holds drawn series, not only background.
        drawn, colours = chart_pixels(png, canvas["data-rect"])
        _, y, w, h = (int(v) for v in canvas["data-rect"].split(","))
        assert y + h <= WINDOW[1], f"chart {metric} is below the screenshot"
        assert drawn > 0.01 * w * h, (metric, drawn, w * h)
        assert colours > 20, (metric, colours)
    elapsed = time.monotonic() - started
    print(f"dashboard browser test: {elapsed:.1f} s, screenshot {png}")
