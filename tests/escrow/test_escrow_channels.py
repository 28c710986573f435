"""PaymentEscrow behaviour: opening, funding, settling, claiming, closing, owner settings."""

from __future__ import annotations

import pytest
from escrow_env import FEE_BPS, GRACE_S, Parties, latest_timestamp, salt, voucher
from web3 import Web3

from chain.errors import custom_error
from chain.escrow import EscrowClient, split_claim, total_fee
from chain.keys import dev_accounts
from chain.node import increase_time
from chain.token import ONE, SubnetTokenClient
from chain.vouchers import channel_id, voucher_digest


def open_channel(
    escrow: EscrowClient, token: SubnetTokenClient, parties: Parties, n: int = 1, amount: int = ONE
) -> bytes:
    cid, _ = escrow.open(
        parties.miner.address, token.address, salt(n), amount, sender=parties.renter
    )
    return cid


def test_open_records_channel_and_pulls_deposit(
    clean, escrow: EscrowClient, token, parties: Parties
) -> None:
    before = token.balance_of(parties.renter.address)
    cid, receipt = escrow.open(
        parties.miner.address, token.address, salt(7), 5 * ONE, sender=parties.renter
    )

    assert cid == bytes(
        escrow.call(
            "channelIdOf", parties.renter.address, parties.miner.address, token.address, salt(7)
        )
    )
    assert cid == channel_id(
        parties.renter.address, parties.miner.address, token.address, salt(7), escrow.address, 31337
    )
    ch = escrow.channel(cid)
    assert (ch.renter, ch.miner, ch.token) == (
        parties.renter.address,
        parties.miner.address,
        token.address,
    )
    assert (ch.deposit, ch.settled, ch.claimed, ch.fee_bps, ch.closes_at, ch.session_key) == (
        5 * ONE,
        0,
        0,
        FEE_BPS,
        0,
        None,
    )
    assert ch.status == "open"
    assert token.balance_of(parties.renter.address) == before - 5 * ONE
    assert token.balance_of(escrow.address) == 5 * ONE
    (event,) = escrow.events(receipt, "ChannelOpened")
    assert event["deposit"] == 5 * ONE and event["salt"] == salt(7)


def test_open_rejects_bad_inputs(clean, escrow: EscrowClient, token, parties: Parties) -> None:
    open_channel(escrow, token, parties, 1)
    with pytest.raises(custom_error("EscrowChannelExists")):
        open_channel(escrow, token, parties, 1)
    with pytest.raises(custom_error("EscrowMinerZero")):
        escrow.open("0x" + "00" * 20, token.address, salt(2), ONE, sender=parties.renter)
    with pytest.raises(custom_error("EscrowTokenInvalid")):
        escrow.open(
            parties.miner.address, parties.stranger.address, salt(2), ONE, sender=parties.renter
        )
    with pytest.raises(custom_error("EscrowNothingReceived")):
        escrow.open(parties.miner.address, token.address, salt(2), 0, sender=parties.renter)


def test_open_with_permit_needs_no_approve_and_survives_front_run(
    clean, escrow: EscrowClient, token, parties: Parties
) -> None:
    fresh = dev_accounts(6)[5]
    token.mint(fresh.address, 10 * ONE, sender=parties.owner)
    assert token.allowance(fresh.address, escrow.address) == 0

    permit = token.sign_permit(fresh, escrow.address, 2 * ONE, 2**40)
    cid, _ = escrow.open_with_permit(
        parties.miner.address, token.address, salt(1), permit, sender=fresh
    )
    assert escrow.channel(cid).deposit == 2 * ONE

    # Front-run: someone submits the renter's permit first; the open must still go through.
    permit2 = token.sign_permit(fresh, escrow.address, 3 * ONE, 2**40)
    token.permit(permit2, sender=parties.stranger)
    cid2, _ = escrow.open_with_permit(
        parties.miner.address, token.address, salt(2), permit2, sender=fresh
    )
    assert escrow.channel(cid2).deposit == 3 * ONE
    assert token.balance_of(fresh.address) == 5 * ONE

    # A useless permit and no allowance: the transferFrom decides (OZ ERC20 error), not the permit.
    with pytest.raises(custom_error("ERC20InsufficientAllowance")):
        escrow.open_with_permit(
            parties.miner.address, token.address, salt(3), permit2, sender=fresh
        )


