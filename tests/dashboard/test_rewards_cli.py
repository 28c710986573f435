"""``latent rewards show|claim`` and the metagraph's claimable column, on the demo subnet
(tests/dashboard/dashboard_env.py: real contracts on anvil, the deployment manifest in a
temporary directory). Every amount is checked against the contracts and token balances."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dashboard_env import DemoSubnet, build_demo_subnet
from eth_account.signers.local import LocalAccount
from web3 import Web3

from chain.client import Contract
from chain.escrow import EscrowClient
from chain.metagraph import HyperParam
from chain.node import AnvilNode, revert, snapshot
from chain.token import SubnetTokenClient, format_token_amount

OWNER, COLDKEY = 0, 1  # dev accounts: the demo's deployer/owner and the coldkey of every hotkey


@pytest.fixture(scope="module")
def demo_dir(
    w3: Web3,
    accounts: list[LocalAccount],
    token: SubnetTokenClient,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[DemoSubnet, Path]]:
    snap = snapshot(w3)  # `token` first: session contracts must exist before it
    directory = tmp_path_factory.mktemp("deployments")
    yield build_demo_subnet(w3, accounts, directory), directory
    revert(w3, snap)


def latent(anvil: AnvilNode, directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "latent", *args, "--rpc-url", anvil.rpc_url],
        capture_output=True,
        text=True,
        timeout=180,
        env={
            **os.environ,
            "COLUMNS": "250",
            "LATENT_DEPLOYMENTS_DIR": str(directory),
            "LATENT_WALLET_PASSWORD": "",
        },
        stdin=subprocess.DEVNULL,
    )


def latent_json(anvil: AnvilNode, directory: Path, *args: str) -> Any:
    result = latent(anvil, directory, *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_rewards_show_claim_and_metagraph_column(
    anvil: AnvilNode,
    w3: Web3,
    accounts: list[LocalAccount],
    demo_dir: tuple[DemoSubnet, Path],
) -> None:
    demo, directory = demo_dir
    epoch = demo.subnet.epoch
    hotkeys = demo.hotkeys
    before = {hk: epoch.claimable(hk) for hk in hotkeys}
    demo.run_epoch()
    snap = demo.subnet.metagraph.snapshot()
    (completed,) = epoch.contract.logs(
        "EpochCompleted", epoch.last_epoch_block(), "latest"
    )  # the epoch just run
    owner = accounts[OWNER].address
    coldkey = accounts[COLDKEY].address

    # --- show: what the epoch credited, per hotkey, equals the metagraph's emission
    shown = latent_json(anvil, directory, "rewards", "show")
    rows = {row["account"]: row for row in shown["accounts"]}
    assert set(rows) == {*hotkeys, owner}
    for uid, hk in enumerate(hotkeys):
        row = rows[hk]
        assert row["uid"] == uid and row["recipient"] == coldkey
        assert int(row["claimable_wei"]) == epoch.claimable(hk) > 0
        assert int(row["claimable_wei"]) - before[hk] == snap.emission[uid]
        assert int(row["last_epoch_wei"]) == snap.emission[uid]
        assert int(row["incentive_wei"]) + int(row["dividends_wei"]) == snap.emission[uid]
        assert int(row["claimed_wei"]) == 0
    for uid in (2, 3, 4):  # miners: no permit, so all of it is incentive
        assert rows[hotkeys[uid]]["split_exact"] is True
        assert int(rows[hotkeys[uid]]["incentive_wei"]) == snap.emission[uid] > 0
    for uid in (0, 1):  # validators: no incentive, so all of it is dividends
        assert int(rows[hotkeys[uid]]["dividends_wei"]) == snap.emission[uid] > 0
    owner_row = rows[owner]
    assert owner_row["role"] == "owner"
    assert int(owner_row["last_epoch_wei"]) == int(completed["distributed"]) - sum(snap.emission)
    assert int(owner_row["claimable_wei"]) == epoch.claimable(owner) > 0

    escrow = EscrowClient(w3, demo.escrow)
    fee_bps = escrow.protocol_fee_bps()
    for cid, (uid, _deposit, settled) in demo.channels.items():
        row = rows[hotkeys[uid]]
        assert row["escrow_channels"] == [cid]
        assert int(row["escrow_claimable_wei"]) == settled - settled * fee_bps // 10_000

    table = latent(anvil, directory, "rewards", "show")
    assert table.returncode == 0, table.stderr
    assert "LAT" in table.stdout and "escrow claimable" in table.stdout

    # --- the metagraph shows the same claimable amount per hotkey
    metagraph = latent_json(anvil, directory, "metagraph")
    for uid, neuron in enumerate(metagraph["neurons"]):
        assert int(neuron["claimable_wei"]) == epoch.claimable(neuron["hotkey"])
        assert int(neuron["emission_wei"]) == snap.emission[uid] and "emission" not in neuron
        assert int(neuron["stake_wei"]) == snap.stake[uid]
    assert int(metagraph["registration_price_wei"]) == snap.registration_price
    mg_table = latent(anvil, directory, "metagraph")
    assert mg_table.returncode == 0 and "claimable" in mg_table.stdout

    # --- a contract error on the command line is in tokens and names the signer
    broke = latent(
        anvil, directory, "stake", "add", "1000000", "--dev-account", "5",
        "--hotkey-address", hotkeys[0],
    )  # fmt: skip
    assert broke.returncode == 1, broke.stdout
    held = int(Contract(w3, "SubnetToken", demo.subnet.token.address).call(
        "balanceOf", accounts[5].address
    ))  # fmt: skip
    assert (
        f"{accounts[5].address} (signer) has balance {format_token_amount(held)}, "
        "needs 1,000,000 LAT"
    ) in broke.stderr, broke.stderr

    # --- claim needs a named signer, and only the coldkey (or the hotkey) may claim
    unsigned = latent(anvil, directory, "rewards", "claim")
    assert unsigned.returncode == 1 and "Traceback" not in unsigned.stderr
    stranger = latent(
        anvil, directory, "rewards", "claim", "--dev-account", "5",
        "--hotkey-address", hotkeys[2],
    )  # fmt: skip
    assert stranger.returncode == 1 and "not the coldkey" in stranger.stderr

    # --- claim: the coldkey receives exactly the emission, the miners their escrow earnings
    token = Contract(w3, "SubnetToken", demo.subnet.token.address)

    def balance(account: str) -> int:
        return int(token.call("balanceOf", account))

    emission_due = sum(epoch.claimable(hk) for hk in hotkeys)
    escrow_due = {hotkeys[u]: int(rows[hotkeys[u]]["escrow_claimable_wei"]) for u in (2, 3)}
    cold_before = balance(coldkey)
    miners_before = {hk: balance(hk) for hk in escrow_due}
    claimed = latent_json(anvil, directory, "rewards", "claim", "--dev-account", str(COLDKEY))
    assert claimed["signer"] == coldkey
    emission_claims = [c for c in claimed["claims"] if c["source"] == "emission"]
    assert {c["account"] for c in emission_claims} == set(hotkeys)
    assert sum(int(c["amount_wei"]) for c in emission_claims) == emission_due
    assert balance(coldkey) - cold_before == emission_due
    for hk, due in escrow_due.items():
        assert balance(hk) - miners_before[hk] == due > 0
    assert int(claimed["claimed_wei"]) == emission_due + sum(escrow_due.values())
    assert all(epoch.claimable(hk) == 0 for hk in hotkeys)

    again = latent_json(anvil, directory, "rewards", "claim", "--dev-account", str(COLDKEY))
    assert again["claims"] == [] and again["claimed_wei"] == "0"
    plain = latent(anvil, directory, "rewards", "claim", "--dev-account", str(COLDKEY))
    assert plain.returncode == 0 and "nothing to claim" in plain.stdout

    after = {
        row["account"]: row for row in latent_json(anvil, directory, "rewards", "show")["accounts"]
    }
    for hk in hotkeys:
        assert after[hk]["claimable_wei"] == "0"
        assert after[hk]["escrow_claimable_wei"] == "0"
        assert after[hk]["escrow_channels"] == []
    assert sum(int(after[hk]["claimed_wei"]) for hk in hotkeys) == emission_due
    for hk, due in escrow_due.items():
        assert int(after[hk]["escrow_claimed_wei"]) == due

    # --- the subnet owner claims its share with its own key, in tokens on the console
    owner_due = epoch.claimable(owner)
    owner_before = balance(owner)
    owner_claim = latent(anvil, directory, "rewards", "claim", "--dev-account", str(OWNER))
    assert owner_claim.returncode == 0, owner_claim.stderr
    assert "LAT emission of owner" in owner_claim.stdout
    assert balance(owner) - owner_before == owner_due > 0


def test_a_replaced_hotkey_still_shows_and_claims_what_it_earned(
    anvil: AnvilNode,
    w3: Web3,
    accounts: list[LocalAccount],
    demo_dir: tuple[DemoSubnet, Path],
) -> None:
    demo, directory = demo_dir
    subnet, epoch = demo.subnet, demo.subnet.epoch
    demo.run_epoch()  # credit something again (the test above may have claimed it all)
    subnet.set_params({HyperParam.MAX_UIDS: len(subnet.hotkeys)})  # full: the next one replaces
    uid = int(subnet.metagraph.contract.call("nextRegistrationUid"))
    old = subnet.hotkeys[uid].address
    earned = epoch.claimable(old)
    assert earned > 0
    subnet.register(1)
    assert subnet.hotkeys[uid].address != old
    assert epoch.claimable(old) == earned  # kept for the old hotkey (onUidReplaced)

    everyone = latent_json(anvil, directory, "rewards", "show")
    assert old not in {row["account"] for row in everyone["accounts"]}  # no uid any more
    (row,) = latent_json(anvil, directory, "rewards", "show", "--hotkey-address", old)["accounts"]
    assert (row["role"], row["uid"], row["claimable_wei"]) == ("former", None, str(earned))
    assert row["recipient"] == accounts[COLDKEY].address
    stranger = latent(anvil, directory, "rewards", "show", "--hotkey-address", "0x" + "ab" * 20)
    assert stranger.returncode == 1 and "never credited" in stranger.stderr

    token = Contract(w3, "SubnetToken", subnet.token.address)
    before = int(token.call("balanceOf", accounts[COLDKEY].address))
    claimed = latent_json(
        anvil, directory, "rewards", "claim", "--dev-account", str(COLDKEY),
        "--hotkey-address", old,
    )  # fmt: skip
    assert [(c["account"], c["role"], c["amount_wei"]) for c in claimed["claims"]] == [
        (old, "former", str(earned))
    ]
    assert int(token.call("balanceOf", accounts[COLDKEY].address)) - before == earned
    assert epoch.claimable(old) == 0
