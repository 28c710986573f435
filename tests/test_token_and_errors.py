"""SubnetToken on anvil: permit signed with eth-account, cap, minter, decoded reverts."""

from __future__ import annotations

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3

from chain.client import decode_revert
from chain.errors import (
    ContractRevert,
    LatentError,
    TransactionFailed,
    custom_error,
    name_address,
)
from chain.token import ONE, SubnetTokenClient, format_token_amount

CAP = 21_000_000 * ONE


def test_permit_signed_offchain_is_accepted(
    fresh_chain: Web3, token: SubnetTokenClient, accounts: list[LocalAccount]
) -> None:
    owner, spender = accounts[3], accounts[4]
    nonce = token.nonces(owner.address)
    permit = token.sign_permit(owner, spender.address, 5 * ONE, 2**48)
    token.permit(permit, sender=spender)  # the spender pays gas; the owner only signed
    assert token.allowance(owner.address, spender.address) == 5 * ONE
    assert token.nonces(owner.address) == nonce + 1
    with pytest.raises(custom_error("ERC2612InvalidSigner")):
        token.permit(permit, sender=spender)  # replay: nonce already used


def test_permit_for_other_chain_is_rejected(
    fresh_chain: Web3, token: SubnetTokenClient, accounts: list[LocalAccount]
) -> None:
    from chain.token import sign_permit

    owner, spender = accounts[3], accounts[4]
    foreign = sign_permit(
        owner,
        token=token.address,
        chain_id=1,
        spender=spender.address,
        value=ONE,
        deadline=2**48,
        nonce=token.nonces(owner.address),
    )
    with pytest.raises(custom_error("ERC2612InvalidSigner")):
        token.permit(foreign, sender=spender)


def test_cap_and_minter(
    fresh_chain: Web3, token: SubnetTokenClient, accounts: list[LocalAccount]
) -> None:
    owner, alice = accounts[0], accounts[1]
    assert int(token.call("cap")) == CAP
    with pytest.raises(custom_error("SubnetTokenNotMinter")) as info:
        token.mint(alice.address, ONE, sender=alice)
    assert info.value.error_args == {"caller": alice.address, "minter": owner.address}
    supply = token.total_supply()
    with pytest.raises(custom_error("SubnetTokenCapExceeded")) as cap_info:
        token.mint(alice.address, CAP - supply + 1, sender=owner)
    assert cap_info.value.error_args["cap"] == CAP
    token.mint(alice.address, CAP - supply, sender=owner)  # exactly up to the cap is fine
    assert token.total_supply() == CAP


def test_revert_decoded_into_named_exception(
    fresh_chain: Web3, token: SubnetTokenClient, accounts: list[LocalAccount]
) -> None:
    poor, rich = accounts[5], accounts[6]
    balance = token.balance_of(poor.address)  # other tests may have funded it
    with pytest.raises(custom_error("ERC20InsufficientBalance")) as info:
        token.transfer(rich.address, balance + ONE, sender=poor)
    err = info.value
    assert type(err).__name__ == "ERC20InsufficientBalance"
    assert isinstance(err, ContractRevert) and isinstance(err, LatentError)
    assert err.error_args == {"sender": poor.address, "balance": balance, "needed": balance + ONE}
    assert "ERC20InsufficientBalance" in str(err)
    # the message is in whole tokens, not base units
    assert (
        f"balance {format_token_amount(balance)}, needs {format_token_amount(balance + ONE)}"
        in (str(err))
    )
    assert str(balance + ONE) not in str(err)


def test_revert_names_known_addresses_and_shows_amounts_in_tokens() -> None:
    escrow = "0x" + "22" * 20
    name_address(escrow, "PaymentEscrow")
    err = custom_error("ERC20InsufficientAllowance")(
        {"spender": escrow, "allowance": 9_899 * ONE, "needed": 10_000 * ONE},
        contract="SubnetToken",
    )
    assert str(err) == (
        f"ERC20InsufficientAllowance in SubnetToken: {escrow} (PaymentEscrow) may spend "
        "9,899 LAT, needs 10,000 LAT; approve more first"
    )
    stale = custom_error("EscrowVoucherStale")(
        {"channelId": b"\x01", "cumulative": ONE // 2, "settled": 3 * ONE}, contract="X"
    )
    assert (
        str(stale) == "EscrowVoucherStale(channelId=0x01, cumulative=0.5 LAT, settled=3 LAT) in X"
    )
    other = custom_error("MetagraphUidOutOfRange")({"uid": 7, "neuronCount": 5})
    assert str(other) == "MetagraphUidOutOfRange(uid=7, neuronCount=5)"  # not amounts


def test_view_call_reverts_are_decoded_too(
    token: SubnetTokenClient, accounts: list[LocalAccount]
) -> None:
    with pytest.raises(custom_error("SubnetTokenNotMinter")):
        token.call("mint", accounts[1].address, 1, sender=accounts[1].address)


def test_decode_revert_edge_cases() -> None:
    assert type(decode_revert(None)) is TransactionFailed
    assert "unknown error" in str(decode_revert("0xdeadbeef00"))
    panic = decode_revert("0x4e487b71" + "11".rjust(64, "0"))
    assert type(panic).__name__ == "Panic" and panic.error_args == {"code": "0x11"}
