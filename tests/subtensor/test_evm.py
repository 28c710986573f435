"""EVM side: precompile ABIs agree with the SDK's, and reads decode through web3."""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from typing import Any

import pytest
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import function_abi_to_4byte_selector
from web3 import Web3
from web3.providers.base import BaseProvider

from chain.bittensor import evm
from chain.bittensor.ss58 import (
    account_id_to_ss58,
    h160_to_account_id,
    h160_to_ss58,
    ss58_to_account_id,
)
from chain.errors import ConfigError


def test_precompile_addresses():
    assert evm.METAGRAPH_PRECOMPILE == "0x0000000000000000000000000000000000000802"
    assert evm.NEURON_PRECOMPILE == "0x0000000000000000000000000000000000000804"
    assert evm.STAKING_V2_PRECOMPILE == "0x0000000000000000000000000000000000000805"


@pytest.mark.parametrize(
    ("ours", "sdk_file"),
    [
        (evm.METAGRAPH_ABI, "metagraph.json"),
        (evm.NEURON_ABI, "neuron.json"),
        (evm.STAKING_V2_ABI, "stakingV2.json"),
    ],
)
def test_abi_fragments_match_the_sdks_abi_files(ours, sdk_file):
    pytest.importorskip(
        "bittensor.evm", reason="reference SDK missing: pip install -e '.[bittensor-ref]'"
    )
    sdk = json.loads((resources.files("bittensor.evm") / "abi" / sdk_file).read_text())
    by_name = {e["name"]: e for e in sdk if e.get("type") == "function"}
    for fn in ours:
        ref = by_name[fn["name"]]
        assert function_abi_to_4byte_selector(fn) == function_abi_to_4byte_selector(ref), fn["name"]
        assert [o["type"] for o in fn["outputs"]] == [o["type"] for o in ref["outputs"]]
        assert ref["stateMutability"] == "view"


def test_h160_mirror_known_vector_and_bad_input():
    # blake2b-256(b"evm:" + 20 zero bytes), SS58 prefix 42
    assert (
        h160_to_account_id(bytes(20)).hex()
        == hashlib.blake2b(b"evm:" + bytes(20), digest_size=32).hexdigest()
    )
    addr = h160_to_ss58("0x" + "00" * 19 + "01")
    assert addr.startswith("5") and ss58_to_account_id(addr) == h160_to_account_id(
        bytes(19) + b"\x01"
    )
    with pytest.raises(ConfigError, match="20-byte"):
        h160_to_ss58("0x1234")
    with pytest.raises(ConfigError, match="SS58"):
        ss58_to_account_id("not-an-address")


HOT = bytes(range(32))
COLD = bytes(range(32, 64))


class FakePrecompiles(BaseProvider):
    """Answers eth_call for the three precompiles from fixed state (what a node would return)."""

    def __init__(self) -> None:
        super().__init__()
        self.handlers: dict[tuple[str, bytes], tuple[list[str], Any]] = {}
        for address, abi in (
            (evm.METAGRAPH_PRECOMPILE, evm.METAGRAPH_ABI),
            (evm.NEURON_PRECOMPILE, evm.NEURON_ABI),
            (evm.STAKING_V2_PRECOMPILE, evm.STAKING_V2_ABI),
        ):
            for fn in abi:
                self.handlers[(address.lower(), function_abi_to_4byte_selector(fn))] = (
                    [i["type"] for i in fn["inputs"]],
                    fn["name"],
                )

    def answer(self, name: str, args: tuple[Any, ...]) -> bytes:
        table: dict[str, tuple[list[str], list[Any]]] = {
            "getUidCount": (["uint16"], [3]),
            "getHotkey": (["bytes32"], [HOT]),
            "getColdkey": (["bytes32"], [COLD]),
            "getStake": (["uint64"], [123]) if len(args) == 2 else (["uint256"], [456]),
            "getIncentive": (["uint16"], [65535]),
            "getDividends": (["uint16"], [0]),
            "getVtrust": (["uint16"], [32768]),
            "getLastUpdate": (["uint64"], [77]),
            "getValidatorStatus": (["bool"], [True]),
            "getIsActive": (["bool"], [True]),
            "getAxon": (
                ["(uint64,uint32,uint128,uint16,uint8,uint8)"],
                [(5, 1, 0x7F000001, 8091, 4, 4)],
            ),
            "getUid": (["bool", "uint16"], [len(args) > 1 and args[1] == HOT, 2]),
            "getWeights": (["(uint16,uint16)[]"], [[(0, 65535), (2, 100)]]),
            "getTotalHotkeyStake": (["uint256"], [999]),
        }
        types, values = table[name]
        return abi_encode(types, values)

    def make_request(self, method: Any, params: Any) -> Any:
        if method == "eth_chainId":
            return {"jsonrpc": "2.0", "id": 1, "result": hex(945)}
        assert method == "eth_call", method
        tx = params[0]
        data = bytes.fromhex(tx["data"].removeprefix("0x"))
        types, name = self.handlers[(tx["to"].lower(), data[:4])]
        args = abi_decode(types, data[4:])
        return {"jsonrpc": "2.0", "id": 1, "result": "0x" + self.answer(name, args).hex()}

    def is_connected(self, show_traceback: bool = False) -> bool:
        return True


def test_reads_through_web3():
    reader = evm.BittensorEvmReader(Web3(FakePrecompiles()))
    assert reader.uid_count(7) == 3
    n = reader.neuron_at(7, 2)
    assert (n.hotkey, n.coldkey) == (account_id_to_ss58(HOT), account_id_to_ss58(COLD))
    assert (n.stake_rao, n.incentive, n.last_update, n.validator_permit) == (123, 1.0, 77, True)
    assert (n.axon_ip, n.axon_port) == ("127.0.0.1", 8091)
    assert reader.uid_of(7, account_id_to_ss58(HOT)) == 2
    assert reader.uid_of(7, account_id_to_ss58(COLD)) is None
    assert reader.weights(7, 2) == [(0, 65535), (2, 100)]
    assert reader.stake(account_id_to_ss58(HOT), account_id_to_ss58(COLD), 7) == 456
    assert reader.total_hotkey_stake(account_id_to_ss58(HOT)) == 999
