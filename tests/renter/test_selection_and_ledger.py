"""Pure parts of the proxy: the selection policy (property-tested), the channel ledger's file
format and atomic writes, the spend meter, model-card parsing."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from renter.config import ProxyConfig, SelectionConfig
from renter.ledger import ChannelRecord, LedgerError, LedgerStore, SpendMeter
from renter.market import MinerOffer, offers_from_models
from renter.selection import MinerHealth, rank_miners

CONFIG = SelectionConfig()


def offer(i: int, prompt: int = 1, completion: int = 2, incentive: int = 0) -> MinerOffer:
    return MinerOffer(
        hotkey=f"0x{i:040x}",
        uid=i,
        endpoint=f"http://m{i}",
        model="tiny",
        context_length=128,
        price_prompt=prompt,
        price_completion=completion,
        incentive=incentive,
    )


def rank(offers: list[MinerOffer], health: dict[str, MinerHealth] | None = None, **kw: int):  # type: ignore[no-untyped-def]
    return rank_miners(
        offers,
        model="tiny",
        prompt_tokens=kw.get("prompt", 10),
        max_tokens=kw.get("max_tokens", 10),
        max_price_per_token=kw.get("max_price"),
        health=health or {},
        config=CONFIG,
        now=100.0,
    )


def test_cheaper_wins_when_nothing_else_differs() -> None:
    ranked = rank([offer(1, 2, 4), offer(2, 1, 2)])
    assert [r.offer.uid for r in ranked] == [2, 1]


def test_latency_and_incentive_move_a_miner_up() -> None:
    slow, fast = offer(1), offer(2)
    health = {slow.hotkey: MinerHealth(latency_s=0.4), fast.hotkey: MinerHealth(latency_s=0.1)}
    assert rank([slow, fast], health)[0].offer is fast
    trusted = offer(3, incentive=65535)
    assert rank([offer(4), trusted])[0].offer is trusted


def test_ineligible_miners_are_never_ranked() -> None:
    dropped, cooling, dear, other_model = offer(1), offer(2), offer(3, 9, 9), offer(4)
    other_model = MinerOffer(**{**other_model.__dict__, "model": "big"})
    health = {
        dropped.hotkey: MinerHealth(dropped=True),
        cooling.hotkey: MinerHealth(cooldown_until=200.0),
    }
    ok = offer(5)
    ranked = rank([dropped, cooling, dear, other_model, ok], health, max_price=5)
    assert [r.offer for r in ranked] == [ok]
    assert rank([offer(6)], max_tokens=1000) == []  # above the context


@given(
    st.lists(
        st.tuples(
            st.integers(0, 10**6),
            st.integers(0, 10**6),
            st.integers(0, 65535),
            st.one_of(st.none(), st.floats(0.001, 10.0)),
        ),
        min_size=1,
        max_size=8,
    ),
    st.one_of(st.none(), st.integers(0, 10**6)),
)
def test_ranking_is_a_deterministic_order_of_exactly_the_eligible(
    specs: list[tuple[int, int, int, float | None]], max_price: int | None
) -> None:
    offers = [offer(i, p, c, inc) for i, (p, c, inc, _) in enumerate(specs)]
    health = {o.hotkey: MinerHealth(latency_s=s[3]) for o, s in zip(offers, specs, strict=True)}
    ranked = rank(offers, health, max_price=max_price)
    expected = {
        o.hotkey
        for o in offers
        if max_price is None or (o.price_prompt <= max_price and o.price_completion <= max_price)
    }
    assert {r.offer.hotkey for r in ranked} == expected
    assert [r.score for r in ranked] == sorted(r.score for r in ranked)
    assert ranked == rank(list(reversed(offers)), health, max_price=max_price)
    # The cheapest, fastest, most trusted miner, if one exists, is first.
    if ranked:
        best = ranked[0]
        for other in ranked[1:]:
            assert not (
                other.cost < best.cost
                and (health[other.offer.hotkey].latency_s or 0)
                <= (health[best.offer.hotkey].latency_s or 0)
                and other.offer.incentive >= best.offer.incentive
                and health[best.offer.hotkey].latency_s is not None
                and health[other.offer.hotkey].latency_s is not None
            )


def record(**changes: object) -> ChannelRecord:
    base = ChannelRecord(
        channel_id=b"\x0a" * 32,
        miner="0x" + "11" * 20,
        endpoint="http://m",
        escrow="0x" + "22" * 20,
        token="0x" + "33" * 20,
        chain_id=31337,
        salt=b"\x05" * 32,
        deposit=10**18,
    )
    return ChannelRecord(**{**base.__dict__, **changes})  # type: ignore[arg-type]


def test_ledger_round_trips_and_refuses_other_schemas(tmp_path: Path) -> None:
    store = LedgerStore(tmp_path)
    first = record(owed=5, requests=1, status="retired", note="why")
    store.save_channel(first)
    assert store.load_channels() == [first]
    assert not list(store.channels_dir.glob(".*.tmp"))  # temp files replaced, none left
    data = json.loads(store.channel_path(first.channel_id).read_text())
    assert data["schema"] == 1 and data["owed"] == "5"
    data["schema"] = 2
    store.channel_path(first.channel_id).write_text(json.dumps(data))
    with pytest.raises(LedgerError, match="schema"):
        store.load_channels()


def test_receipt_log_is_the_ledgers_journal(tmp_path: Path) -> None:
    """A served request only appends to the log; loading folds it into the channel file."""
    store = LedgerStore(tmp_path)
    opened = record(owed=5, requests=1, prompt_tokens=4, completion_tokens=6, last_used=9.0)
    other = record(channel_id=b"\x09" * 32, salt=b"\x09" * 32)
    store.save_channel(opened)
    store.save_channel(other)
    cid = "0x" + opened.channel_id.hex()

    def entry(cumulative: int, at: float) -> dict[str, object]:
        return {
            "channel_id": cid,
            "cumulative": str(cumulative),
            "price": "1",
            "time": at,
            "prompt_tokens": 4,
            "completion_tokens": 6,
        }

    # the file was rewritten (a top-up) after the first receipt: counted once, not twice
    store.append_receipts([entry(5, 9.0), entry(9, 11.0), entry(12, 12.0)])
    store.close()
    loaded = {r.channel_id: r for r in store.load_channels()}
    assert loaded[opened.channel_id] == replace(
        opened, owed=12, requests=3, prompt_tokens=12, completion_tokens=18, last_used=12.0
    )
    assert loaded[other.channel_id] == other  # no receipts: the file as written
    with open(store.receipts_path, "a") as fh:
        fh.write('{"channel_id": "0x12"}\n')  # valid JSON, not a receipt entry
    with pytest.raises(LedgerError, match="receipt log entry is malformed"):
        store.load_channels()


def test_receipt_log_skips_a_torn_last_line(tmp_path: Path) -> None:
    store = LedgerStore(tmp_path)
    store.append_receipts([{"price": "3", "time": 1.0}, {"price": "4", "time": 2.0}])
    store.close()
    with open(store.receipts_path, "a") as fh:
        fh.write('{"price": "9", "ti')  # a crash mid-write
    assert [e["price"] for e in store.read_receipts()] == ["3", "4"]


def test_spend_meter_rolls_over_an_hour() -> None:
    now = [10_000.0]
    meter = SpendMeter(clock=lambda: now[0])
    meter.add(5)
    now[0] += 1800
    meter.add(7)
    assert meter.last_hour() == 12 and meter.total == 12
    assert meter.seconds_until_below(10) == pytest.approx(1800.0)
    now[0] += 1801
    assert meter.last_hour() == 7


def test_model_cards_parse_prices_and_skip_other_owners() -> None:
    owner = "0x" + "ab" * 20
    payload = {
        "object": "list",
        "data": [
            {
                "id": "tiny",
                "owned_by": owner,
                "context_length": 256,
                "pricing": {"prompt": "0.000001", "completion": "0.000003"},
            },
            {
                "id": "x",
                "owned_by": "0x" + "cd" * 20,
                "pricing": {"prompt": "1", "completion": "1"},
            },
        ],
    }
    offers = offers_from_models(payload, endpoint="http://m/", hotkey=owner, uid=3)
    assert len(offers) == 1
    assert offers[0].price_prompt == 10**12 and offers[0].price_completion == 3 * 10**12
    assert offers[0].context_length == 256 and offers[0].endpoint == "http://m"


def test_proxy_refuses_a_public_bind_without_api_keys() -> None:
    from chain.errors import ConfigError

    with pytest.raises(ConfigError, match="api-key"):
        ProxyConfig(host="0.0.0.0").validate()
    ProxyConfig(host="0.0.0.0", api_keys=("k",)).validate()
