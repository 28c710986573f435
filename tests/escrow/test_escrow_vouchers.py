"""Pure voucher code: header form, signature checks, the voucher book on disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_utils import keccak
from hypothesis import given
from hypothesis import strategies as st

from chain.errors import LatentError
from chain.keys import dev_accounts
from chain.vouchers import (
    SECP256K1_N,
    UINT128_MAX,
    Voucher,
    VoucherBook,
    VoucherFormatError,
    VoucherSignatureInvalid,
    decode_voucher_header,
    encode_voucher_header,
    recover_voucher_signer,
    sign_voucher,
    voucher_digest,
    voucher_signable,
)

ESCROW = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
RENTER = dev_accounts(2)[1]


@given(
    cid=st.binary(min_size=32, max_size=32),
    amount=st.integers(0, UINT128_MAX),
    sig=st.binary(min_size=65, max_size=65),
)
def test_header_round_trip(cid: bytes, amount: int, sig: bytes) -> None:
    v = Voucher(cid, amount, sig)
    header = encode_voucher_header(v)
    assert header.isascii() and " " not in header
    assert decode_voucher_header(header) == v


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "v1",
        "v2." + "00" * 32 + ".1." + "00" * 65,
        "v1." + "00" * 31 + ".1." + "00" * 65,
        "v1." + "00" * 32 + ".-1." + "00" * 65,
        "v1." + "00" * 32 + ".01." + "00" * 65,
        "v1." + "00" * 32 + "." + str(2**128) + "." + "00" * 65,
        "v1." + "zz" * 32 + ".1." + "00" * 65,
        "v1." + "00" * 32 + ".1." + "00" * 64,
    ],
)
def test_header_garbage_is_a_format_error(garbage: str) -> None:
    with pytest.raises(VoucherFormatError) as info:
        decode_voucher_header(garbage)
    assert isinstance(info.value, LatentError)


@given(
    st.binary(min_size=32, max_size=32),
    st.integers(min_value=0, max_value=2**128 - 1),
    st.integers(min_value=1, max_value=2**64),
)
def test_voucher_digest_equals_the_eth_account_reference(
    cid: bytes, amount: int, chain: int
) -> None:
    msg = voucher_signable(escrow=ESCROW, chain_id=chain, channel_id=cid, cumulative_amount=amount)
    reference = keccak(b"\x19" + msg.version + msg.header + msg.body)
    assert (
        voucher_digest(escrow=ESCROW, chain_id=chain, channel_id=cid, cumulative_amount=amount)
        == reference
    )


def test_sign_and_recover_binds_escrow_and_chain() -> None:
    cid = b"\x11" * 32
    v = sign_voucher(RENTER, escrow=ESCROW, chain_id=31337, channel_id=cid, cumulative_amount=5)
    assert recover_voucher_signer(v, escrow=ESCROW, chain_id=31337) == RENTER.address
    assert recover_voucher_signer(v, escrow=ESCROW, chain_id=1) != RENTER.address
    assert recover_voucher_signer(v, escrow="0x" + "22" * 20, chain_id=31337) != RENTER.address
    assert (
        recover_voucher_signer(Voucher(cid, 6, v.signature), escrow=ESCROW, chain_id=31337)
        != RENTER.address
    )


def test_recover_rejects_the_malleable_twin() -> None:
    v = sign_voucher(
        RENTER, escrow=ESCROW, chain_id=31337, channel_id=b"\x11" * 32, cumulative_amount=5
    )
    s = int.from_bytes(v.signature[32:64], "big")
    twin = v.signature[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v.signature[64]])
    with pytest.raises(VoucherSignatureInvalid):
        recover_voucher_signer(Voucher(v.channel_id, 5, twin), escrow=ESCROW, chain_id=31337)


def test_book_keeps_newest_and_persists_atomically(tmp_path: Path) -> None:
    path = tmp_path / "book" / "vouchers.json"
    book = VoucherBook(path)
    a, b = b"\x01" * 32, b"\x02" * 32
    sig = b"\x00" * 65
    assert book.record(Voucher(a, 10, sig))
    assert not book.record(Voucher(a, 10, sig))
    assert not book.record(Voucher(a, 9, sig))
    assert book.record(Voucher(a, 11, sig))
    assert book.record(Voucher(b, 1, sig))
    assert [p.name for p in path.parent.iterdir()] == ["vouchers.json"]  # no temp files left
    reloaded = VoucherBook.load(path)
    assert reloaded.latest(a) == Voucher(a, 11, sig)
    assert reloaded.vouchers() == [Voucher(a, 11, sig), Voucher(b, 1, sig)]
    assert json.loads(path.read_text())["schema"] == 1


def test_book_rejects_other_schema_and_garbage(tmp_path: Path) -> None:
    path = tmp_path / "v.json"
    path.write_text(json.dumps({"schema": 99, "vouchers": {}}))
    with pytest.raises(VoucherFormatError, match="schema"):
        VoucherBook(path)
    path.write_text("{not json")
    with pytest.raises(VoucherFormatError):
        VoucherBook(path)
    path.write_text(
        json.dumps(
            {
                "schema": 1,
                "vouchers": {
                    "0x" + "01" * 32: {
                        "channel_id": "0x" + "02" * 32,
                        "cumulative_amount": "1",
                        "signature": "0x" + "00" * 65,
                    }
                },
            }
        )
    )
    with pytest.raises(VoucherFormatError, match="another channel"):
        VoucherBook(path)
