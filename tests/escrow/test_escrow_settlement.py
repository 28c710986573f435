"""`latent miner settle` and `latent renter ...` against anvil."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest
from escrow_env import FEE_BPS, GRACE_S, Parties, salt, voucher
from typer.testing import CliRunner
from web3 import Web3

from chain.escrow import EscrowClient, split_claim
from chain.node import AnvilNode, increase_time
from chain.token import ONE
from chain.vouchers import VoucherBook
from miner.settlement import SETTLE_GAS_PER_VOUCHER, SettlementPolicy, settle_vouchers
from renter.cli import app as renter_app


def test_settle_skips_unprofitable_and_foreign_channels(
    clean, tmp_path: Path, escrow: EscrowClient, token, parties: Parties
) -> None:
    gas_price = 10**9  # 1 gwei: one voucher's gas is worth 21e12 token units at parity
    big, _ = escrow.open(parties.miner.address, token.address, salt(1), ONE, sender=parties.renter)
    tiny, _ = escrow.open(parties.miner.address, token.address, salt(2), ONE, sender=parties.renter)
    done, _ = escrow.open(parties.miner.address, token.address, salt(3), ONE, sender=parties.renter)
    foreign, _ = escrow.open(
        parties.stranger.address, token.address, salt(4), ONE, sender=parties.renter
    )
    escrow.settle(voucher(escrow, parties.renter, done, 10**16), sender=parties.miner)

    book = VoucherBook(tmp_path / "vouchers.json")
    for cid, amount in (
        (big, 10**17),
        (tiny, SETTLE_GAS_PER_VOUCHER * gas_price // 2),
        (done, 10**16),
        (foreign, 10**17),
    ):
        book.record(voucher(escrow, parties.renter, cid, amount))

    before = token.balance_of(parties.miner.address)
    report = settle_vouchers(
        escrow, book, parties.miner, policy=SettlementPolicy(gas_price_wei=gas_price)
    )
    assert report.settled == [(big, 10**17)]
    reasons = dict(report.skipped)
    assert "exceeds the amount" in reasons[tiny]
    assert reasons[done] == "already settled"
    assert "not this miner" in reasons[foreign]
    assert escrow.channel(big).settled == 10**17 and escrow.channel(tiny).settled == 0
    expected = split_claim(0, 10**17, FEE_BPS)[0] + split_claim(0, 10**16, FEE_BPS)[0]
    assert report.claimed == {token.address: expected}
    assert token.balance_of(parties.miner.address) == before + expected

    # At a negligible gas price the tiny voucher becomes worth settling.
    cheap = SettlementPolicy(gas_price_wei=1, token_price_native=Fraction(1))
    report = settle_vouchers(escrow, book, parties.miner, policy=cheap)
    assert report.settled == [(tiny, SETTLE_GAS_PER_VOUCHER * gas_price // 2)]


def test_settle_min_amount_waived_for_closing_channels(
    clean, tmp_path: Path, escrow: EscrowClient, token, parties: Parties
) -> None:
    a, _ = escrow.open(parties.miner.address, token.address, salt(1), ONE, sender=parties.renter)
    b, _ = escrow.open(parties.miner.address, token.address, salt(2), ONE, sender=parties.renter)
    book = VoucherBook(tmp_path / "v.json")
    book.record(voucher(escrow, parties.renter, a, 1000))
    book.record(voucher(escrow, parties.renter, b, 1000))
    escrow.request_close(b, sender=parties.renter)
    report = settle_vouchers(
        escrow,
        book,
        parties.miner,
        policy=SettlementPolicy(gas_price_wei=0),
        min_amount=10**6,
        claim=False,
    )
    assert report.settled == [(b, 1000)]
    assert "below the minimum" in dict(report.skipped)[a]


@pytest.fixture
def cli_env(anvil: AnvilNode, escrow: EscrowClient, token) -> list[str]:
    return ["--network", "localnet", "--rpc-url", anvil.rpc_url, "--escrow", escrow.address]


def test_renter_cli_open_topup_status_close_withdraw(
    clean, w3: Web3, cli_env: list[str], escrow: EscrowClient, token, parties: Parties
) -> None:
    runner = CliRunner()
    args = [
        "open",
        "--miner",
        parties.miner.address,
        "--amount",
        "2.5",
        "--token",
        token.address,
        "--dev-account",
        "1",
        "--json",
        *cli_env,
    ]
    result = runner.invoke(renter_app, args)
    assert result.exit_code == 0, result.output
    import json

    opened = json.loads(result.output)
    cid = opened["channel_id"]
    assert opened["deposit_wei"] == str(25 * ONE // 10)

    result = runner.invoke(
        renter_app, ["topup", cid, "--amount", "0.5", "--dev-account", "1", *cli_env]
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(renter_app, ["status", cid, "--json", *cli_env])
    assert json.loads(result.output)["deposit_wei"] == str(3 * ONE)

    result = runner.invoke(renter_app, ["withdraw", cid, "--dev-account", "1", *cli_env])
    assert result.exit_code != 0 and "close the channel first" in str(result.exception)
    assert runner.invoke(renter_app, ["close", cid, "--dev-account", "1", *cli_env]).exit_code == 0
    result = runner.invoke(renter_app, ["withdraw", cid, "--dev-account", "1", *cli_env])
    assert "grace period" in str(result.exception)
    increase_time(w3, GRACE_S)
    before = token.balance_of(parties.renter.address)
    result = runner.invoke(renter_app, ["withdraw", cid, "--dev-account", "1", *cli_env])
    assert result.exit_code == 0, result.output
    assert token.balance_of(parties.renter.address) == before + 3 * ONE


def test_renter_cli_rejects_bad_amount(clean, cli_env: list[str], token, parties: Parties) -> None:
    result = CliRunner().invoke(
        renter_app,
        [
            "open",
            "--miner",
            parties.miner.address,
            "--amount",
            "-1",
            "--token",
            token.address,
            "--dev-account",
            "1",
            *cli_env,
        ],
    )
    assert result.exit_code != 0 and "must be positive" in str(result.exception)