def test_top_up(clean, escrow: EscrowClient, token, parties: Parties) -> None:
    cid = open_channel(escrow, token, parties)
    receipt = escrow.top_up(cid, 3 * ONE, sender=parties.renter)
    assert escrow.channel(cid).deposit == 4 * ONE
    assert escrow.events(receipt, "ChannelToppedUp")[0]["deposit"] == 4 * ONE
    with pytest.raises(custom_error("EscrowNotRenter")):
        escrow.top_up(cid, ONE, sender=parties.stranger)
    with pytest.raises(custom_error("EscrowChannelUnknown")):
        escrow.top_up(salt(99), ONE, sender=parties.renter)
    escrow.request_close(cid, sender=parties.renter)
    with pytest.raises(custom_error("EscrowChannelClosing")):
        escrow.top_up(cid, ONE, sender=parties.renter)


def test_settle_credits_and_claim_pays_net_of_exact_fee(
    clean, escrow: EscrowClient, token, parties: Parties
) -> None:
    cid = open_channel(escrow, token, parties)
    miner_before = token.balance_of(parties.miner.address)
    amounts = [999, 12_345, 12_346, 400_001]
    for amount in amounts:
        receipt = escrow.settle(
            voucher(escrow, parties.renter, cid, amount), sender=parties.stranger
        )
    (event,) = escrow.events(receipt, "VoucherSettled")
    assert event["amount"] == 400_001 - 12_346
    assert event["fee"] == total_fee(400_001, FEE_BPS) - total_fee(12_346, FEE_BPS)
    assert token.balance_of(parties.miner.address) == miner_before  # settling moves no tokens

    # Anyone may claim; the money goes to the miner only.
    escrow.claim_earnings([cid], sender=parties.stranger)
    net, fee = split_claim(0, 400_001, FEE_BPS)
    assert fee == 400_001 * FEE_BPS // 10_000
    assert token.balance_of(parties.miner.address) == miner_before + net
    assert escrow.accrued_fees(token.address) == fee
    assert escrow.channel(cid).claimed == 400_001

    # A second claim with nothing new pays nothing.
    receipt = escrow.claim_earnings([cid], sender=parties.miner)
    assert escrow.events(receipt, "EarningsClaimed") == []

    pool_before = token.balance_of(parties.pool.address)
    escrow.sweep_fees(token.address, sender=parties.stranger)
    assert token.balance_of(parties.pool.address) == pool_before + fee
    assert escrow.accrued_fees(token.address) == 0
    assert token.balance_of(escrow.address) == ONE - 400_001


def test_fee_is_exact_however_claims_are_split(
    clean, escrow: EscrowClient, token, parties: Parties
) -> None:
    a = open_channel(escrow, token, parties, 1)
    b = open_channel(escrow, token, parties, 2)
    # Channel a: one claim at the end. Channel b: a claim after every settle.
    for amount in (39, 79, 119, 1_000_003):
        escrow.settle(voucher(escrow, parties.renter, a, amount), sender=parties.miner)
        escrow.settle(voucher(escrow, parties.renter, b, amount), sender=parties.miner)
        escrow.claim_earnings([b], sender=parties.miner)
    escrow.claim_earnings([a], sender=parties.miner)
    assert escrow.accrued_fees(token.address) == 2 * total_fee(1_000_003, FEE_BPS)


def test_settle_many_and_claim_batch(clean, escrow: EscrowClient, token, parties: Parties) -> None:
    cids = [open_channel(escrow, token, parties, n) for n in range(3)]
    vouchers = [voucher(escrow, parties.renter, cid, 1000 * (i + 1)) for i, cid in enumerate(cids)]
    escrow.settle_many(vouchers, sender=parties.miner)
    assert [escrow.channel(c).settled for c in cids] == [1000, 2000, 3000]
    before = token.balance_of(parties.miner.address)
    escrow.claim_earnings(cids, sender=parties.miner)
    expected = sum(split_claim(0, 1000 * (i + 1), FEE_BPS)[0] for i in range(3))
    assert token.balance_of(parties.miner.address) == before + expected

    with pytest.raises(custom_error("EscrowBatchLengthMismatch")):
        escrow.transact(
            "settleMany", cids, [1, 2], [v.signature for v in vouchers], sender=parties.miner
        )
    # A voucher someone else settled first is skipped (reported), the rest still settle.
    fresh = [voucher(escrow, parties.renter, cid, 5000) for cid in cids[:2]] + [vouchers[2]]
    receipt = escrow.settle_many(fresh, sender=parties.miner)
    skipped = escrow.events(receipt, "VoucherSkipped")
    assert [(bytes(e["channelId"]), e["cumulative"], e["settled"]) for e in skipped] == [
        (cids[2], 3000, 3000)
    ]
    assert [escrow.channel(c).settled for c in cids] == [5000, 5000, 3000]
    # Any other invalid voucher still reverts the whole batch (nothing is half-applied).
    forged = [
        voucher(escrow, parties.renter, cids[0], 6000),
        voucher(escrow, parties.stranger, cids[1], 6000),
    ]
    with pytest.raises(custom_error("EscrowSignerUnauthorised")):
        escrow.settle_many(forged, sender=parties.miner)
    assert escrow.channel(cids[0]).settled == 5000


