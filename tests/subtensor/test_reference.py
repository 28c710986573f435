"""The bridge against the official Bittensor SDK (``bittensor`` 11, ``bittensor-wallet``,
``bittensor-drand``): what is deterministic must be byte-identical.

- call data of ``set_weights`` and ``commit_timelocked_weights`` (bridge: substrate-interface
  + the recorded runtime's V14 metadata; SDK: its Rust codec + the same runtime's V15 metadata);
- signed extrinsics with a fixed nonce and era: sr25519 signatures are randomised, so the SDK
  assembles the extrinsic around the bridge's signature and the bytes must match, and the
  signature must verify against the SDK's signing payload;
- the u16 quantisation and max-weight clipping of scores;
- SS58 and the EVM H160 mirror;
- keyfiles written by ``bittensor-wallet`` (plain JSON, NaCl, legacy ansible vault);
- the drand reveal round ``bittensor-drand`` encrypts to, and the commit plaintext.

Timelock ciphertexts are randomised, so they are compared after decryption: a commit aimed
at drand round 1000, whose signature is public, opens to the same plaintext from the bridge
and from the SDK's own encrypter; for live rounds the reveal round and plaintext size are
compared.
"""

from __future__ import annotations

import time
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from substrateinterface import Keypair, KeypairType
from subtensor_env import FINNEY_GENESIS, replay_substrate

from chain.bittensor import keyfile, ss58, timelock
from chain.bittensor.client import SubtensorClient
from chain.bittensor.metagraph import Hyperparameters
from chain.bittensor.weights import clip_to_max_weight, conform, quantize

bt_weights = pytest.importorskip(
    "bittensor.intents.weights", reason="reference SDK missing: pip install -e '.[bittensor-ref]'"
)
bt_addresses = pytest.importorskip("bittensor.evm.addresses")
bittensor_drand = pytest.importorskip("bittensor_drand")
bittensor_core = pytest.importorskip("bittensor_core")
bittensor_wallet = pytest.importorskip("bittensor_wallet")

BLOCK = 6_852_690
# the era's birth block for (period 64, current BLOCK) is BLOCK itself in both libraries; its
# hash comes from the recording (chain_getBlockHash [6852690])
BIRTH_HASH = "0xdb13c066e2c63969f140164fb3bfe7a0aaa7b71407fc0fe525d68e57329ef9d0"


@cache
def _client() -> SubtensorClient:
    substrate, _ = replay_substrate(
        {
            ("chain_getBlockHash", "[0]"): FINNEY_GENESIS,
        }
    )
    substrate.init_runtime()
    return SubtensorClient(substrate)


def _hyper(max_weight_limit: int = 65535, min_allowed: int = 0) -> Hyperparameters:
    return Hyperparameters(
        netuid=1,
        tempo=360,
        weights_rate_limit=100,
        commit_reveal_enabled=False,
        commit_reveal_version=4,
        reveal_period_epochs=1,
        weights_version_key=0,
        min_allowed_weights=min_allowed,
        max_weight_limit=max_weight_limit,
    )


scores_st = st.dictionaries(
    st.integers(0, 1023),
    st.one_of(st.just(0.0), st.floats(1e-6, 1e6, allow_nan=False, allow_infinity=False)),
    min_size=1,
    max_size=40,
).filter(lambda d: any(v > 0 for v in d.values()))


