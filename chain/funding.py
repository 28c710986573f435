"""The payer's side of the escrow (renters, and validators paying miners like renters do):
open, top up, read, settle, close and withdraw channels.

Blocking (web3) by nature: the proxy calls these through ``asyncio.to_thread`` and
serialises them with one lock (one account, one nonce sequence).
"""

from __future__ import annotations

import secrets
import time
from typing import Protocol

from eth_account.signers.local import LocalAccount
from web3.exceptions import ContractLogicError

from chain.errors import LatentError
from chain.escrow import Channel, EscrowClient
from chain.token import SubnetTokenClient, format_token_amount
from chain.vouchers import Voucher, sign_voucher


class InsufficientFunds(LatentError):
    """The renter's wallet cannot fund a channel or a top-up."""


class Funder(Protocol):
    """What the proxy needs from the chain."""

    @property
    def renter(self) -> str: ...

    @property
    def escrow_address(self) -> str: ...

    @property
    def token_address(self) -> str: ...

    @property
    def chain_id(self) -> int: ...

    def open_channel(self, miner: str, amount: int) -> tuple[bytes, bytes]:
        """Open a channel to ``miner`` with ``amount``; returns ``(channel id, salt)``."""
        ...

    def top_up(self, channel_id: bytes, amount: int) -> None: ...

    def read_channel(self, channel_id: bytes) -> Channel | None: ...

    def balance(self) -> int: ...

    def sign(self, channel_id: bytes, cumulative: int) -> Voucher: ...


class EscrowFunder:
    """:class:`Funder` over a deployed PaymentEscrow and its ERC-20 (permit when supported)."""

    def __init__(
        self,
        escrow: EscrowClient,
        token: SubnetTokenClient,
        account: LocalAccount,
        *,
        use_permit: bool = True,
    ) -> None:
        self._escrow = escrow
        self._token = token
        self._account = account
        self._chain_id = escrow.chain_id
        self._use_permit = use_permit and self._supports_permit()

    def _supports_permit(self) -> bool:
        try:
            self._token.nonces(self._account.address)
        except (ContractLogicError, ValueError, LatentError):
            return False
        return True

    @property
    def renter(self) -> str:
        return self._account.address

    @property
    def escrow_address(self) -> str:
        return self._escrow.address

    @property
    def token_address(self) -> str:
        return self._token.address

    @property
    def chain_id(self) -> int:
        return self._chain_id

    def balance(self) -> int:
        return self._token.balance_of(self._account.address)

    def _check_balance(self, amount: int) -> None:
        held = self.balance()
        if held < amount:
            raise InsufficientFunds(
                f"the renter {self._account.address} holds {format_token_amount(held)} (token "
                f"{self._token.address}) but a channel needs {format_token_amount(amount)}; "
                "send tokens to it (or lower --deposit / --top-up)"
            )

    def open_channel(self, miner: str, amount: int) -> tuple[bytes, bytes]:
        self._check_balance(amount)
        salt = secrets.token_bytes(32)
        if self._use_permit:
            permit = self._token.sign_permit(
                self._account, self._escrow.address, amount, int(time.time()) + 3600
            )
            cid, _ = self._escrow.open_with_permit(
                miner, self._token.address, salt, permit, sender=self._account
            )
        else:
            self._approve(amount)
            cid, _ = self._escrow.open(
                miner, self._token.address, salt, amount, sender=self._account
            )
        return cid, salt

    def _approve(self, amount: int) -> None:
        if self._token.allowance(self._account.address, self._escrow.address) < amount:
            self._token.approve(self._escrow.address, amount, sender=self._account)

    def top_up(self, channel_id: bytes, amount: int) -> None:
        self._check_balance(amount)
        self._approve(amount)
        self._escrow.top_up(channel_id, amount, sender=self._account)

    def read_channel(self, channel_id: bytes) -> Channel | None:
        return self._escrow.find_channel(channel_id)

    def sign(self, channel_id: bytes, cumulative: int) -> Voucher:
        return sign_voucher(
            self._account,
            escrow=self._escrow.address,
            chain_id=self._chain_id,
            channel_id=channel_id,
            cumulative_amount=cumulative,
        )

    def settle_own(self, voucher: Voucher) -> None:
        """Settle the renter's own final voucher (anyone may settle; it pays the miner exactly
        what the receipts say it earned)."""
        self._escrow.settle(voucher, sender=self._account)

    def request_close(self, channel_id: bytes) -> int:
        """Request close; returns the unix time from which the renter may withdraw."""
        receipt = self._escrow.request_close(channel_id, sender=self._account)
        return int(self._escrow.events(receipt, "CloseRequested")[0]["closesAt"])

    def withdraw(self, channel_id: bytes) -> int:
        """Withdraw the rest after the grace period; returns the refund."""
        receipt = self._escrow.withdraw(channel_id, sender=self._account)
        return int(self._escrow.events(receipt, "ChannelClosed")[0]["refund"])


__all__ = ["EscrowFunder", "Funder", "InsufficientFunds"]
