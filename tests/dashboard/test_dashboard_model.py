"""The dashboard's page model: pure functions over plain data (no chain, no browser)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from eth_account import Account
from eth_utils import keccak

from chain.metagraph import Hyperparameters, Metagraph
from latent.dashboard.model import (
    ChainInfo,
    EpochRecord,
    EscrowEvent,
    Pricing,
    ValidatorReport,
    build_state,
    escrow_model,
    history_model,
    miner_quality,
    neuron_rows,
    parse_pricing,
    settlement_blocks,
)

TOKEN = 10**18
HK = [Account.from_key(keccak(text=f"dash-{i}")).address for i in range(6)]
COLD = Account.from_key(keccak(text="dash-cold")).address


def hyperparameters(**changes: Any) -> Hyperparameters:
    base = dict.fromkeys(Hyperparameters.__dataclass_fields__, 0)
    base.update(tempo=10, max_uids=256, activity_cutoff=100, liquid_alpha_enabled=False)
    base.update(changes)
    return Hyperparameters(**base)


def metagraph(n: int = 3, *, block: int = 500, endpoints: tuple[str, ...] = ()) -> Metagraph:
    endpoints = endpoints or tuple(f"http://miner{i}" for i in range(n))
    return Metagraph(
        address=HK[5],
        block=block,
        hotkeys=tuple(HK[:n]),
        coldkeys=(COLD,) * n,
        stake=tuple(1_000 * TOKEN if i == 0 else 0 for i in range(n)),
        emission=tuple(i * TOKEN // 4 for i in range(n)),
        registered_at=(1,) * n,
        last_update=tuple(500 - 60 * i for i in range(n)),
        validator_permit=tuple(i == 0 for i in range(n)),
        incentive=tuple(0 if i == 0 else 65535 // (n - 1) for i in range(n)),
        dividends=tuple(65535 if i == 0 else 0 for i in range(n)),
        consensus=(32768,) * n,
        validator_trust=tuple(65535 if i == 0 else 0 for i in range(n)),
        endpoints=endpoints,
        hyperparameters=hyperparameters(),
        registration_price=TOKEN // 2,
    )


def record(hotkey: str, **values: Any) -> dict[str, Any]:
    return {"hotkey": hotkey, "checks": 4, **values}


def test_quality_is_the_median_over_answering_validators() -> None:
    reports = [
        ValidatorReport("a", {"miners": [record(HK[1], pass_rate=1.0, tokens_per_s=100.0)]}),
        ValidatorReport("b", {"miners": [record(HK[1].lower(), pass_rate=0.5, ttft_s=0.2)]}),
        ValidatorReport("c", {"miners": [record(HK[1], pass_rate=0.9, tokens_per_s=50.0)]}),
        ValidatorReport("down", None, "ConnectError"),
    ]
    q = miner_quality(reports)[HK[1]]
    assert q.pass_rate == 0.9
    assert q.tokens_per_s == 75.0  # two reports: the mean of the middle pair
    assert q.ttft_s == 0.2
    assert q.score is None
    assert (q.validators, q.checks) == (3, 12)


@pytest.mark.parametrize(
    "status",
    [
        {},
        {"miners": "nope"},
        {"miners": [1, None, {"hotkey": "not-an-address"}]},
        {"miners": [{"hotkey": HK[2], "pass_rate": "high", "tokens_per_s": True}]},
    ],
)
def test_malformed_status_is_skipped(status: dict[str, Any]) -> None:
    quality = miner_quality([ValidatorReport("x", status)])
    assert all(q.pass_rate is None and q.tokens_per_s is None for q in quality.values())


@pytest.mark.parametrize(
    ("models", "expected"),
    [
        ({"data": [{"pricing": {"prompt": "0.000001", "completion": "2e-6"}}]}, (1e-6, 2e-6)),
        ({"data": [{"id": "tiny"}]}, None),
        ({"data": []}, None),
        ({"data": [{"pricing": {"prompt": "free", "completion": "1"}}]}, None),
        ({"data": [{"pricing": {"prompt": "-1", "completion": "1"}}]}, None),
        ({"data": [{"pricing": {"prompt": "NaN", "completion": "1"}}]}, None),
        ([], None),
    ],
)
def test_parse_pricing(models: Any, expected: tuple[float, float] | None) -> None:
    price = parse_pricing(models)
    assert (None if price is None else (price.prompt, price.completion)) == expected


def test_neuron_rows_units_activity_and_prices() -> None:
    mg = metagraph(3)
    prices = {"http://miner1": Pricing(1e-6, 2e-6), "http://miner2": None}
    rows = neuron_rows(mg, 560, {}, prices)
    assert [r["uid"] for r in rows] == [0, 1, 2]
    assert rows[0]["stake"] == 1000.0
    assert rows[0]["vtrust"] == 1.0 and rows[0]["dividends"] == 1.0
    assert rows[1]["incentive"] == pytest.approx(0.5, abs=1e-4)
    assert rows[2]["emission"] == 0.5
    assert [r["updated"] for r in rows] == [60, 120, 180]
    assert [r["active"] for r in rows] == [True, False, False]  # activity cutoff 100
    assert (rows[1]["price_prompt"], rows[1]["price_completion"]) == (1e-6, 2e-6)
    assert rows[2]["price_prompt"] is None and rows[0]["pass_rate"] is None


def test_history_follows_hotkeys_across_uid_replacement() -> None:
    def rec(epoch: int, hotkeys: list[str], incentive: list[int]) -> EpochRecord:
        n = len(hotkeys)
        return EpochRecord(
            epoch, epoch + 1, 10 * TOKEN, tuple(hotkeys), tuple(incentive), (0,) * n, (TOKEN,) * n
        )

    records = [
        rec(20, [HK[0], HK[1]], [0, 65535]),
        rec(10, [HK[0], HK[1]], [65535, 0]),  # out of order: sorted by epoch block
        rec(30, [HK[0], HK[2]], [0, 65535]),  # uid 1 handed to a new hotkey
    ]
    model = history_model(records)
    assert model["epochs"] == [10, 20, 30]
    assert model["distributed"] == [10.0, 10.0, 10.0]
    series = {s["hotkey"]: s for s in model["series"]}
    assert series[HK[0]]["incentive"] == [1.0, 0.0, 0.0]
    assert series[HK[1]]["incentive"] == [0.0, 1.0, None]
    assert series[HK[2]] == {
        "uid": 1,
        "hotkey": HK[2],
        "incentive": [None, None, 1.0],
        "dividends": [None, None, 0.0],
        "emission": [None, None, 1.0],
    }
    assert history_model(records, limit=2)["epochs"] == [20, 30]


def _event(name: str, block: int, cid: bytes, index: int = 0, **args: Any) -> EscrowEvent:
    return EscrowEvent(name, block, index, f"0x{block:064x}", {"channelId": cid, **args})


def test_escrow_model_replays_channel_logs() -> None:
    a, b, c = b"\xaa" * 32, b"\xbb" * 32, b"\xcc" * 32
    opened = {"renter": HK[4], "token": HK[5], "salt": b"\0" * 32, "feeBps": 100}
    events = [
        _event("ChannelOpened", 10, a, miner=HK[1], deposit=10 * TOKEN, **opened),
        _event("ChannelToppedUp", 11, a, amount=5 * TOKEN, deposit=15 * TOKEN),
        _event("VoucherSettled", 12, a, cumulative=2 * TOKEN, amount=2 * TOKEN, fee=TOKEN // 50),
        _event("VoucherSettled", 14, a, cumulative=3 * TOKEN, amount=TOKEN, fee=TOKEN // 100),
        _event("ChannelOpened", 13, b, miner=HK[2], deposit=4 * TOKEN, **opened),
        _event("CloseRequested", 15, b, closesAt=1_000),
        _event("ChannelClosed", 16, b, 1, refund=4 * TOKEN, cooperative=False),
        # a channel opened before the scanned range is ignored
        _event("VoucherSettled", 17, c, cumulative=TOKEN, amount=TOKEN, fee=0),
    ]
    model = escrow_model(events, {HK[1]: 1}, timestamps={14: 1_700_000_000}, recent=1)
    channels = {ch["channel_id"]: ch for ch in model["channels"]}
    ca, cb = channels["0x" + a.hex()], channels["0x" + b.hex()]
    assert (ca["deposit"], ca["settled"], ca["remaining"]) == (15.0, 3.0, 12.0)
    assert (ca["settlements"], ca["fees"], ca["status"], ca["miner_uid"]) == (2, 0.03, "open", 1)
    assert (cb["status"], cb["remaining"], cb["miner_uid"]) == ("closed", 0.0, None)
    assert [s["block"] for s in model["settlements"]] == [14]
    assert model["settlements"][0]["timestamp"] == 1_700_000_000
    assert model["totals"] == {
        "channels": 2,
        "open": 1,
        "deposited": 19.0,
        "settled": 3.0,
        "remaining": 12.0,
    }
    assert settlement_blocks(events, recent=2) == [14, 17]


def test_build_state_is_json_and_complete() -> None:
    mg = metagraph(3)
    info = ChainInfo("localnet", 31337, 520, 1_700_000_000, HK[5], HK[4], "", 510, 530)
    state = build_state(
        info,
        mg,
        reports=[ValidatorReport("http://v", {"hotkey": HK[0], "round": 3, "miners": []})],
        errors=["epoch 1: cannot read"],
        now=1.5,
    )
    assert json.loads(json.dumps(state)) == state
    assert state["subnet"]["blocks_to_epoch"] == 10
    assert state["subnet"]["validators"] == 1
    assert state["subnet"]["registration_price"] == 0.5
    assert state["validators"][0] | {"ok": True} == {
        "url": "http://v",
        "ok": True,
        "error": "",
        "hotkey": HK[0],
        "round": 3,
        "miners": 0,
        "last_commit": None,
        "last_reveal": None,
    }
    assert state["history"]["epochs"] == [] and state["escrow"]["channels"] == []
    assert state["errors"] == ["epoch 1: cannot read"]
