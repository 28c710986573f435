"""Deployment: idempotency against anvil, manifest contents, dry-run estimates."""

from __future__ import annotations

import json
from pathlib import Path

from eth_account.signers.local import LocalAccount
from web3 import Web3

from chain.compile import Artifact
from chain.manifest import manifest_path
from chain.networks import Network, get_network
from deploy.deployer import PLAN, ContractSpec, deploy_plan, estimate_plan


def _localnet(w3: Web3) -> Network:
    net = get_network("localnet")
    return Network(net.name, w3.eth.chain_id, "unused", net.rpc_env, True)


def test_deploy_is_idempotent_and_manifest_is_complete(
    fresh_chain: Web3, accounts: list[LocalAccount], artifacts: dict[str, Artifact], tmp_path: Path
) -> None:
    w3, net, deployer = fresh_chain, _localnet(fresh_chain), accounts[0]
    manifest, steps = deploy_plan(w3, net, deployer, manifest_dir=tmp_path)
    assert [s.action for s in steps] == ["deployed"] * len(PLAN)
    block_after_first = w3.eth.block_number

    again, steps2 = deploy_plan(w3, net, deployer, manifest_dir=tmp_path)
    assert [s.action for s in steps2] == ["unchanged"] * len(PLAN)
    assert w3.eth.block_number == block_after_first, "an unchanged deploy must send nothing"
    assert again.contracts == manifest.contracts

    data = json.loads(manifest_path("localnet", tmp_path).read_text())
    assert data["chainId"] == w3.eth.chain_id
    assert data["compilerVersion"].startswith("0.8.30")
    for spec in PLAN:
        entry = data["contracts"][spec.name]
        assert len(w3.eth.get_code(entry["address"])) > 0
        receipt = w3.eth.get_transaction_receipt(entry["txHash"])
        assert receipt["contractAddress"] == entry["address"]
        assert receipt["blockNumber"] == entry["block"]
        assert entry["sourceHash"] == artifacts[spec.name].source_hash


def test_changed_constructor_args_redeploy(
    fresh_chain: Web3, accounts: list[LocalAccount], tmp_path: Path
) -> None:
    w3, net = fresh_chain, _localnet(fresh_chain)
    first, _ = deploy_plan(w3, net, accounts[0], manifest_dir=tmp_path)
    other_minter = (ContractSpec("SubnetToken", lambda ctx: (ctx.deployer, accounts[1].address)),)
    second, steps = deploy_plan(w3, net, accounts[0], plan=other_minter, manifest_dir=tmp_path)
    assert steps[0].action == "deployed"
    assert second.contracts["SubnetToken"].address != first.contracts["SubnetToken"].address


def test_redeploys_when_chain_was_reset(
    w3: Web3, accounts: list[LocalAccount], tmp_path: Path
) -> None:
    from chain.node import revert, snapshot

    net = _localnet(w3)
    snap = snapshot(w3)
    deploy_plan(w3, net, accounts[0], manifest_dir=tmp_path)
    revert(w3, snap)  # the recorded address now has no code, like a restarted anvil
    snap = snapshot(w3)
    try:
        _, steps = deploy_plan(w3, net, accounts[0], manifest_dir=tmp_path)
        assert steps[0].action == "deployed"
    finally:
        revert(w3, snap)


def test_dry_run_estimates_without_sending(w3: Web3, accounts: list[LocalAccount]) -> None:
    before = w3.eth.block_number
    steps = estimate_plan(w3, _localnet(w3), accounts[7].address)
    assert w3.eth.block_number == before
    assert [s.name for s in steps] == [spec.name for spec in PLAN]
    assert all(100_000 < s.gas < 30_000_000 for s in steps)


def test_epoch_contract_is_wired_as_epoch_minter_and_reward_pool(
    fresh_chain: Web3, accounts: list[LocalAccount], tmp_path: Path
) -> None:
    from chain.client import Contract

    w3 = fresh_chain
    manifest, _ = deploy_plan(w3, _localnet(w3), accounts[0], manifest_dir=tmp_path)
    yuma = manifest.address("YumaConsensus")
    metagraph = Contract(w3, "Metagraph", manifest.address("Metagraph"))
    token = Contract(w3, "SubnetToken", manifest.address("SubnetToken"))
    escrow = Contract(w3, "PaymentEscrow", manifest.address("PaymentEscrow"))
    assert metagraph.call("epochContract") == yuma
    assert token.call("minter") == yuma
    assert escrow.call("rewardPool") == yuma
    assert Contract(w3, "YumaConsensus", yuma).call("metagraph") == metagraph.address
    # Dev accounts were funded while the deployer could still mint.
    assert int(token.call("balanceOf", accounts[5].address)) > 0
