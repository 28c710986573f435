"""Whole-token amounts typed on the command line <-> base units."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chain.errors import ConfigError
from chain.token import (
    ONE,
    format_price,
    format_token_amount,
    format_tokens,
    parse_price,
    parse_token_amount,
    wire_price,
)


def test_parse_examples() -> None:
    assert parse_token_amount("1.5") == 3 * ONE // 2
    assert parse_token_amount("0.000000000000000001") == 1
    assert parse_token_amount("21000000") == 21_000_000 * ONE
    assert parse_token_amount("5", decimals=6) == 5_000_000


@pytest.mark.parametrize("bad", ["", "abc", "nan", "inf", "1,5"])
def test_not_a_number(bad: str) -> None:
    with pytest.raises(ConfigError, match="is not a number of tokens"):
        parse_token_amount(bad)


@pytest.mark.parametrize("bad", ["0", "-1", "0.0000000000000000001"])
def test_not_positive_or_too_precise(bad: str) -> None:
    with pytest.raises(ConfigError, match="must be positive with at most 18 decimals"):
        parse_token_amount(bad)


def test_format() -> None:
    assert format_tokens(3 * ONE // 2) == "1.5"
    assert format_tokens(1_234_500 * ONE // 1000, places=4) == "1,234.5000"


@given(st.integers(min_value=1, max_value=21_000_000 * ONE))
def test_round_trip(amount: int) -> None:
    assert parse_token_amount(format_tokens(amount)) == amount


def test_amount_in_sentences() -> None:
    assert format_token_amount(9_899 * ONE) == "9,899 LAT"
    assert format_token_amount(1_234_567 * ONE + ONE // 4) == "1,234,567.25 LAT"
    assert format_token_amount(1) == "0.000000000000000001 LAT"
    assert format_token_amount(0) == "0 LAT"


def test_prices_are_tokens_per_million_tokens() -> None:
    assert parse_price("1") == 10**12  # 1 LAT per 1M tokens = 10^12 base units per token
    assert parse_price("0.5") == 5 * 10**11
    assert parse_price("0") == 0
    assert parse_price("0.000000000001") == 1
    assert format_price(4 * 10**12) == "4"
    assert format_price(1) == "0.000000000001"
    assert wire_price("0.000001") == 10**12 and wire_price("0") == 0


@pytest.mark.parametrize("bad", ["-1", "0.0000000000001", "abc", "inf"])
def test_bad_prices(bad: str) -> None:
    with pytest.raises(ConfigError, match="per 1M tokens"):
        parse_price(bad)


@given(st.integers(min_value=0, max_value=10**24))
def test_price_round_trip(per_token: int) -> None:
    assert parse_price(format_price(per_token)) == per_token