def test_claim_rejects_mixed_miners(clean, escrow: EscrowClient, token, parties: Parties) -> None:
    a = open_channel(escrow, token, parties, 1)
    b, _ = escrow.open(parties.stranger.address, token.address, salt(2), ONE, sender=parties.renter)
    with pytest.raises(custom_error("EscrowBatchMixed")):
        escrow.claim_earnings([a, b], sender=parties.miner)
    with pytest.raises(custom_error("EscrowChannelUnknown")):
        escrow.claim_earnings([a, salt(77)], sender=parties.miner)


def test_session_key_signs_for_renter(clean, escrow: EscrowClient, token, parties: Parties) -> None:
    cid = open_channel(escrow, token, parties)
    with pytest.raises(custom_error("EscrowSignerUnauthorised")):
        escrow.settle(voucher(escrow, parties.session, cid, 10), sender=parties.miner)
    with pytest.raises(custom_error("EscrowNotRenter")):
        escrow.set_session_key(cid, parties.session.address, sender=parties.miner)
    escrow.set_session_key(cid, parties.session.address, sender=parties.renter)
    assert escrow.channel(cid).session_key == parties.session.address
    escrow.settle(voucher(escrow, parties.session, cid, 10), sender=parties.miner)
    escrow.settle(
        voucher(escrow, parties.renter, cid, 20), sender=parties.miner
    )  # renter still may
    escrow.set_session_key(cid, None, sender=parties.renter)
    # The replaced key keeps signing for one grace period (what it signed stays payable) ...
    escrow.settle(voucher(escrow, parties.session, cid, 30), sender=parties.miner)
    increase_time(escrow.w3, GRACE_S)
    # ... and no longer after it.
    with pytest.raises(custom_error("EscrowSignerUnauthorised")):
        escrow.settle(voucher(escrow, parties.session, cid, 40), sender=parties.miner)
    assert escrow.channel(cid).settled == 30


def test_cooperative_close_settles_pays_and_refunds(
    clean, escrow: EscrowClient, token, parties: Parties
) -> None:
    cid = open_channel(escrow, token, parties)
    escrow.settle(voucher(escrow, parties.renter, cid, 100), sender=parties.miner)
    final = voucher(escrow, parties.renter, cid, 1_000)
    with pytest.raises(custom_error("EscrowNotMiner")):
        escrow.cooperative_close(cid, final, sender=parties.renter)
    renter_before = token.balance_of(parties.renter.address)
    miner_before = token.balance_of(parties.miner.address)
    receipt = escrow.cooperative_close(cid, final, sender=parties.miner)
    assert escrow.events(receipt, "ChannelClosed")[0]["cooperative"] is True
    assert token.balance_of(parties.renter.address) == renter_before + ONE - 1_000
    assert (
        token.balance_of(parties.miner.address) == miner_before + split_claim(0, 1_000, FEE_BPS)[0]
    )
    ch = escrow.channel(cid)
    assert ch.finalised and ch.refunded and ch.settled == ch.claimed == 1_000
    assert token.balance_of(escrow.address) == escrow.accrued_fees(token.address)
    with pytest.raises(custom_error("EscrowChannelFinal")):
        escrow.settle(voucher(escrow, parties.renter, cid, 2_000), sender=parties.miner)
    with pytest.raises(custom_error("EscrowChannelFinal")):
        escrow.cooperative_close(cid, None, sender=parties.miner)
    with pytest.raises(custom_error("EscrowAlreadyWithdrawn")):
        escrow.withdraw(cid, sender=parties.renter)


