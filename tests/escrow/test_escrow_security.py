"""Attacks on PaymentEscrow. Each test asserts the outcome the attack would change (who got
paid, what was credited), so it fails on an escrow without the defence, not just on a
different error message."""

from __future__ import annotations

import pytest
from escrow_env import (
    FEE_BPS,
    GRACE_S,
    Parties,
    latest_timestamp,
    salt,
    set_next_timestamp,
    voucher,
)
from eth_keys import keys
from web3 import Web3

from chain.client import Contract
from chain.errors import custom_error
from chain.escrow import EscrowClient
from chain.node import increase_time
from chain.token import ONE, SubnetTokenClient
from chain.vouchers import SECP256K1_N, Voucher, channel_id, sign_voucher, voucher_digest


def _open(
    escrow: EscrowClient, token: SubnetTokenClient, parties: Parties, n: int = 1, amount: int = ONE
) -> bytes:
    cid, _ = escrow.open(
        parties.miner.address, token.address, salt(n), amount, sender=parties.renter
    )
    return cid


def test_voucher_replay_on_another_channel_is_rejected(
    clean, escrow: EscrowClient, token, parties: Parties
) -> None:
    a = _open(escrow, token, parties, 1)
    b = _open(escrow, token, parties, 2)  # same renter, miner and token: only the salt differs
    signed_for_a = voucher(escrow, parties.renter, a, 500)
    escrow.settle(signed_for_a, sender=parties.miner)
    replay = Voucher(channel_id=b, cumulative_amount=500, signature=signed_for_a.signature)
    with pytest.raises(custom_error("EscrowSignerUnauthorised")):
        escrow.settle(replay, sender=parties.miner)
    assert escrow.channel(b).settled == 0


def test_voucher_replay_on_another_escrow_is_rejected(
    clean, w3: Web3, escrow: EscrowClient, token, parties: Parties
) -> None:
    other, _ = EscrowClient.deploy(
        w3, sender=parties.owner, reward_pool=parties.pool.address, fee_bps=FEE_BPS
    )
    token.approve(other.address, 2**256 - 1, sender=parties.renter)
    cid = _open(escrow, token, parties, 1)
    cid_other, _ = other.open(
        parties.miner.address, token.address, salt(1), ONE, sender=parties.renter
    )
    assert cid != cid_other  # the escrow address is part of the channel id

    signed = voucher(escrow, parties.renter, cid, 700)
    with pytest.raises(custom_error("EscrowChannelUnknown")):
        other.settle(signed, sender=parties.miner)
    # Same parties, signature for the first escrow's domain, presented with the other channel's id.
    forged = Voucher(channel_id=cid_other, cumulative_amount=700, signature=signed.signature)
    with pytest.raises(custom_error("EscrowSignerUnauthorised")):
        other.settle(forged, sender=parties.miner)
    # Even the right channel id signed under the first escrow's domain fails on the other one.
    wrong_domain = sign_voucher(
        parties.renter,
        escrow=escrow.address,
        chain_id=31337,
        channel_id=cid_other,
        cumulative_amount=700,
    )
    with pytest.raises(custom_error("EscrowSignerUnauthorised")):
        other.settle(wrong_domain, sender=parties.miner)
    assert other.channel(cid_other).settled == 0


def test_voucher_signed_for_another_chain_id_is_rejected(
    clean, escrow: EscrowClient, token, parties: Parties
) -> None:
    cid = _open(escrow, token, parties)
    foreign = sign_voucher(
        parties.renter, escrow=escrow.address, chain_id=1, channel_id=cid, cumulative_amount=900
    )
    with pytest.raises(custom_error("EscrowSignerUnauthorised")) as info:
        escrow.settle(foreign, sender=parties.miner)
    assert info.value.error_args["signer"] != parties.renter.address
    assert escrow.channel(cid).settled == 0
    # The chain id is also in the channel id: the same parties on chain 1 have another channel.
    assert (
        channel_id(
            parties.renter.address, parties.miner.address, token.address, salt(1), escrow.address, 1
        )
        != cid
    )
    escrow.settle(
        voucher(escrow, parties.renter, cid, 900), sender=parties.miner
    )  # the right domain works
    assert escrow.channel(cid).settled == 900


