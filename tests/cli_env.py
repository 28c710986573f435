"""Shared by the CLI tests: run ``latent`` in-process through its console entry point, and a
fresh deployment on the session's anvil."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3

from chain.manifest import Manifest
from chain.metagraph import MetagraphClient
from chain.networks import Network, get_network
from chain.node import AnvilNode, revert, snapshot
from deploy.deployer import deploy_plan
from latent.cli import main


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str


def run_latent(capsys: pytest.CaptureFixture[str], *argv: str) -> Outcome:
    capsys.readouterr()
    code: object = 0
    try:
        main(list(argv))
    except SystemExit as exited:
        code = exited.code or 0
    out = capsys.readouterr()
    return Outcome(code if isinstance(code, int) else 1, out.out, out.err)


def assert_one_line_error(outcome: Outcome, *fragments: str, code: int = 1) -> str:
    assert outcome.code == code, outcome
    assert "Traceback" not in outcome.stderr + outcome.stdout
    lines = [line for line in outcome.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, outcome.stderr
    assert lines[0].startswith("error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@dataclass(frozen=True)
class Subnet:
    w3: Web3
    rpc_url: str
    manifest: Manifest
    graph: MetagraphClient

    def fingerprint(self, accounts: list[LocalAccount]) -> tuple[int, ...]:
        """Block height and every dev account's nonce: equal means no transaction was sent."""
        return (
            self.w3.eth.block_number,
            *(self.w3.eth.get_transaction_count(a.address) for a in accounts),
        )


@pytest.fixture(scope="module")
def subnet(
    anvil: AnvilNode,
    w3: Web3,
    accounts: list[LocalAccount],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Subnet]:
    snap = snapshot(w3)
    base = get_network("localnet")
    net = Network(base.name, 31337, anvil.rpc_url, base.rpc_env, True, base.metagraph)
    manifest, _ = deploy_plan(w3, net, accounts[0], manifest_dir=tmp_path_factory.mktemp("dep"))
    graph = MetagraphClient(w3, manifest.address("Metagraph"))
    yield Subnet(w3, anvil.rpc_url, manifest, graph)
    revert(w3, snap)


def chain_args(subnet: Subnet) -> list[str]:
    return ["--rpc-url", subnet.rpc_url, "--metagraph", subnet.manifest.address("Metagraph")]
