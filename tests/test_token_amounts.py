"""Whole-token amounts typed on the command line <-> base units."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chain.errors import ConfigError
from chain.token import ONE, format_tokens, parse_token_amount


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