@pytest.mark.parametrize("who", ["stranger", "miner", "session"])
def test_only_renter_or_session_key_may_sign(
    clean, escrow: EscrowClient, token, parties: Parties, who: str
) -> None:
    cid = _open(escrow, token, parties)
    signer = getattr(parties, who)
    with pytest.raises(custom_error("EscrowSignerUnauthorised")) as info:
        escrow.settle(voucher(escrow, signer, cid, 1_000), sender=parties.miner)
    assert info.value.error_args["signer"] == signer.address
    assert escrow.channel(cid).settled == 0


def test_high_s_malleable_signature_is_rejected(
    clean, escrow: EscrowClient, token, parties: Parties
) -> None:
    cid = _open(escrow, token, parties)
    good = voucher(escrow, parties.renter, cid, 1_234)
    r, s, v = good.signature[:32], int.from_bytes(good.signature[32:64], "big"), good.signature[64]
    twin_sig = r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])  # 27 <-> 28
    # The twin is a valid secp256k1 signature by the renter: plain ecrecover would accept it.
    digest = voucher_digest(
        escrow=escrow.address, chain_id=31337, channel_id=cid, cumulative_amount=1_234
    )
    raw = keys.Signature(vrs=(twin_sig[64] - 27, int.from_bytes(r, "big"), SECP256K1_N - s))
    assert (
        raw.recover_public_key_from_msg_hash(digest).to_checksum_address() == parties.renter.address
    )

    twin = Voucher(channel_id=cid, cumulative_amount=1_234, signature=twin_sig)
    with pytest.raises(custom_error("EscrowSignatureInvalid")) as info:
        escrow.settle(twin, sender=parties.miner)
    assert info.value.error_args["reason"] == 3  # ECDSA.RecoverError.InvalidSignatureS
    assert escrow.channel(cid).settled == 0
    with pytest.raises(custom_error("EscrowSignatureInvalid")):
        escrow.settle(
            Voucher(cid, 1_234, good.signature[:64] + b"\x01"), sender=parties.miner
        )  # bad v
    with pytest.raises(custom_error("EscrowSignatureInvalid")):
        escrow.transact("settle", cid, 1_234, good.signature[:64], sender=parties.miner)  # short


def test_stale_and_oversized_vouchers_are_rejected(
    clean, escrow: EscrowClient, token, parties: Parties
) -> None:
    cid = _open(escrow, token, parties, amount=10_000)
    escrow.settle(voucher(escrow, parties.renter, cid, 6_000), sender=parties.miner)
    for amount in (5_999, 6_000):
        with pytest.raises(custom_error("EscrowVoucherStale")) as info:
            escrow.settle(voucher(escrow, parties.renter, cid, amount), sender=parties.miner)
        assert info.value.error_args == {"channelId": cid, "cumulative": amount, "settled": 6_000}
    with pytest.raises(custom_error("EscrowVoucherExceedsDeposit")):
        escrow.settle(voucher(escrow, parties.renter, cid, 10_001), sender=parties.miner)
    assert escrow.channel(cid).settled == 6_000


def test_grace_period_semantics(
    clean, w3: Web3, escrow: EscrowClient, token, parties: Parties
) -> None:
    """During grace the miner can settle (up to the last second); from closesAt on, nothing."""
    cid = _open(escrow, token, parties)
    escrow.settle(voucher(escrow, parties.renter, cid, 100), sender=parties.miner)
    escrow.request_close(cid, sender=parties.renter)
    closes_at = escrow.channel(cid).closes_at
    assert closes_at == latest_timestamp(w3) + GRACE_S

    set_next_timestamp(w3, closes_at - 1)
    with pytest.raises(custom_error("EscrowGracePeriodActive")):
        escrow.withdraw(cid, sender=parties.renter)  # withdraw before the grace period ends
    set_next_timestamp(w3, closes_at - 1)
    escrow.settle(
        voucher(escrow, parties.renter, cid, 200), sender=parties.miner
    )  # last second of grace
    assert escrow.channel(cid).settled == 200

    set_next_timestamp(w3, closes_at)
    with pytest.raises(custom_error("EscrowChannelFinal")):
        escrow.settle(voucher(escrow, parties.renter, cid, 300), sender=parties.miner)
    set_next_timestamp(w3, closes_at)
    before = token.balance_of(parties.renter.address)
    escrow.withdraw(cid, sender=parties.renter)
    assert token.balance_of(parties.renter.address) == before + ONE - 200
    with pytest.raises(custom_error("EscrowAlreadyWithdrawn")):
        escrow.withdraw(cid, sender=parties.renter)
    increase_time(w3, 86_400)
    with pytest.raises(custom_error("EscrowChannelFinal")):
        escrow.settle(voucher(escrow, parties.renter, cid, 300), sender=parties.miner)
    assert token.balance_of(parties.renter.address) == before + ONE - 200
    assert token.balance_of(escrow.address) == 200  # the miner's settled, unclaimed earnings


