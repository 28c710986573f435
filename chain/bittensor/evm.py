"""Read Bittensor subnet state from its EVM side (web3 calls to subtensor's precompiles).

On the Bittensor EVM (chain id 964 finney, 945 testnet) subtensor exposes pallets as
precompiled contracts at fixed addresses — the precompile's index as an address:

| precompile | index | address |
|---|---|---|
| metagraph (read-only neuron state by netuid, uid) | 2050 | ``0x…0802`` |
| neuron (registration, weights, serving; reads: uid, weights) | 2052 | ``0x…0804`` |
| staking v2 (stake reads and moves, rao amounts) | 2053 | ``0x…0805`` |

Hotkeys and coldkeys travel as ``bytes32`` public keys. The ABI fragments below are the
precompiles' Solidity interfaces (subtensor ``precompiles/src/solidity/*.sol``) for the views
Latent reads; their selectors are checked against the SDK's ABI files in the tests. A
contract on the Bittensor EVM can call the same views.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_typing import ChecksumAddress
from web3 import Web3

from chain.bittensor.metagraph import U16_MAX, ip_text
from chain.bittensor.ss58 import account_id_to_ss58, ss58_to_account_id


def precompile_address(index: int) -> ChecksumAddress:
    """The checksummed address of the precompile with ``index``."""
    return Web3.to_checksum_address("0x" + index.to_bytes(20, "big").hex())


METAGRAPH_PRECOMPILE = precompile_address(2050)  # 0x...0802
NEURON_PRECOMPILE = precompile_address(2052)  # 0x...0804
STAKING_V2_PRECOMPILE = precompile_address(2053)  # 0x...0805


def _fn(name: str, inputs: list[tuple[str, str]], outputs: list[Any]) -> dict[str, Any]:
    def param(p: Any) -> dict[str, Any]:
        if isinstance(p, dict):
            return p
        n, t = p
        return {"name": n, "type": t, "internalType": t}

    return {
        "type": "function",
        "name": name,
        "stateMutability": "view",
        "inputs": [param(p) for p in inputs],
        "outputs": [param(p) for p in outputs],
    }


_UID = [("netuid", "uint16"), ("uid", "uint16")]
METAGRAPH_ABI: list[dict[str, Any]] = [
    _fn("getUidCount", [("netuid", "uint16")], [("", "uint16")]),
    _fn("getHotkey", _UID, [("", "bytes32")]),
    _fn("getColdkey", _UID, [("", "bytes32")]),
    _fn("getStake", _UID, [("", "uint64")]),
    _fn("getIncentive", _UID, [("", "uint16")]),
    _fn("getDividends", _UID, [("", "uint16")]),
    _fn("getVtrust", _UID, [("", "uint16")]),
    _fn("getLastUpdate", _UID, [("", "uint64")]),
    _fn("getValidatorStatus", _UID, [("", "bool")]),
    _fn("getIsActive", _UID, [("", "bool")]),
    _fn(
        "getAxon",
        _UID,
        [
            {
                "name": "",
                "type": "tuple",
                "internalType": "struct AxonInfo",
                "components": [
                    {"name": n, "type": t, "internalType": t}
                    for n, t in (
                        ("block", "uint64"),
                        ("version", "uint32"),
                        ("ip", "uint128"),
                        ("port", "uint16"),
                        ("ip_type", "uint8"),
                        ("protocol", "uint8"),
                    )
                ],
            }
        ],
    ),
]
NEURON_ABI: list[dict[str, Any]] = [
    _fn("getUid", [("netuid", "uint16"), ("hotkey", "bytes32")], [("", "bool"), ("", "uint16")]),
    _fn(
        "getWeights",
        _UID,
        [
            {
                "name": "",
                "type": "tuple[]",
                "internalType": "struct INeuron.WeightPair[]",
                "components": [
                    {"name": "uid", "type": "uint16", "internalType": "uint16"},
                    {"name": "value", "type": "uint16", "internalType": "uint16"},
                ],
            }
        ],
    ),
]
STAKING_V2_ABI: list[dict[str, Any]] = [
    _fn(
        "getStake",
        [("hotkey", "bytes32"), ("coldkey", "bytes32"), ("netuid", "uint256")],
        [("", "uint256")],
    ),
    _fn("getTotalAlphaStaked", [("hotkey", "bytes32"), ("netuid", "uint256")], [("", "uint256")]),
    _fn("getTotalHotkeyStake", [("hotkey", "bytes32")], [("", "uint256")]),
    _fn("getTotalColdkeyStake", [("coldkey", "bytes32")], [("", "uint256")]),
]


@dataclass(frozen=True)
class EvmNeuron:
    """One uid as the metagraph precompile reports it."""

    uid: int
    hotkey: str
    coldkey: str
    stake_rao: int
    incentive: float
    dividends: float
    validator_trust: float
    last_update: int
    validator_permit: bool
    active: bool
    axon_ip: str
    axon_port: int


class BittensorEvmReader:
    """Reads the metagraph, neuron and staking precompiles through a web3 connection."""

    def __init__(self, w3: Web3) -> None:
        self.w3 = w3
        self.metagraph = w3.eth.contract(address=METAGRAPH_PRECOMPILE, abi=METAGRAPH_ABI)
        self.neuron = w3.eth.contract(address=NEURON_PRECOMPILE, abi=NEURON_ABI)
        self.staking = w3.eth.contract(address=STAKING_V2_PRECOMPILE, abi=STAKING_V2_ABI)

    def uid_count(self, netuid: int) -> int:
        return int(self.metagraph.functions.getUidCount(netuid).call())

    def neuron_at(self, netuid: int, uid: int) -> EvmNeuron:
        f = self.metagraph.functions
        block, version, ip, port, ip_type, protocol = f.getAxon(netuid, uid).call()
        del block, version, protocol
        return EvmNeuron(
            uid=uid,
            hotkey=account_id_to_ss58(bytes(f.getHotkey(netuid, uid).call())),
            coldkey=account_id_to_ss58(bytes(f.getColdkey(netuid, uid).call())),
            stake_rao=int(f.getStake(netuid, uid).call()),
            incentive=int(f.getIncentive(netuid, uid).call()) / U16_MAX,
            dividends=int(f.getDividends(netuid, uid).call()) / U16_MAX,
            validator_trust=int(f.getVtrust(netuid, uid).call()) / U16_MAX,
            last_update=int(f.getLastUpdate(netuid, uid).call()),
            validator_permit=bool(f.getValidatorStatus(netuid, uid).call()),
            active=bool(f.getIsActive(netuid, uid).call()),
            axon_ip=ip_text(int(ip), int(ip_type)),
            axon_port=int(port),
        )

    def uid_of(self, netuid: int, hotkey: str) -> int | None:
        """The uid ``hotkey`` (SS58) holds on ``netuid``, or None."""
        found, uid = self.neuron.functions.getUid(netuid, ss58_to_account_id(hotkey)).call()
        return int(uid) if found else None

    def weights(self, netuid: int, uid: int) -> list[tuple[int, int]]:
        """The weight row ``uid`` has set on ``netuid``: [(dest uid, u16 value)]."""
        return [(int(d), int(v)) for d, v in self.neuron.functions.getWeights(netuid, uid).call()]

    def stake(self, hotkey: str, coldkey: str, netuid: int) -> int:
        """Alpha stake (rao) ``coldkey`` holds on ``hotkey`` in ``netuid``."""
        return int(
            self.staking.functions.getStake(
                ss58_to_account_id(hotkey), ss58_to_account_id(coldkey), netuid
            ).call()
        )

    def total_hotkey_stake(self, hotkey: str) -> int:
        return int(self.staking.functions.getTotalHotkeyStake(ss58_to_account_id(hotkey)).call())
