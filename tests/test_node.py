"""The anvil manager: free ports, chain id, block time, state file persistence."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from chain.client import deploy_contract
from chain.errors import NodeError
from chain.keys import dev_accounts
from chain.node import AnvilNode


def test_state_file_persists_a_deployment(artifacts: object, tmp_path: Path) -> None:
    state = tmp_path / "chain.json"
    deployer = dev_accounts(1)[0]
    with AnvilNode(chain_id=4242, state_path=state) as node:
        w3 = node.web3()
        assert w3.eth.chain_id == 4242
        token, _ = deploy_contract(
            w3, "SubnetToken", deployer.address, deployer.address, sender=deployer
        )
        height = w3.eth.block_number
    assert state.is_file() and not node.running
    with AnvilNode(chain_id=4242, state_path=state) as again:
        w3 = again.web3()
        assert len(w3.eth.get_code(token.address)) > 0
        assert w3.eth.block_number >= height


def test_block_time_mines_without_transactions() -> None:
    with AnvilNode(block_time=0.2) as node:
        w3 = node.web3()
        start = w3.eth.block_number
        time.sleep(1.0)
        assert w3.eth.block_number >= start + 2


def test_two_nodes_get_distinct_ports() -> None:
    with AnvilNode() as a, AnvilNode() as b:
        assert a.port != b.port
        assert a.web3().eth.chain_id == b.web3().eth.chain_id == 31337


def test_port_in_use_is_a_clear_error() -> None:
    with AnvilNode() as first:
        clash = AnvilNode(port=first.port, startup_timeout_s=5)
        with pytest.raises(NodeError):
            clash.start()
        clash.stop()
