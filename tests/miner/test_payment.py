"""Payment gate: the credit rule of miner/payment.py with real voucher signatures.

The channel reader here is ``InMemoryChannels`` (same Protocol as the on-chain reader); the
signatures are real EIP-712 vouchers from ``chain.vouchers``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from chain.vouchers import VoucherBook, decode_voucher_header, encode_voucher_header, sign_voucher
from miner.config import PaymentConfig, PricingConfig
from miner.payment import ChannelView, InMemoryChannels, PaymentGate, PaymentRequired

ESCROW = "0x" + "e5" * 20
TOKEN = "0x" + "70" * 20
CHAIN_ID = 31337
MINER = Account.from_key("0x" + "01" * 32)
OTHER_MINER = Account.from_key("0x" + "02" * 32)
RENTER = Account.from_key("0x" + "03" * 32)
SESSION = Account.from_key("0x" + "04" * 32)
STRANGER = Account.from_key("0x" + "05" * 32)
PRICING = PricingConfig(per_prompt_token=1, per_completion_token=10)
CHANNEL = b"\x11" * 32
OTHER_CHANNEL = b"\x22" * 32


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _channel(channel_id: bytes = CHANNEL, **changes: object) -> ChannelView:
    base = ChannelView(
        channel_id=channel_id,
        renter=RENTER.address,
        miner=MINER.address,
        token=TOKEN,
        deposit=10_000,
        settled=0,
        session_key=SESSION.address,
        closing=False,
        finalised=False,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def _header(
    amount: int,
    *,
    signer: LocalAccount = RENTER,
    channel_id: bytes = CHANNEL,
    escrow: str = ESCROW,
    chain_id: int = CHAIN_ID,
) -> str:
    voucher = sign_voucher(
        signer, escrow=escrow, chain_id=chain_id, channel_id=channel_id, cumulative_amount=amount
    )
    return encode_voucher_header(voucher)


def _gate(
    channels: InMemoryChannels, *, clock: Clock | None = None, store: VoucherBook | None = None
) -> PaymentGate:
    return PaymentGate(
        miner=MINER.address,
        reader=channels,
        payment=PaymentConfig(
            escrow_address=ESCROW, token_address=TOKEN, chain_id=CHAIN_ID, channel_cache_ttl_s=5.0
        ),
        pricing=PRICING,
        store=store,
        clock=clock or Clock(),
    )


def _admit(gate: PaymentGate, header: str | None, prompt: int = 3, max_tokens: int = 4):
    return asyncio.run(gate.admit(header, prompt_tokens=prompt, max_tokens=max_tokens))


def _refusal(gate: PaymentGate, header: str | None, **kw: int) -> PaymentRequired:
    with pytest.raises(PaymentRequired) as info:
        _admit(gate, header, **kw)
    return info.value


@pytest.fixture
def channels() -> InMemoryChannels:
    store = InMemoryChannels()
    store.put(_channel())
    return store


def test_sequence_of_paid_requests_each_voucher_covers_the_previous(
    channels: InMemoryChannels,
) -> None:
    gate = _gate(channels)
    owed = 0
    for completion_tokens in (4, 1, 3):
        ticket = _admit(gate, _header(owed))
        price = PRICING.price(prompt_tokens=3, completion_tokens=completion_tokens)
        gate.complete(ticket, price)
        owed += price
        assert gate.served(CHANNEL) == owed
    assert gate.earnings_total == owed - PRICING.price(prompt_tokens=3, completion_tokens=3)


def test_short_voucher_gets_402_with_the_exact_requirement(channels: InMemoryChannels) -> None:
    gate = _gate(channels)
    gate.complete(_admit(gate, _header(0)), 43)
    refusal = _refusal(gate, _header(42))
    assert refusal.status == 402 and refusal.code == "voucher_short"
    assert refusal.quote["required_cumulative"] == "43"
    assert refusal.quote["max_price"] == str(3 * 1 + 4 * 10)
    _admit(gate, _header(43))  # exactly the requirement is enough


def test_replayed_voucher_is_refused(channels: InMemoryChannels) -> None:
    gate = _gate(channels)
    header = _header(0)
    gate.complete(_admit(gate, header), 43)
    assert _refusal(gate, header).code == "voucher_short"


def test_stale_voucher_below_an_accepted_one_is_refused(channels: InMemoryChannels) -> None:
    gate = _gate(channels)
    gate.complete(_admit(gate, _header(500)), 43)  # prepaid
    assert _refusal(gate, _header(400)).code == "voucher_stale"
    _admit(gate, _header(500))  # covers everything delivered (43 + 43 <= 500): fine


def test_missing_or_garbage_voucher_gets_402_with_quote(channels: InMemoryChannels) -> None:
    gate = _gate(channels)
    missing = _refusal(gate, None)
    assert missing.code == "voucher_missing"
    assert missing.quote["miner"] == MINER.address
    assert missing.quote["escrow"].lower() == ESCROW
    assert _refusal(gate, "v1.nothex").code == "voucher_malformed"


def test_voucher_for_a_channel_of_another_miner(channels: InMemoryChannels) -> None:
    channels.put(_channel(OTHER_CHANNEL, miner=OTHER_MINER.address))
    gate = _gate(channels)
    refusal = _refusal(gate, _header(0, channel_id=OTHER_CHANNEL))
    assert refusal.code == "channel_wrong_miner"


def test_channel_in_another_token_is_refused(channels: InMemoryChannels) -> None:
    channels.put(_channel(token="0x" + "71" * 20))
    assert _refusal(_gate(channels), _header(0)).code == "channel_wrong_token"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"escrow": "0x" + "e6" * 20},  # signed for another escrow contract
        {"chain_id": 1},  # signed for another chain
        {"signer": STRANGER},  # signed by someone else
    ],
)
def test_voucher_not_signed_for_this_channel_is_refused(
    channels: InMemoryChannels, kwargs: dict
) -> None:
    gate = _gate(channels)
    assert _refusal(gate, _header(0, **kwargs)).code == "voucher_bad_signature"


def test_voucher_moved_to_another_channel_fails_signature(channels: InMemoryChannels) -> None:
    channels.put(_channel(OTHER_CHANNEL))
    gate = _gate(channels)
    signed_for_a = _header(0)
    moved = signed_for_a.replace(CHANNEL.hex(), OTHER_CHANNEL.hex())
    assert _refusal(gate, moved).code == "voucher_bad_signature"
    assert _refusal(gate, _header(0, channel_id=b"\x33" * 32)).code == "channel_unknown"


def test_session_key_may_sign(channels: InMemoryChannels) -> None:
    gate = _gate(channels)
    gate.complete(_admit(gate, _header(0, signer=SESSION)), 5)
    gate.complete(_admit(gate, _header(5, signer=RENTER)), 5)
    assert gate.served(CHANNEL) == 10


@pytest.mark.parametrize("state", [{"closing": True}, {"finalised": True}])
def test_closing_or_finalised_channel_gets_no_credit(
    channels: InMemoryChannels, state: dict
) -> None:
    channels.put(_channel(**state))
    assert _refusal(_gate(channels), _header(0)).code == "channel_closed"


def test_credit_must_be_backed_by_the_deposit(channels: InMemoryChannels) -> None:
    channels.put(_channel(deposit=100))
    gate = _gate(channels)
    assert _refusal(gate, _header(101)).code == "channel_underfunded"
    # served 0 + max price (3 + 4*10 = 43) fits; after serving 60, 60 + 43 > 100
    gate.complete(_admit(gate, _header(0)), 60)
    assert _refusal(gate, _header(60)).code == "channel_underfunded"
    channels.put(_channel(deposit=200))  # topped up: the gate re-reads before refusing
    _admit(gate, _header(60))


def test_one_request_in_flight_per_channel(channels: InMemoryChannels) -> None:
    gate = _gate(channels)
    ticket = _admit(gate, _header(0))
    assert _refusal(gate, _header(0)).status == 409
    gate.release(ticket)  # failed request: nothing owed, same voucher works again
    assert gate.served(CHANNEL) == 0
    _admit(gate, _header(0))


def test_channel_reads_are_cached_for_the_ttl(channels: InMemoryChannels) -> None:
    clock = Clock()
    gate = _gate(channels, clock=clock)
    gate.complete(_admit(gate, _header(0)), 1)
    gate.complete(_admit(gate, _header(1)), 1)
    assert channels.reads == 1
    channels.put(_channel(closing=True))
    gate.complete(_admit(gate, _header(2)), 1)  # stale cache still says open
    clock.now += 5.1
    assert _refusal(gate, _header(3)).code == "channel_closed"
    assert channels.reads == 2


def test_accepted_vouchers_are_booked_and_survive_restart(
    channels: InMemoryChannels, tmp_path: Path
) -> None:
    book = VoucherBook(tmp_path / "vouchers.json")
    gate = _gate(channels, store=book)
    gate.complete(_admit(gate, _header(0)), 7)
    gate.complete(_admit(gate, _header(7)), 7)
    latest = VoucherBook(tmp_path / "vouchers.json").latest(CHANNEL)
    assert latest is not None and latest.cumulative_amount == 7
    restarted = _gate(channels, store=VoucherBook(tmp_path / "vouchers.json"))
    # After a restart the miner forgives the one in-flight request, nothing more.
    assert _refusal(restarted, _header(6)).code == "voucher_stale"
    _admit(restarted, _header(7))


def test_settled_amount_counts_as_paid_on_first_sight(channels: InMemoryChannels) -> None:
    channels.put(_channel(settled=50))
    gate = _gate(channels)
    assert _refusal(gate, _header(49)).code == "voucher_stale"
    assert _admit(gate, _header(50)).increment == 0


# ------------------------------------------------------------------ against the real escrow


def test_gate_reads_real_channels_from_the_escrow_on_anvil(
    w3, token, accounts: list[LocalAccount], fresh_chain
) -> None:
    from chain.escrow import EscrowClient
    from miner.payment import EscrowChannelReader

    owner, renter, miner, other_miner = accounts[0], accounts[1], accounts[2], accounts[3]
    escrow, _ = EscrowClient.deploy(w3, sender=owner, reward_pool=accounts[9].address)
    token.mint(renter.address, 10**6, sender=owner)
    token.approve(escrow.address, 10**6, sender=renter)
    cid, _ = escrow.open(miner.address, token.address, b"\x01" * 32, 1000, sender=renter)
    foreign, _ = escrow.open(other_miner.address, token.address, b"\x02" * 32, 1000, sender=renter)
    chain_id = int(w3.eth.chain_id)
    gate = PaymentGate(
        miner=miner.address,
        reader=EscrowChannelReader(escrow),
        payment=PaymentConfig(
            escrow_address=escrow.address, token_address=token.address, chain_id=chain_id
        ),
        pricing=PRICING,
        clock=Clock(),
    )

    def header(amount: int, channel: bytes = cid) -> str:
        voucher = sign_voucher(
            renter,
            escrow=escrow.address,
            chain_id=chain_id,
            channel_id=channel,
            cumulative_amount=amount,
        )
        return encode_voucher_header(voucher)

    gate.complete(_admit(gate, header(0)), 43)
    assert _refusal(gate, header(0)).code == "voucher_short"
    assert _refusal(gate, header(1001)).code == "channel_underfunded"
    assert _refusal(gate, header(0, foreign)).code == "channel_wrong_miner"
    assert _refusal(gate, header(0, b"\x09" * 32)).code == "channel_unknown"
    _admit(gate, header(43))
    # the voucher the gate accepted settles on-chain
    escrow.settle(decode_voucher_header(header(43)), sender=miner)
    assert escrow.channel(cid).settled == 43
