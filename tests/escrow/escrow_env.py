"""Shared values and helpers of the PaymentEscrow tests (fixtures live in conftest.py).

A module of its own: ``from conftest import ...`` would pick whichever ``conftest`` is first
on ``sys.path`` when several test folders run together.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_account.signers.local import LocalAccount
from web3 import Web3

from chain.escrow import EscrowClient
from chain.token import ONE
from chain.vouchers import Voucher, sign_voucher

FEE_BPS = 250  # 2.5%: large enough that fee rounding shows up in small amounts
GRACE_S = 15 * 60
INITIAL_BALANCE = 1_000_000 * ONE


@dataclass(frozen=True)
class Parties:
    owner: LocalAccount
    renter: LocalAccount
    miner: LocalAccount
    session: LocalAccount
    stranger: LocalAccount
    pool: LocalAccount


def salt(n: int) -> bytes:
    return n.to_bytes(32, "big")


def voucher(escrow: EscrowClient, signer: LocalAccount, cid: bytes, amount: int) -> Voucher:
    return sign_voucher(
        signer,
        escrow=escrow.address,
        chain_id=escrow.chain_id,
        channel_id=cid,
        cumulative_amount=amount,
    )


def set_next_timestamp(w3: Web3, timestamp: int) -> None:
    """The next mined block gets exactly ``timestamp``."""
    response = w3.provider.make_request("evm_setNextBlockTimestamp", [timestamp])  # type: ignore[arg-type]
    assert "error" not in response, response


def latest_timestamp(w3: Web3) -> int:
    return int(w3.eth.get_block("latest")["timestamp"])
