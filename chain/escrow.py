"""PaymentEscrow client: open and fund channels, settle vouchers, claim, close, withdraw.

Money flow (see ``contracts/interfaces/IPaymentEscrow.sol``): ``settle`` only *credits* the
channel's miner (one storage write; that is what keeps it under 45k gas); tokens leave the
escrow in ``claim_earnings`` (one transfer per miner and token for any number of channels,
net of the protocol fee), ``withdraw`` / ``cooperative_close`` (the renter's remainder) and
``sweep_fees`` (accrued fees to the reward pool).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from web3 import Web3
from web3.exceptions import ContractLogicError
from web3.types import TxReceipt

from chain.client import Contract, decode_revert, deploy_contract
from chain.errors import LatentError
from chain.token import Permit
from chain.vouchers import Voucher, channel_id

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
#: Deployment defaults: 1% protocol fee, 15-minute grace period.
DEFAULT_FEE_BPS = 100
DEFAULT_GRACE_PERIOD_S = 15 * 60
MIN_GRACE_PERIOD_S = 15 * 60
MAX_GRACE_PERIOD_S = 30 * 24 * 3600
MAX_FEE_BPS = 1_000
BPS = 10_000


class ChannelNotFound(LatentError):
    """No channel with this id exists on the escrow."""


def total_fee(gross: int, fee_bps: int) -> int:
    """Protocol fee on a cumulative gross amount (``EscrowFeeMath.totalFee``)."""
    return gross * fee_bps // BPS


def split_claim(claimed_before: int, claimed_after: int, fee_bps: int) -> tuple[int, int]:
    """``(net to miner, fee)`` for claiming the gross range ``(before, after]`` (``EscrowFeeMath.split``)."""
    fee = total_fee(claimed_after, fee_bps) - total_fee(claimed_before, fee_bps)
    return claimed_after - claimed_before - fee, fee


@dataclass(frozen=True)
class Channel:
    """A channel as stored on chain, with its status at the block it was read in.

    Amounts are gross token base units. ``settled`` is the highest settled voucher,
    ``claimed`` the part of it already paid out; ``closes_at`` is 0 while open.
    """

    channel_id: bytes
    renter: str
    miner: str
    token: str
    #: Address allowed to sign vouchers for the renter, or ``None``.
    session_key: str | None
    deposit: int
    settled: int
    claimed: int
    fee_bps: int
    closes_at: int
    refunded: bool
    #: Timestamp of the block the channel was read at.
    read_at: int
    #: The session key a change replaced; it still signs until ``previous_key_until``.
    previous_session_key: str | None = None
    previous_key_until: int = 0

    def may_sign(self, signer: str) -> bool:
        """Whether the escrow settles a voucher ``signer`` signed, at ``read_at`` (the renter,
        the session key, or the replaced key inside its grace period)."""
        if signer in (self.renter, self.session_key):
            return True
        return signer == self.previous_session_key and self.read_at < self.previous_key_until

    @property
    def closing(self) -> bool:
        """The renter requested close (grace period running, or over)."""
        return self.closes_at != 0

    @property
    def finalised(self) -> bool:
        """Final: nothing can be settled any more."""
        return self.closes_at != 0 and self.read_at >= self.closes_at

    @property
    def remaining(self) -> int:
        """Deposit not yet covered by a settled voucher."""
        return self.deposit - self.settled

    @property
    def unclaimed(self) -> int:
        """Gross settled amount not yet paid out."""
        return self.settled - self.claimed

    @property
    def status(self) -> str:
        """``open``, ``closing`` or ``final``."""
        if self.finalised:
            return "final"
        return "closing" if self.closing else "open"

    def to_json(self) -> dict[str, Any]:
        """JSON form (amounts as decimal strings of base units, named ``*_wei``)."""
        return {
            "channel_id": "0x" + self.channel_id.hex(),
            "renter": self.renter,
            "miner": self.miner,
            "token": self.token,
            "session_key": self.session_key,
            "deposit_wei": str(self.deposit),
            "settled_wei": str(self.settled),
            "claimed_wei": str(self.claimed),
            "remaining_wei": str(self.remaining),
            "fee_bps": self.fee_bps,
            "closes_at": self.closes_at,
            "refunded": self.refunded,
            "status": self.status,
        }


class EscrowClient(Contract):
    """Typed access to a deployed PaymentEscrow."""

    def __init__(self, w3: Web3, address: str) -> None:
        super().__init__(w3, "PaymentEscrow", address)

    @classmethod
    def deploy(
        cls,
        w3: Web3,
        *,
        sender: LocalAccount,
        reward_pool: str,
        owner: str | None = None,
        fee_bps: int = DEFAULT_FEE_BPS,
        grace_period_s: int = DEFAULT_GRACE_PERIOD_S,
    ) -> tuple[EscrowClient, TxReceipt]:
        """Deploy a PaymentEscrow (owner defaults to the sender)."""
        contract, receipt = deploy_contract(
            w3,
            "PaymentEscrow",
            to_checksum_address(owner or sender.address),
            to_checksum_address(reward_pool),
            fee_bps,
            grace_period_s,
            sender=sender,
        )
        return cls(w3, contract.address), receipt

    # ------------------------------------------------------------------ views

    @property
    def chain_id(self) -> int:
        return int(self.w3.eth.chain_id)

    def channel_id(self, renter: str, miner: str, token: str, salt: bytes) -> bytes:
        """Channel id on this escrow and chain (computed locally, same as ``channelIdOf``)."""
        return channel_id(renter, miner, token, salt, self.address, self.chain_id)

    def find_channel(self, cid: bytes) -> Channel | None:
        """The channel, or ``None`` when no channel has this id."""
        block = self.w3.eth.get_block("latest")
        raw = self.call("getChannel", cid, block=block["number"])
        (
            deposit,
            settled,
            closes_at,
            fee_bps,
            refunded,
            renter,
            miner,
            claimed,
            token,
            session_key,
            previous_key,
            previous_until,
        ) = raw
        if renter == ZERO_ADDRESS:
            return None
        return Channel(
            channel_id=bytes(cid),
            renter=to_checksum_address(renter),
            miner=to_checksum_address(miner),
            token=to_checksum_address(token),
            session_key=None if session_key == ZERO_ADDRESS else to_checksum_address(session_key),
            deposit=int(deposit),
            settled=int(settled),
            claimed=int(claimed),
            fee_bps=int(fee_bps),
            closes_at=int(closes_at),
            refunded=bool(refunded),
            read_at=int(block["timestamp"]),
            previous_session_key=None
            if previous_key == ZERO_ADDRESS
            else to_checksum_address(previous_key),
            previous_key_until=int(previous_until),
        )

    def channel(self, cid: bytes) -> Channel:
        """The channel; raises :class:`ChannelNotFound` when no channel has this id."""
        found = self.find_channel(cid)
        if found is None:
            raise ChannelNotFound(
                f"no channel 0x{cid.hex()} on escrow {self.address} (chain {self.chain_id}); "
                "check the channel id, escrow address and network"
            )
        return found

    def voucher_digest(self, cid: bytes, cumulative_amount: int) -> bytes:
        return bytes(self.call("voucherDigest", cid, cumulative_amount))

    def accrued_fees(self, token: str) -> int:
        return int(self.call("accruedFees", to_checksum_address(token)))

    def protocol_fee_bps(self) -> int:
        return int(self.call("protocolFeeBps"))

    def grace_period(self) -> int:
        return int(self.call("gracePeriod"))

    def reward_pool(self) -> str:
        return to_checksum_address(self.call("rewardPool"))

    # ------------------------------------------------------------------ renter

    def open(
        self, miner: str, token: str, salt: bytes, amount: int, *, sender: LocalAccount
    ) -> tuple[bytes, TxReceipt]:
        """Open a channel from ``sender`` (needs an allowance); returns ``(channel id, receipt)``."""
        receipt = self.transact(
            "open",
            to_checksum_address(miner),
            to_checksum_address(token),
            salt,
            amount,
            sender=sender,
        )
        return self.channel_id(sender.address, miner, token, salt), receipt

    def open_with_permit(
        self, miner: str, token: str, salt: bytes, permit: Permit, *, sender: LocalAccount
    ) -> tuple[bytes, TxReceipt]:
        """Open with an ERC-2612 permit for ``permit.value`` (no prior approve needed)."""
        receipt = self.transact(
            "openWithPermit",
            to_checksum_address(miner),
            to_checksum_address(token),
            salt,
            permit.value,
            permit.deadline,
            permit.v,
            permit.r,
            permit.s,
            sender=sender,
        )
        return self.channel_id(sender.address, miner, token, salt), receipt

    def top_up(self, cid: bytes, amount: int, *, sender: LocalAccount) -> TxReceipt:
        return self.transact("topUp", cid, amount, sender=sender)

    def set_session_key(
        self, cid: bytes, session_key: str | None, *, sender: LocalAccount
    ) -> TxReceipt:
        """Allow ``session_key`` to sign vouchers on the channel (``None`` clears it)."""
        key = to_checksum_address(session_key) if session_key else ZERO_ADDRESS
        return self.transact("setSessionKey", cid, key, sender=sender)

    def request_close(self, cid: bytes, *, sender: LocalAccount) -> TxReceipt:
        return self.transact("requestClose", cid, sender=sender)

    def withdraw(self, cid: bytes, *, sender: LocalAccount) -> TxReceipt:
        return self.transact("withdraw", cid, sender=sender)

    # ------------------------------------------------------------------ miner

    def settle(
        self, voucher: Voucher, *, sender: LocalAccount, gas: int | None = None
    ) -> TxReceipt:
        return self.transact(
            "settle",
            voucher.channel_id,
            voucher.cumulative_amount,
            voucher.signature,
            sender=sender,
            gas=gas,
        )

    def settle_many(self, vouchers: Sequence[Voucher], *, sender: LocalAccount) -> TxReceipt:
        return self.transact(
            "settleMany",
            [v.channel_id for v in vouchers],
            [v.cumulative_amount for v in vouchers],
            [v.signature for v in vouchers],
            sender=sender,
        )

    def estimate_settle_many(self, vouchers: Sequence[Voucher], *, sender: str) -> int:
        """Gas estimate for ``settle_many`` (raises the decoded revert if it would fail)."""
        fn = self.functions.settleMany(
            [v.channel_id for v in vouchers],
            [v.cumulative_amount for v in vouchers],
            [v.signature for v in vouchers],
        )
        try:
            return int(fn.estimate_gas({"from": to_checksum_address(sender)}))
        except ContractLogicError as exc:
            data = exc.data.get("data") if isinstance(exc.data, dict) else exc.data
            raise decode_revert(data, contract=self.name) from None

    def claim_earnings(self, channel_ids: Sequence[bytes], *, sender: LocalAccount) -> TxReceipt:
        """Pay out settled earnings of channels sharing one miner and token (to the miner)."""
        return self.transact("claimEarnings", list(channel_ids), sender=sender)

    def cooperative_close(
        self, cid: bytes, voucher: Voucher | None, *, sender: LocalAccount
    ) -> TxReceipt:
        """Miner-side close: settle ``voucher`` (if any), pay earnings, refund the renter."""
        if voucher is not None and voucher.channel_id != cid:
            raise LatentError("the voucher is for another channel")
        amount = voucher.cumulative_amount if voucher else 0
        signature = voucher.signature if voucher else b""
        return self.transact("cooperativeClose", cid, amount, signature, sender=sender)

    # ------------------------------------------------------------------ protocol

    def sweep_fees(self, token: str, *, sender: LocalAccount) -> TxReceipt:
        return self.transact("sweepFees", to_checksum_address(token), sender=sender)

    def set_protocol_fee(self, fee_bps: int, *, sender: LocalAccount) -> TxReceipt:
        return self.transact("setProtocolFee", fee_bps, sender=sender)

    def set_grace_period(self, seconds: int, *, sender: LocalAccount) -> TxReceipt:
        return self.transact("setGracePeriod", seconds, sender=sender)

    def set_reward_pool(self, pool: str, *, sender: LocalAccount) -> TxReceipt:
        return self.transact("setRewardPool", to_checksum_address(pool), sender=sender)


__all__ = [
    "Channel",
    "ChannelNotFound",
    "EscrowClient",
    "split_claim",
    "total_fee",
]