@settings(max_examples=60, deadline=None)
@given(scores=scores_st, limit=st.sampled_from([65535, 65535 // 2, 65535 // 10, 1000]))
def test_weights_quantise_and_clip_like_the_sdk(scores, limit):
    uids = sorted(scores)
    values = [scores[u] for u in uids]
    ours = conform(scores, _hyper(max_weight_limit=limit))
    floats = values if limit >= 65535 else bt_weights.clip_to_max_weight(values, limit / 65535)
    ref_uids, ref_values = bt_weights.normalize(uids, floats)
    assert (list(ours.uids), list(ours.values)) == (ref_uids, ref_values)
    if limit < 65535:
        assert clip_to_max_weight(values, limit / 65535) == floats
    assert quantize(uids, values).as_dict() == dict(
        zip(*bt_weights.normalize(uids, values), strict=True)
    )


@settings(max_examples=40, deadline=None)
@given(scores=scores_st, version_key=st.integers(0, 2**64 - 1))
def test_set_weights_call_data_is_byte_identical(sdk_codec, scores, version_key):
    client = _client()
    vector = conform(scores, _hyper())
    ours = client.set_weights_call(1, vector, version_key).data.to_hex()
    ref_uids, ref_values = bt_weights.normalize(sorted(scores), [scores[u] for u in sorted(scores)])
    theirs = sdk_codec.compose_call(
        "SubtensorModule",
        "set_weights",
        {"netuid": 1, "dests": ref_uids, "weights": ref_values, "version_key": version_key},
    )
    assert ours == "0x" + theirs.data.hex()


@settings(max_examples=20, deadline=None)
@given(
    commit=st.binary(min_size=1, max_size=600),
    reveal_round=st.integers(0, 2**64 - 1),
    version=st.integers(0, 65535),
    netuid=st.integers(0, 65535),
)
def test_commit_timelocked_call_data_is_byte_identical(
    sdk_codec, commit, reveal_round, version, netuid
):
    ours = _client().commit_timelocked_call(netuid, commit, reveal_round, version).data.to_hex()
    theirs = sdk_codec.compose_call(
        "SubtensorModule",
        "commit_timelocked_weights",
        {
            "netuid": netuid,
            "commit": commit,
            "reveal_round": reveal_round,
            "commit_reveal_version": version,
        },
    )
    assert ours == "0x" + theirs.data.hex()


@pytest.mark.parametrize(
    ("era", "sdk_era", "era_hash"),
    [
        ("00", "00", FINNEY_GENESIS),
        ({"period": 64, "current": BLOCK}, {"period": 64, "current": BLOCK}, BIRTH_HASH),
    ],
    ids=["immortal", "mortal-64"],
)
def test_signed_set_weights_extrinsic_is_byte_identical(sdk_codec, era, sdk_era, era_hash):
    client = _client()
    signer = Keypair.create_from_seed(
        "0x" + "42" * 32, ss58_format=42, crypto_type=KeypairType.SR25519
    )
    vector = conform({0: 1.0, 5: 0.25, 77: 0.5}, _hyper())
    call = client.set_weights_call(1, vector, 3)
    ours = client.substrate.create_signed_extrinsic(call=call, keypair=signer, era=era, nonce=17)
    signature = bytes.fromhex(ours.value["signature"]["Sr25519"].removeprefix("0x"))

    sdk_call = sdk_codec.call_from_data(bytes.fromhex(call.data.to_hex()[2:]))
    payload = sdk_codec.signature_payload(
        sdk_call,
        era=sdk_era,
        nonce=17,
        tip=0,
        tip_asset_id=None,
        genesis_hash=FINNEY_GENESIS,
        era_block_hash=era_hash,
    )
    assert signer.verify(payload, signature)  # the bridge signed exactly the SDK's payload
    theirs, _ = sdk_codec.encode_signed_extrinsic(
        sdk_call,
        public_key=signer.public_key,
        signature=signature,
        signature_version=1,
        era=sdk_era,
        nonce=17,
        tip=0,
        tip_asset_id=None,
    )
    assert bytes(ours.data.data) == theirs


@settings(max_examples=50, deadline=None)
@given(h160=st.binary(min_size=20, max_size=20))
def test_h160_mirror_matches_the_sdk(h160):
    text = "0x" + h160.hex()
    assert ss58.h160_to_ss58(text) == bt_addresses.h160_to_ss58(text)
    assert ss58.h160_to_ss58(text.upper().replace("0X", "0x")) == ss58.h160_to_ss58(h160)
    account = ss58.ss58_to_account_id(ss58.h160_to_ss58(h160))
    assert "0x" + account.hex() == bt_addresses.ss58_to_pubkey(ss58.h160_to_ss58(h160))


schedules = st.builds(
    timelock.EpochScheduleState,
    last_epoch_block=st.integers(0, 10_000),
    pending_epoch_at=st.one_of(st.just(0), st.integers(1, 12_000)),
    subnet_epoch_index=st.integers(0, 1000),
    tempo=st.integers(1, 400),
    blocks_since_last_step=st.integers(0, 500),
    current_block=st.integers(0, 11_000),
)


@settings(max_examples=60, deadline=None)
@given(state=schedules, period=st.integers(1, 4), block_time=st.sampled_from([12.0, 0.25]))
def test_reveal_round_is_the_one_bittensor_drand_encrypts_to(state, period, block_time):
    hotkey = bytes(range(32))
    before = timelock.reveal_round(state, period, block_time, time.time())
    commit, round_number = timelock.encrypt_commit(
        hotkey, [1, 2], [65535, 7], 0, state, period, block_time
    )
    after = timelock.reveal_round(state, period, block_time, time.time())
    assert before <= round_number <= after  # equal unless a 3 s round boundary fell in between
    assert len(commit) > 0


@settings(max_examples=30, deadline=None)
@given(
    netuid=st.integers(0, 128),
    tempo=st.integers(1, 400),
    block=st.integers(0, 10**7),
    period=st.integers(1, 3),
)
def test_legacy_schedule_pins_drand_to_the_legacy_reveal_block(netuid, tempo, block, period):
    first = timelock.legacy_first_reveal_block(netuid, tempo, block, period)
    pinned = timelock.pinned_schedule_state(block, first)
    assert timelock.predict_first_reveal_block(pinned, 1) == first
    now = time.time()
    expected = timelock.reveal_round(pinned, 1, 12.0, now)
    assert expected == int((now + (first + 3 - block) * 12.0 - timelock.QUICKNET_GENESIS) // 3)
    _, got = bittensor_drand.get_encrypted_commit_v2(
        [1],
        [1],
        0,
        pinned.last_epoch_block,
        pinned.pending_epoch_at,
        pinned.subnet_epoch_index,
        pinned.tempo,
        pinned.blocks_since_last_step,
        block,
        1,
        12.0,
        bytes(32),
    )
    assert expected <= got <= timelock.reveal_round(pinned, 1, 12.0, time.time())


# drand quicknet's published beacon for round 1000 (public chain data; also the fixture of
# subtensor's pallet-drand tests): with it any ciphertext for round 1000 can be opened now.
QUICKNET_ROUND_1000_SIGNATURE = (
    "b44679b9a59af2ec876b1a6b1ad52ea9b1615fc3982b19576350f93447cb1125"
    "e342b73a8dd2bacbe47e4b6b63ed5e39"
)


def _open_round_1000(ciphertext: bytes, decrypt) -> bytes:
    # decrypt_with_signature takes SCALE UserData {encrypted_data: Vec<u8>, reveal_round: u64}
    from chain.bittensor.scale import encode_compact

    wrapped = encode_compact(len(ciphertext)) + ciphertext + (1000).to_bytes(8, "little")
    return bytes(decrypt(wrapped, QUICKNET_ROUND_1000_SIGNATURE))


@settings(max_examples=8, deadline=None)
@given(
    hotkey=st.binary(min_size=32, max_size=32),
    pairs=st.lists(
        st.tuples(st.integers(0, 65535), st.integers(1, 65535)), min_size=1, max_size=50
    ),
    version_key=st.integers(0, 2**64 - 1),
)
def test_commit_plaintext_is_byte_identical_after_decrypting(hotkey, pairs, version_key):
    """Aim the commit at round 1000 (a past round whose signature is public) and open it.

    The reveal round is wall-clock based, so the test passes a block time that puts the
    reveal moment inside round 1000's window; both the bridge's ciphertext (bittensor-drand)
    and the SDK's own (bittensor-core) must open to our ``WeightsTlockPayload`` encoding.
    """
    uids, values = [u for u, _ in pairs], [v for _, v in pairs]
    state = timelock.EpochScheduleState(1000, 0, 50, 100, 5, 1040)  # reveal block 1100: 63 blocks
    block_time = (timelock.QUICKNET_GENESIS + 3001.5 - time.time()) / 63
    assert timelock.reveal_round(state, 1, block_time, time.time()) == 1000
    ours, round_number = timelock.encrypt_commit(
        hotkey, uids, values, version_key, state, 1, block_time
    )
    assert round_number == 1000
    expected = timelock.encode_payload(hotkey, uids, values, version_key)
    assert _open_round_1000(ours, bittensor_drand.decrypt_with_signature) == expected
    sdk_commit, sdk_round = bittensor_core.get_encrypted_commit_v2(
        uids=uids,
        weights=values,
        version_key=version_key,
        last_epoch_block=1000,
        pending_epoch_at=0,
        subnet_epoch_index=50,
        tempo=100,
        blocks_since_last_step=5,
        current_block=1040,
        subnet_reveal_period_epochs=1,
        block_time=block_time,
        hotkey=hotkey,
    )
    assert sdk_round == 1000
    assert _open_round_1000(bytes(sdk_commit), bittensor_core.decrypt_with_signature) == expected


def test_plaintext_size_matches_what_bittensor_drand_encrypts():
    """The ciphertext is a fixed overhead plus the plaintext: our WeightsTlockPayload has its size."""
    state = timelock.EpochScheduleState(1000, 0, 50, 100, 5, 1040)
    overheads = set()
    for n in (1, 7, 40, 256):
        uids, values = list(range(n)), [65535 - i for i in range(n)]
        commit, _ = timelock.encrypt_commit(bytes(32), uids, values, 9, state, 1, 12.0)
        overheads.add(len(commit) - len(timelock.encode_payload(bytes(32), uids, values, 9)))
    assert len(overheads) == 1


def test_plain_hotkey_file_written_by_bittensor_wallet_loads(tmp_path):
    ref = bittensor_wallet.Keypair.create_from_mnemonic(
        bittensor_wallet.Keypair.generate_mnemonic()
    )
    data = bittensor_wallet.keyfile.serialized_keypair_to_keyfile_data(ref)
    path = tmp_path / "w" / "hotkeys" / "default"
    path.parent.mkdir(parents=True)
    path.write_bytes(bytes(data))
    ours = keyfile.load_hotkey("w", "default", wallet_path=tmp_path)
    assert ours.ss58_address == ref.ss58_address
    assert ref.verify(b"latent", ours.sign(b"latent"))


def test_nacl_encrypted_hotkey_file_decrypts(tmp_path):
    ref = bittensor_wallet.Keypair.create_from_mnemonic(
        bittensor_wallet.Keypair.generate_mnemonic()
    )
    plain = bytes(bittensor_wallet.keyfile.serialized_keypair_to_keyfile_data(ref))
    sealed = bytes(bittensor_wallet.keyfile.encrypt_keyfile_data(plain, "correct horse"))
    assert sealed.startswith(b"$NACL")
    assert keyfile.decrypt_keyfile_data(sealed, "correct horse") == plain
    path = tmp_path / "hk"
    path.write_bytes(sealed)
    assert keyfile.load_keyfile(path, password="correct horse").ss58_address == ref.ss58_address


def test_legacy_ansible_vault_hotkey_file_decrypts():
    ref = bittensor_wallet.Keypair.create_from_mnemonic(
        bittensor_wallet.Keypair.generate_mnemonic()
    )
    plain = bytes(bittensor_wallet.keyfile.serialized_keypair_to_keyfile_data(ref))
    sealed = bytes(bittensor_wallet.keyfile.legacy_encrypt_keyfile_data(plain, "correct horse"))
    assert sealed.startswith(b"$ANSIBLE_VAULT")
    assert keyfile.decrypt_keyfile_data(sealed, "correct horse") == plain
