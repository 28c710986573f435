"""CLI conventions: commands grouped by role in ``latent -h``; one definition of the shared
options; ``--json`` on every command that changes state, printing one JSON object; tables as
plain text when stdout is not a terminal."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import typer
from cli_env import Subnet, chain_args, run_latent, subnet
from eth_account.signers.local import LocalAccount
from rich.table import Table

from chain.cli_output import plain_table_lines
from chain.node import increase_time, mine, revert, snapshot
from latent.cli import COMMAND_SECTIONS, app

__all__ = ["subnet"]  # the module-scoped fixture

ROOT = typer.main.get_command(app)


def _command(*path: str):  # type: ignore[no-untyped-def]
    cmd = ROOT
    for name in path:
        cmd = cmd.commands[name]  # type: ignore[attr-defined]
    return cmd


def _walk(cmd=ROOT, path=()):  # type: ignore[no-untyped-def]
    yield path, cmd
    for name, sub in getattr(cmd, "commands", {}).items():
        yield from _walk(sub, (*path, name))


# ------------------------------------------------------------------ help


def test_help_lists_every_command_once_under_its_role(capsys: pytest.CaptureFixture[str]) -> None:
    outcome = run_latent(capsys, "-h")
    assert outcome.code == 0
    titles = [title for title, _ in COMMAND_SECTIONS]
    shown = [line[:-1] for line in outcome.stdout.splitlines() if line[:-1] in titles]
    assert shown == [
        t for t in titles if any(n in ROOT.commands for n in dict(COMMAND_SECTIONS)[t])
    ]
    assert "Other:" not in outcome.stdout  # every command has a role section
    listed = re.findall(r"^  (\S+)\s", outcome.stdout, re.M)
    commands = [n for n in listed if n in ROOT.commands]
    assert sorted(commands) == sorted(ROOT.commands)  # each exactly once
    section_of = {n: t for t, names in COMMAND_SECTIONS for n in names}
    assert section_of["register"] == "Subnet" and section_of["miner"] == "Miner"
    assert section_of["renter"] == "Renter" and section_of["deploy"] == "Chain & deploy"
    # one column for all sections
    starts = {
        line.index(line.split()[1], len(line.split()[0]) + 2)
        for line in outcome.stdout.splitlines()
        if line.startswith("  ") and line.split()[0] in ROOT.commands
    }
    assert len(starts) == 1


# ------------------------------------------------------------------ shared options


def test_shared_options_are_the_same_everywhere() -> None:
    """Every ``--network`` honours LATENT_NETWORK and every dev-account index is checked,
    wherever the command lives (the Bittensor bridge's --network names a subtensor)."""
    seen = {"--network": 0, "--dev-account": 0, "--rpc-url": 0}
    for path, cmd in _walk():
        if path[:1] == ("bittensor",):
            continue
        for param in getattr(cmd, "params", []):
            opts = set(param.opts)
            if "--network" in opts:
                seen["--network"] += 1
                assert param.envvar == "LATENT_NETWORK", path
                assert "-n" in opts, path
            if "--rpc-url" in opts:
                seen["--rpc-url"] += 1
            if any(o.endswith("dev-account") for o in opts):
                seen["--dev-account"] += 1
                assert param.callback is not None, (path, param.opts)
    assert all(count >= 10 for count in seen.values()), seen


STATE_CHANGING = [
    ("register",),
    ("stake", "add"),
    ("stake", "remove"),
    ("stake", "claim"),
    ("renter", "open"),
    ("renter", "topup"),
    ("renter", "close"),
    ("renter", "withdraw"),
    ("renter", "ask"),
    ("miner", "settle"),
    ("deploy",),
    ("localnet",),
    ("wallet", "create"),
]


@pytest.mark.parametrize("path", STATE_CHANGING, ids=" ".join)
def test_every_state_changing_command_has_json(path: tuple[str, ...]) -> None:
    assert any("--json" in p.opts for p in _command(*path).params)


# ------------------------------------------------------------------ --json on chain


def _one_object(stdout: str) -> dict:  # type: ignore[type-arg]
    data = json.loads(stdout)
    assert isinstance(data, dict)
    return data


def test_stake_commands_print_one_json_object(
    capsys: pytest.CaptureFixture[str], subnet: Subnet, accounts: list[LocalAccount]
) -> None:
    w3, who = subnet.w3, accounts[4]
    snap = snapshot(w3)
    try:
        subnet.graph.register(who, who.address, "")
        common = [*chain_args(subnet), "--dev-account", "4", "--json"]
        hk = ["--hotkey-address", who.address]
        added = run_latent(capsys, "stake", "add", "3", *hk, *common)
        assert added.code == 0, added
        data = _one_object(added.stdout)
        assert data["staked_wei"] == str(3 * 10**18)
        assert int(data["hotkey_stake_wei"]) == subnet.graph.hotkey_stake(who.address)
        removed = run_latent(capsys, "stake", "remove", "1", *hk, *common)
        assert removed.code == 0, removed
        data = _one_object(removed.stdout)
        assert data["unbonding_wei"] == str(10**18)
        mine(w3, int(data["claimable_from_block"]) - w3.eth.block_number + 1)
        claimed = run_latent(capsys, "stake", "claim", *common)
        assert claimed.code == 0, claimed
        assert _one_object(claimed.stdout) == {"coldkey": who.address, "claimed_wei": str(10**18)}
    finally:
        revert(w3, snap)


def test_renter_channel_commands_print_one_json_object(
    capsys: pytest.CaptureFixture[str], subnet: Subnet, accounts: list[LocalAccount]
) -> None:
    w3 = subnet.w3
    snap = snapshot(w3)
    try:
        common = [
            "--rpc-url", subnet.rpc_url, "--escrow", subnet.manifest.address("PaymentEscrow"),
            "--dev-account", "8", "--json",
        ]  # fmt: skip
        token = ["--token", subnet.manifest.address("SubnetToken")]
        opened = run_latent(
            capsys, "renter", "open", "--miner", accounts[1].address, "--amount", "2",
            *token, *common,
        )  # fmt: skip
        assert opened.code == 0, opened
        channel = _one_object(opened.stdout)
        cid = channel["channel_id"]
        topped = run_latent(capsys, "renter", "topup", cid, "--amount", "1", *common)
        assert topped.code == 0, topped
        assert int(_one_object(topped.stdout)["deposit_wei"]) == 3 * 10**18
        closed = run_latent(capsys, "renter", "close", cid, *common)
        assert closed.code == 0, closed
        closes_at = _one_object(closed.stdout)["closes_at"]
        increase_time(w3, closes_at - int(w3.eth.get_block("latest")["timestamp"]) + 1)
        mine(w3)
        withdrawn = run_latent(capsys, "renter", "withdraw", cid, *common)
        assert withdrawn.code == 0, withdrawn
        assert _one_object(withdrawn.stdout) == {
            "channel": cid,
            "renter": accounts[8].address,
            "refund_wei": str(3 * 10**18),
        }
    finally:
        revert(w3, snap)


# ------------------------------------------------------------------ plain tables


def test_a_table_in_a_pipe_is_plain_text_nothing_cut_or_wrapped() -> None:
    table = Table("uid", "hotkey", "stake", title="metagraph at block 7")
    table.columns[2].justify = "right"
    long = "0x" + "ab" * 20 + " http://a-very-long-endpoint.example:8000/with/a/path"
    table.add_row("0", long, "1.5")
    table.add_row("12", "[bold]0xshort[/]", "1000.25")
    lines = plain_table_lines(table)
    assert lines[0] == "metagraph at block 7"
    assert lines[1].split() == ["uid", "hotkey", "stake"]
    assert long in lines[2]  # not truncated, one line
    assert "0xshort" in lines[3] and "[bold]" not in lines[3]
    assert lines[2].endswith("   1.5") and lines[3].endswith("1000.25")  # numbers align right
    assert not any(ch in "".join(lines) for ch in "│┃━─┏┡└…")


def test_metagraph_piped_at_80_columns_is_one_line_per_uid(
    capsys: pytest.CaptureFixture[str],
    subnet: Subnet,
    accounts: list[LocalAccount],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    w3 = subnet.w3
    snap = snapshot(w3)
    try:
        for i in (1, 2):
            subnet.graph.register(accounts[i], accounts[i].address, f"http://127.0.0.1:800{i}")
        outcome = run_latent(capsys, "metagraph", *chain_args(subnet))
    finally:
        revert(w3, snap)
    assert outcome.code == 0, outcome
    lines = outcome.stdout.splitlines()
    assert len(lines) == 1 + 1 + 2  # title, header, one per uid
    assert lines[1].split()[:4] == ["uid", "hotkey", "coldkey", "stake"]
    assert lines[1].split()[-1] == "endpoint"
    assert lines[2].split()[0] == "0" and lines[2].endswith("http://127.0.0.1:8001")
    assert lines[2].split()[1:3] == [accounts[1].address] * 2  # whole addresses, not 0x…
    assert max(len(line) for line in lines) > 80  # nothing was fitted into 80 columns


def test_wallet_list_piped_shows_full_paths(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LATENT_WALLET_PASSWORD", "pw")
    monkeypatch.setenv("COLUMNS", "80")
    created = run_latent(
        capsys, "wallet", "create", "--wallet", "w", "--wallet-dir", str(tmp_path), "--json"
    )
    assert created.code == 0, created
    key = _one_object(created.stdout)
    listed = run_latent(capsys, "wallet", "list", "--wallet-dir", str(tmp_path))
    assert listed.stdout.splitlines() == [
        "wallet  role     name     address",
        f"w       coldkey  default  {key['address']}",
    ]


def test_a_long_one_liner_is_not_wrapped_in_a_pipe(
    capsys: pytest.CaptureFixture[str],
    subnet: Subnet,
    accounts: list[LocalAccount],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    snap = snapshot(subnet.w3)
    try:
        outcome = run_latent(
            capsys, "register", *chain_args(subnet), "--dev-account", "2",
            "--hotkey-dev-account", "2", "--endpoint", "http://127.0.0.1:8002",
        )  # fmt: skip
    finally:
        revert(subnet.w3, snap)
    assert outcome.code == 0, outcome
    (line,) = outcome.stdout.splitlines()
    assert line.startswith(f"registered {accounts[2].address} as uid 0 (coldkey")
    assert len(line) > 80