def _token_channel(escrow: EscrowClient, tok: Contract, parties: Parties, amount: int) -> bytes:
    """A channel whose renter is the ReentrantToken contract itself (so its hook can top it up)."""
    tok.transact("mint", tok.address, 10 * amount, sender=parties.owner)
    tok.transact(
        "callAs",
        tok.address,
        tok.functions.approve(escrow.address, 2**256 - 1)._encode_transaction_data(),
        sender=parties.owner,
    )
    data = escrow.functions.open(
        parties.miner.address, tok.address, salt(50), amount
    )._encode_transaction_data()
    tok.transact("callAs", escrow.address, data, sender=parties.owner)
    return escrow.channel_id(tok.address, parties.miner.address, tok.address, salt(50))


def test_reentrant_deposit_is_not_double_counted(
    clean, escrow: EscrowClient, reentrant_token: Contract, parties: Parties
) -> None:
    tok = reentrant_token
    victim, _ = escrow.open(
        parties.miner.address, tok.address, salt(1), 1_000, sender=parties.renter
    )
    attacker = _token_channel(escrow, tok, parties, 1_000)
    # During the renter's top-up pull, the token tops up its own channel from inside transferFrom.
    # Without the guard the balance delta of the outer call would include the inner deposit.
    tok.transact(
        "arm",
        escrow.address,
        escrow.functions.topUp(attacker, 5_000)._encode_transaction_data(),
        sender=parties.owner,
    )
    escrow.top_up(victim, 2_000, sender=parties.renter)
    assert tok.call("hookCalls") == 1 and tok.call("lastHookSucceeded") is False
    assert escrow.channel(victim).deposit == 3_000
    assert escrow.channel(attacker).deposit == 1_000
    assert tok.call("balanceOf", escrow.address) == 4_000  # == sum of deposits


def test_reentrant_withdraw_and_claim_pay_once(
    clean, w3: Web3, escrow: EscrowClient, reentrant_token: Contract, parties: Parties
) -> None:
    tok = reentrant_token
    cid, _ = escrow.open(parties.miner.address, tok.address, salt(1), 10_000, sender=parties.renter)
    other, _ = escrow.open(
        parties.miner.address, tok.address, salt(2), 10_000, sender=parties.renter
    )
    for c in (cid, other):
        escrow.settle(voucher(escrow, parties.renter, c, 4_000), sender=parties.miner)

    miner_before = tok.call("balanceOf", parties.miner.address)
    tok.transact(
        "arm",
        escrow.address,
        escrow.functions.claimEarnings([cid])._encode_transaction_data(),
        sender=parties.owner,
    )
    escrow.claim_earnings([cid], sender=parties.miner)
    assert tok.call("lastHookSucceeded") is False
    assert (
        tok.call("balanceOf", parties.miner.address)
        == miner_before + 4_000 - 4_000 * FEE_BPS // 10_000
    )

    escrow.request_close(cid, sender=parties.renter)
    increase_time(w3, GRACE_S)
    renter_before = tok.call("balanceOf", parties.renter.address)
    tok.transact(
        "arm",
        escrow.address,
        escrow.functions.withdraw(cid)._encode_transaction_data(),
        sender=parties.owner,
    )
    escrow.withdraw(cid, sender=parties.renter)
    assert tok.call("lastHookSucceeded") is False
    assert tok.call("balanceOf", parties.renter.address) == renter_before + 6_000
    # Everything still owed is still there: the other channel's deposit and the accrued fee.
    assert tok.call("balanceOf", escrow.address) == 10_000 + escrow.accrued_fees(tok.address)


