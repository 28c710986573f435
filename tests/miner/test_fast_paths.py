"""The request path's fast crypto equals the generic eth-account paths, byte for byte.

``chain.receipts.sign_digest`` and ``chain.vouchers.VoucherVerifier`` skip
``encode_typed_data`` and eth-account's signing layers for speed; these tests pin them to the
reference implementations (including which malformed signatures are refused), so a
divergence cannot slip in silently. Also: the model presets and the ``latent model`` CLI.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account import Account
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from chain.errors import LatentError
from chain.receipts import sign_digest
from chain.vouchers import (
    SECP256K1_N,
    Voucher,
    VoucherSignatureInvalid,
    VoucherVerifier,
    recover_voucher_signer,
    sign_voucher,
    voucher_digest,
)
from miner.model_cli import MODEL_PRESETS
from miner.model_cli import app as model_app
from miner.tiny_model import PRESETS, build_tiny_model

ESCROW = "0x" + "e5" * 20
CHAIN_ID = 31337

secret_keys = st.integers(min_value=1, max_value=SECP256K1_N - 1).map(
    lambda k: "0x" + k.to_bytes(32, "big").hex()
)
digests = st.binary(min_size=32, max_size=32)
channel_ids = st.binary(min_size=32, max_size=32)
amounts = st.integers(min_value=0, max_value=2**128 - 1)


@given(secret_keys, digests)
def test_sign_digest_equals_eth_account(key: str, digest: bytes) -> None:
    account = Account.from_key(key)
    assert sign_digest(account, digest) == bytes(account.unsafe_sign_hash(digest).signature)


def test_sign_digest_refuses_anything_but_a_32_byte_digest() -> None:
    with pytest.raises(LatentError):
        sign_digest(Account.from_key("0x" + "11" * 32), b"short")


@given(channel_ids, amounts, st.integers(min_value=1, max_value=2**64))
def test_voucher_digest_equals_the_eip712_reference(cid: bytes, amount: int, chain_id: int) -> None:
    verifier = VoucherVerifier(escrow=ESCROW, chain_id=chain_id)
    reference = voucher_digest(
        escrow=ESCROW, chain_id=chain_id, channel_id=cid, cumulative_amount=amount
    )
    assert verifier.digest(cid, amount) == reference


@given(secret_keys, channel_ids, amounts)
def test_voucher_signer_equals_the_reference(key: str, cid: bytes, amount: int) -> None:
    account = Account.from_key(key)
    voucher = sign_voucher(
        account, escrow=ESCROW, chain_id=CHAIN_ID, channel_id=cid, cumulative_amount=amount
    )
    verifier = VoucherVerifier(escrow=ESCROW, chain_id=CHAIN_ID)
    assert verifier.recover(voucher) == account.address
    assert verifier.recover(voucher) == recover_voucher_signer(
        voucher, escrow=ESCROW, chain_id=CHAIN_ID
    )
    # signed for another escrow: recovers to someone else, as the reference does
    elsewhere = VoucherVerifier(escrow="0x" + "e6" * 20, chain_id=CHAIN_ID)
    assert elsewhere.recover(voucher) != account.address


def _malformed(voucher: Voucher) -> list[Voucher]:
    sig = voucher.signature
    r, s, v = sig[:32], int.from_bytes(sig[32:64], "big"), sig[64]
    twin = r + (SECP256K1_N - s).to_bytes(32, "big") + bytes((55 - v,))  # malleable high-s
    return [
        Voucher(voucher.channel_id, voucher.cumulative_amount, twin),
        Voucher(voucher.channel_id, voucher.cumulative_amount, sig[:64] + b"\x01"),  # bad v
        Voucher(voucher.channel_id, voucher.cumulative_amount, sig[:32] + bytes(32) + sig[64:]),
        Voucher(voucher.channel_id, voucher.cumulative_amount, bytes(32) + sig[32:]),  # r = 0
        Voucher(voucher.channel_id, voucher.cumulative_amount, b"\xff" * 32 + sig[32:]),
    ]


def test_malformed_voucher_signatures_are_refused_like_the_reference() -> None:
    account = Account.from_key("0x" + "5f" * 32)
    voucher = sign_voucher(
        account, escrow=ESCROW, chain_id=CHAIN_ID, channel_id=b"\x07" * 32, cumulative_amount=9
    )
    verifier = VoucherVerifier(escrow=ESCROW, chain_id=CHAIN_ID)
    for bad in _malformed(voucher):
        with pytest.raises(VoucherSignatureInvalid):
            verifier.recover(bad)
        with pytest.raises(VoucherSignatureInvalid):
            recover_voucher_signer(bad, escrow=ESCROW, chain_id=CHAIN_ID)


def test_cli_presets_match_the_builder() -> None:
    assert set(MODEL_PRESETS) == set(PRESETS)
    assert PRESETS["tiny"].weight_std == 0.25  # the tiny model's bytes depend on it


def test_small_preset_builds_deterministically_and_loads(tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    from miner.tiny_model import weights_hash

    result = CliRunner().invoke(
        model_app, ["tiny", "--preset", "small", "--out", str(tmp_path / "a")]
    )
    assert result.exit_code == 0, result.output
    assert "small model written" in result.output
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    arch = PRESETS["small"]
    assert (config["hidden_size"], config["num_hidden_layers"]) == (
        arch.hidden_size,
        arch.num_hidden_layers,
    )
    again = build_tiny_model(tmp_path / "b", seed=0, preset="small")
    assert weights_hash(again) == weights_hash(tmp_path / "a")
    tiny_tokenizer = build_tiny_model(tmp_path / "t", preset="tiny") / "tokenizer.json"
    assert (again / "tokenizer.json").read_bytes() == tiny_tokenizer.read_bytes()
    model = AutoModelForCausalLM.from_pretrained(again, local_files_only=True)
    assert model.config.hidden_size == arch.hidden_size


def test_unknown_preset_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown model preset"):
        build_tiny_model(tmp_path, preset="huge")
    result = CliRunner().invoke(model_app, ["tiny", "--preset", "huge", "--out", str(tmp_path)])
    assert result.exit_code != 0
