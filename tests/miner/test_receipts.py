"""Receipts: EIP-712 signatures by the miner hotkey, verified with eth-account."""

from __future__ import annotations

import dataclasses

import pytest
from eth_account import Account
from eth_utils import keccak
from hypothesis import given
from hypothesis import strategies as st

from chain.receipts import (
    Receipt,
    ReceiptInvalid,
    decode_receipt_header,
    encode_receipt_header,
    output_hash,
    receipt_digest,
    receipt_signable,
    recover_receipt_signer,
    request_hash,
    sign_receipt,
    verify_receipt,
)

MINER = Account.from_key("0x" + "11" * 32)
OTHER = Account.from_key("0x" + "22" * 32)
CHAIN_ID = 31337


def _receipt(price: int = 1234) -> Receipt:
    return sign_receipt(
        MINER,
        request_hash=request_hash(b'{"model":"tiny","prompt":"hi"}'),
        output_hash=output_hash((5, 6, 7)),
        proof_commitment=keccak(b"proof"),
        price=price,
        chain_id=CHAIN_ID,
    )


def test_receipt_recovers_to_miner_hotkey() -> None:
    receipt = _receipt()
    assert recover_receipt_signer(receipt) == MINER.address
    verify_receipt(
        receipt,
        miner=MINER.address,
        chain_id=CHAIN_ID,
        request_hash=request_hash(b'{"model":"tiny","prompt":"hi"}'),
        output_hash=output_hash([5, 6, 7]),
        proof_commitment=keccak(b"proof"),
    )


@pytest.mark.parametrize(
    "field,value",
    [
        ("request_hash", keccak(b"another body")),
        ("output_hash", output_hash((5, 6, 8))),
        ("proof_commitment", keccak(b"another proof")),
        ("price", 1235),
        ("chain_id", 1),
    ],
)
def test_altering_any_signed_field_breaks_the_receipt(field: str, value: object) -> None:
    tampered = dataclasses.replace(_receipt(), **{field: value})
    assert recover_receipt_signer(tampered) != MINER.address
    with pytest.raises(ReceiptInvalid):
        verify_receipt(tampered, miner=MINER.address, chain_id=tampered.chain_id)


def test_receipt_from_another_key_is_rejected() -> None:
    receipt = _receipt()
    with pytest.raises(ReceiptInvalid, match="expected miner"):
        verify_receipt(receipt, miner=OTHER.address, chain_id=CHAIN_ID)


def test_verify_compares_the_hashes_the_holder_computed() -> None:
    receipt = _receipt()
    with pytest.raises(ReceiptInvalid, match="output hash"):
        verify_receipt(
            receipt, miner=MINER.address, chain_id=CHAIN_ID, output_hash=output_hash((5, 6))
        )
    with pytest.raises(ReceiptInvalid, match="chain"):
        verify_receipt(receipt, miner=MINER.address, chain_id=CHAIN_ID + 1)


@given(
    hashes=st.lists(st.binary(min_size=32, max_size=32), min_size=3, max_size=3),
    price=st.integers(min_value=0, max_value=2**256 - 1),
    chain_id=st.integers(min_value=1, max_value=2**64),
)
def test_fast_digest_equals_eth_account_typed_data(
    hashes: list[bytes], price: int, chain_id: int
) -> None:
    fields = {
        "request_hash": hashes[0],
        "output_hash": hashes[1],
        "proof_commitment": hashes[2],
        "price": price,
        "chain_id": chain_id,
    }
    signable = receipt_signable(**fields)
    reference = keccak(b"\x19" + signable.version + signable.header + signable.body)
    assert receipt_digest(**fields) == reference
    receipt = sign_receipt(MINER, **fields)
    assert Account.recover_message(signable, signature=receipt.signature) == MINER.address


def test_output_hash_is_packed_uint32_big_endian() -> None:
    assert output_hash((1, 258)) == keccak(b"\x00\x00\x00\x01\x00\x00\x01\x02")
    assert output_hash(()) == keccak(b"")
    with pytest.raises(ReceiptInvalid):
        output_hash((2**32,))


@given(
    price=st.integers(min_value=0, max_value=2**256 - 1), ids=st.lists(st.integers(0, 2**32 - 1))
)
def test_json_and_header_round_trip(price: int, ids: list[int]) -> None:
    receipt = dataclasses.replace(_receipt(), price=price, output_hash=output_hash(ids))
    assert Receipt.from_json(receipt.to_json()) == receipt
    assert decode_receipt_header(encode_receipt_header(receipt)) == receipt


@pytest.mark.parametrize("garbage", ["", "!!!", "bm90IGpzb24", "WzEsMl0"])
def test_garbage_header_raises_receipt_invalid(garbage: str) -> None:
    with pytest.raises(ReceiptInvalid):
        decode_receipt_header(garbage)


def test_malformed_json_fields_raise_receipt_invalid() -> None:
    data = _receipt().to_json()
    data["output_hash"] = "0x1234"
    with pytest.raises(ReceiptInvalid):
        Receipt.from_json(data)
    data = _receipt().to_json()
    data["signature"] = "0x" + "00" * 65
    with pytest.raises(ReceiptInvalid):
        recover_receipt_signer(Receipt.from_json(data))