def test_fee_on_transfer_token_credits_what_arrived(
    clean, escrow: EscrowClient, fot_token: Contract, parties: Parties
) -> None:
    tok = fot_token
    cid, _ = escrow.open(parties.miner.address, tok.address, salt(1), 10_000, sender=parties.renter)
    assert escrow.channel(cid).deposit == 9_900  # 1% burned in transit
    escrow.top_up(cid, 1_000, sender=parties.renter)
    assert escrow.channel(cid).deposit == 10_890
    assert tok.call("balanceOf", escrow.address) == 10_890
    with pytest.raises(custom_error("EscrowVoucherExceedsDeposit")):
        escrow.settle(
            voucher(escrow, parties.renter, cid, 11_000), sender=parties.miner
        )  # what was sent, not credited
    escrow.settle(voucher(escrow, parties.renter, cid, 10_890), sender=parties.miner)
    escrow.claim_earnings([cid], sender=parties.miner)
    fee = 10_890 * FEE_BPS // 10_000
    assert tok.call("balanceOf", escrow.address) == fee == escrow.accrued_fees(tok.address)
    escrow.sweep_fees(tok.address, sender=parties.miner)
    assert tok.call("balanceOf", escrow.address) == 0


def test_session_key_change_cannot_erase_what_the_renter_owes(
    clean, escrow: EscrowClient, token, parties: Parties, accounts
) -> None:
    """The attack: the renter's session key signs for work the miner serves, then the renter
    switches keys before the miner settles and withdraws the whole deposit. The replaced
    key's vouchers must stay settleable through the grace period, and the renter cannot
    rotate again to cut that window short."""
    cid = _open(escrow, token, parties)
    escrow.set_session_key(cid, parties.session.address, sender=parties.renter)
    owed = voucher(escrow, parties.session, cid, ONE // 4)  # the miner served against this
    other_key = accounts[5]
    receipt = escrow.set_session_key(cid, other_key.address, sender=parties.renter)
    (event,) = escrow.events(receipt, "SessionKeySet")
    assert event["previousKeyUntil"] == latest_timestamp(escrow.w3) + GRACE_S
    # A second rotation inside the window (to drop the old key early) is refused.
    with pytest.raises(custom_error("EscrowSessionKeyChangePending")):
        escrow.set_session_key(cid, None, sender=parties.renter)
    escrow.request_close(cid, sender=parties.renter)
    # The miner settles the old key's voucher inside the grace period: the debt is paid.
    escrow.settle(owed, sender=parties.miner)
    increase_time(escrow.w3, GRACE_S)
    before = token.balance_of(parties.renter.address)
    escrow.withdraw(cid, sender=parties.renter)
    assert token.balance_of(parties.renter.address) - before == ONE - ONE // 4
    assert escrow.channel(cid).settled == ONE // 4


def test_replaced_key_expires_after_the_grace_period(
    clean, escrow: EscrowClient, token, parties: Parties
) -> None:
    cid = _open(escrow, token, parties)
    escrow.set_session_key(cid, parties.session.address, sender=parties.renter)
    escrow.set_session_key(cid, None, sender=parties.renter)
    ch = escrow.channel(cid)
    assert ch.previous_session_key == parties.session.address
    assert ch.may_sign(parties.session.address)
    increase_time(escrow.w3, GRACE_S)
    assert not escrow.channel(cid).may_sign(parties.session.address)
    with pytest.raises(custom_error("EscrowSignerUnauthorised")):
        escrow.settle(voucher(escrow, parties.session, cid, 5), sender=parties.miner)
    # After the window the renter may rotate again.
    escrow.set_session_key(cid, parties.session.address, sender=parties.renter)


def test_settle_many_survives_a_voucher_settled_first_by_someone_else(
    clean, escrow: EscrowClient, token, parties: Parties
) -> None:
    """Settling is permissionless: anyone may settle one of the miner's vouchers first (a
    front-runner, or the miner's own second process). The miner's batch must still settle
    the others and report the skipped one, instead of reverting and settling nothing."""
    cids = [_open(escrow, token, parties, n) for n in range(3)]
    batch = [voucher(escrow, parties.renter, cid, 100 * (n + 1)) for n, cid in enumerate(cids)]
    escrow.settle(batch[1], sender=parties.stranger)  # front-run
    receipt = escrow.settle_many(batch, sender=parties.miner)
    assert [bytes(e["channelId"]) for e in escrow.events(receipt, "VoucherSkipped")] == [cids[1]]
    assert [escrow.channel(c).settled for c in cids] == [100, 200, 300]
    # The return value counts the settled ones (read by simulating the same call again
    # after a fresh voucher on one channel).
    again = [voucher(escrow, parties.renter, cids[0], 150), *batch[1:]]
    count = escrow.functions.settleMany(
        [v.channel_id for v in again],
        [v.cumulative_amount for v in again],
        [v.signature for v in again],
    ).call({"from": parties.miner.address})
    assert count == 1