def test_cooperative_close_without_voucher_during_grace(
    clean, w3: Web3, escrow: EscrowClient, token, parties: Parties
) -> None:
    cid = open_channel(escrow, token, parties)
    escrow.request_close(cid, sender=parties.renter)
    renter_before = token.balance_of(parties.renter.address)
    escrow.cooperative_close(cid, None, sender=parties.miner)
    assert token.balance_of(parties.renter.address) == renter_before + ONE
    assert escrow.call("channelStatus", cid) == 3  # Final, before the grace period would have ended
    assert latest_timestamp(w3) < escrow.channel(cid).read_at + GRACE_S


def test_request_close_and_withdraw(
    clean, w3: Web3, escrow: EscrowClient, token, parties: Parties
) -> None:
    cid = open_channel(escrow, token, parties)
    escrow.settle(voucher(escrow, parties.renter, cid, 300), sender=parties.miner)
    with pytest.raises(custom_error("EscrowCloseNotRequested")):
        escrow.withdraw(cid, sender=parties.renter)
    with pytest.raises(custom_error("EscrowNotRenter")):
        escrow.request_close(cid, sender=parties.miner)
    receipt = escrow.request_close(cid, sender=parties.renter)
    closes_at = escrow.events(receipt, "CloseRequested")[0]["closesAt"]
    assert closes_at == latest_timestamp(w3) + GRACE_S
    assert escrow.channel(cid).status == "closing"
    with pytest.raises(custom_error("EscrowChannelClosing")):
        escrow.request_close(cid, sender=parties.renter)
    increase_time(w3, GRACE_S)
    assert escrow.channel(cid).status == "final"
    before = token.balance_of(parties.renter.address)
    escrow.withdraw(cid, sender=parties.stranger)  # anyone may trigger; the renter is paid
    assert token.balance_of(parties.renter.address) == before + ONE - 300
    # The miner's settled earnings survive the close and can still be claimed.
    m_before = token.balance_of(parties.miner.address)
    escrow.claim_earnings([cid], sender=parties.miner)
    assert token.balance_of(parties.miner.address) == m_before + split_claim(0, 300, FEE_BPS)[0]
    with pytest.raises(custom_error("EscrowChannelFinal")):
        escrow.request_close(cid, sender=parties.renter)


def test_owner_settings_are_bounded_and_not_retroactive(
    clean, escrow: EscrowClient, token, parties: Parties
) -> None:
    with pytest.raises(custom_error("OwnableUnauthorizedAccount")):
        escrow.set_protocol_fee(10, sender=parties.stranger)
    with pytest.raises(custom_error("EscrowFeeTooHigh")):
        escrow.set_protocol_fee(1_001, sender=parties.owner)
    with pytest.raises(custom_error("EscrowGracePeriodOutOfRange")):
        escrow.set_grace_period(15 * 60 - 1, sender=parties.owner)
    with pytest.raises(custom_error("EscrowGracePeriodOutOfRange")):
        escrow.set_grace_period(30 * 86_400 + 1, sender=parties.owner)
    with pytest.raises(custom_error("EscrowRewardPoolZero")):
        escrow.set_reward_pool("0x" + "00" * 20, sender=parties.owner)

    old = open_channel(escrow, token, parties, 1)
    receipt = escrow.set_protocol_fee(1_000, sender=parties.owner)
    assert escrow.events(receipt, "ProtocolFeeSet")[0]["feeBps"] == 1_000
    new = open_channel(escrow, token, parties, 2)
    for cid in (old, new):
        escrow.settle(voucher(escrow, parties.renter, cid, 10_000), sender=parties.miner)
        escrow.claim_earnings([cid], sender=parties.miner)
    assert escrow.accrued_fees(token.address) == 10_000 * FEE_BPS // 10_000 + 1_000

    escrow.set_grace_period(3_600, sender=parties.owner)
    escrow.set_reward_pool(parties.stranger.address, sender=parties.owner)
    before = token.balance_of(parties.stranger.address)
    escrow.sweep_fees(token.address, sender=parties.miner)
    assert token.balance_of(parties.stranger.address) == before + 10_000 * FEE_BPS // 10_000 + 1_000


def test_voucher_digest_matches_contract(clean, escrow: EscrowClient) -> None:
    cid = salt(12345)
    assert escrow.voucher_digest(cid, 42) == voucher_digest(
        escrow=escrow.address, chain_id=31337, channel_id=cid, cumulative_amount=42
    )


def test_channel_unknown(clean, escrow: EscrowClient, parties: Parties) -> None:
    assert escrow.find_channel(salt(5)) is None
    with pytest.raises(custom_error("EscrowChannelUnknown")):
        escrow.settle(voucher(escrow, parties.renter, salt(5), 1), sender=parties.miner)
