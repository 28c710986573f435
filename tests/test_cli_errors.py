"""Every refused command: exit 1 (usage errors: 2), exactly one line on stderr starting
``error:``, no traceback, and nothing sent to the chain.

The commands run in-process through ``latent.cli.main`` (the console entry point, which turns
a ``LatentError`` into the one line), against the session's anvil with a fresh deployment.
``test_cli.py`` keeps the cases that need a subprocess (environment, another repo root).
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from cli_env import Subnet, assert_one_line_error, chain_args, run_latent, subnet
from eth_account.signers.local import LocalAccount

from chain.epoch import EpochClient, Phase
from chain.node import AnvilNode, mine, revert, snapshot

__all__ = ["subnet"]  # the module-scoped fixture


# ------------------------------------------------------------ refused before any chain access


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["model", "hash", "/nonexistent/model"], ["no model directory at /nonexistent/model"]),
        (["model", "hash", "{tmp}"], ["no *.safetensors files in"]),
        (["miner", "run", "--model", "/nonexistent", "--port", "70000"], ["--port 70000"]),
        (["bench", "gas", "--area", "nope"], ["unknown --area nope", "escrow"]),
        (
            ["register", "--dev-account", "12", "--hotkey-dev-account", "1"],
            ["--dev-account 12: dev accounts are 0-9"],
        ),
        (
            ["validator", "run", "--model", "/x", "--payer-dev-account", "10"],
            ["--payer-dev-account 10: dev accounts are 0-9"],
        ),
        (["deploy", "--network", "moon"], ["unknown network 'moon'"]),
        (
            ["deploy", "--network", "localnet", "--rpc-url", "http://127.0.0.1:9"],
            ["cannot reach", "http://127.0.0.1:9"],
        ),
        (["deploy", "--network", "sepolia", "--rpc-url", "{rpc}"], ["chain id 31337", "11155111"]),
        (
            ["deploy", "--rpc-url", "{rpc}", "--keystore", "{tmp}/missing.json"],
            ["no keystore at", "latent wallet create"],
        ),
        (
            ["register", "--rpc-url", "{rpc}", "--dev-account", "1", "--hotkey-dev-account", "1",
             "--endpoint", "ftp://example.org"],
            ["is not an http(s) URL"],
        ),
    ],
    ids=[
        "model-hash-missing", "model-hash-no-weights", "miner-port-range", "bench-area",
        "dev-account", "payer-dev", "unknown-network", "unreachable-rpc", "wrong-chain-id",
        "missing-keystore", "endpoint-scheme",
    ],
)  # fmt: skip
def test_bad_input_is_one_line(
    capsys: pytest.CaptureFixture[str],
    anvil: AnvilNode,
    tmp_path: Path,
    argv: list[str],
    fragments: list[str],
) -> None:
    args = [a.format(rpc=anvil.rpc_url, tmp=tmp_path) for a in argv]
    assert_one_line_error(run_latent(capsys, *args), *fragments)


def test_miner_port_in_use_is_refused_before_the_model_loads(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The model path does not exist: had the miner loaded it (or read a key) first, the
    error would be another one."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        outcome = run_latent(
            capsys, "miner", "run", "--model", "/nonexistent", "--port", str(port), "--offline"
        )
    assert_one_line_error(outcome, f"cannot listen on 127.0.0.1:{port}", "--port")


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["renter", "open", "--amount", "5"], ["Missing option '--miner'", "renter open -h"]),
        (["stake", "add"], ["Missing argument 'amount'", "stake add -h"]),
        (["metagraph", "--nope"], ["No such option: --nope"]),
        (["nosuchcommand"], ["No such command 'nosuchcommand'", "latent -h"]),
    ],
    ids=["missing-option", "missing-argument", "unknown-option", "unknown-command"],
)
def test_usage_errors_are_one_line_with_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], fragments: list[str]
) -> None:
    assert_one_line_error(run_latent(capsys, *argv), *fragments, code=2)


# ------------------------------------------------------------ refused with nothing sent


def test_register_with_an_endpoint_that_is_no_url_burns_nothing(
    capsys: pytest.CaptureFixture[str], subnet: Subnet, accounts: list[LocalAccount]
) -> None:
    before = subnet.fingerprint(accounts)
    price = subnet.graph.registration_price()
    outcome = run_latent(
        capsys, "register", *chain_args(subnet), "--dev-account", "1",
        "--hotkey-dev-account", "1", "--endpoint", "not-a-url",
    )  # fmt: skip
    assert_one_line_error(outcome, "--endpoint 'not-a-url' is not an http(s) URL")
    assert subnet.fingerprint(accounts) == before
    assert subnet.graph.registration_price() == price
    assert subnet.graph.uid_of(accounts[1].address) is None


def test_register_during_an_epoch_says_when_to_retry(
    capsys: pytest.CaptureFixture[str], subnet: Subnet, accounts: list[LocalAccount]
) -> None:
    w3, owner = subnet.w3, accounts[0]
    snap = snapshot(w3)
    try:
        for account in accounts[1:3]:  # a miner and a validator, so the epoch has work
            subnet.graph.register(account, account.address, "")
        subnet.graph.add_stake(accounts[2], accounts[2].address, 10**21)
        epoch = EpochClient(w3, subnet.manifest.address("YumaConsensus"))
        mine(w3, max(0, epoch.next_epoch_block() - w3.eth.block_number) + 1)
        epoch.run_epoch(owner)  # the first step only: the epoch is now running
        phase, _ = epoch.progress()
        assert phase != Phase.IDLE
        before = subnet.fingerprint(accounts)
        outcome = run_latent(
            capsys, "register", *chain_args(subnet), "--dev-account", "3",
            "--hotkey-dev-account", "3", "--endpoint", "http://127.0.0.1:8003",
        )  # fmt: skip
        line = assert_one_line_error(outcome, "epoch in progress, retry in ~")
        assert "blocks" in line
        assert subnet.fingerprint(accounts) == before  # not even the approval was sent
        epoch.run_epoch_until_done(owner)
        registered = run_latent(
            capsys, "register", *chain_args(subnet), "--dev-account", "3",
            "--hotkey-dev-account", "3", "--endpoint", "http://127.0.0.1:8003", "--json",
        )  # fmt: skip
        assert registered.code == 0, registered
    finally:
        revert(w3, snap)


def test_a_started_epoch_between_check_and_send_maps_the_revert(
    subnet: Subnet, accounts: list[LocalAccount]
) -> None:
    """The race the pre-check cannot close: the contract's ``MetagraphEpochInProgress``
    revert becomes the same error."""
    from chain.metagraph import EpochInProgress

    w3 = subnet.w3
    snap = snapshot(w3)
    try:
        subnet.graph.register(accounts[1], accounts[1].address, "")
        subnet.graph.add_stake(accounts[1], accounts[1].address, 10**21)
        epoch = EpochClient(w3, subnet.manifest.address("YumaConsensus"))
        mine(w3, max(0, epoch.next_epoch_block() - w3.eth.block_number) + 1)
        epoch.run_epoch(accounts[0])
        subnet.graph.refuse_during_epoch = lambda: None  # type: ignore[method-assign]
        with pytest.raises(EpochInProgress, match="epoch in progress, retry in ~"):
            subnet.graph.register(accounts[4], accounts[4].address, "")
    finally:
        revert(w3, snap)


@pytest.mark.parametrize(
    "argv",
    [
        ["renter", "ask", "hello"],
        [
            "renter",
            "open",
            "--miner",
            "{miner}",
            "--amount",
            "1",
            "--escrow",
            "{escrow}",
            "--token",
            "{token}",
        ],
        ["stake", "add", "--hotkey-address", "{miner}", "--metagraph", "{metagraph}", "1"],
    ],
    ids=["renter-ask", "renter-open", "stake-add"],
)
# `rewards claim` refuses the same way: tests/dashboard/test_rewards_cli.py
def test_signing_commands_never_guess_a_signer(
    capsys: pytest.CaptureFixture[str],
    subnet: Subnet,
    accounts: list[LocalAccount],
    argv: list[str],
) -> None:
    """No --wallet/--keystore/--dev-account: one line naming them, nothing sent (a guessed
    dev account 0 would spend the deployer's tokens)."""
    before = subnet.fingerprint(accounts)
    addresses = {
        "miner": accounts[1].address,
        "escrow": subnet.manifest.address("PaymentEscrow"),
        "token": subnet.manifest.address("SubnetToken"),
        "metagraph": subnet.manifest.address("Metagraph"),
    }
    args = [a.format(**addresses) for a in argv]
    outcome = run_latent(capsys, *args, "--rpc-url", subnet.rpc_url)
    assert_one_line_error(outcome, "no signing key given", "--wallet", "--dev-account")
    assert subnet.fingerprint(accounts) == before
