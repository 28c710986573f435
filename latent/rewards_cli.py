"""``latent rewards show|claim``: emission and escrow earnings per hotkey, and claiming them.

``show`` lists, per hotkey (and the subnet owner): what the last epoch credited (miner
incentive and validator dividends), what is claimable now and what was claimed before, and
the escrow earnings a miner can have paid out. ``claim`` signs with the key the flags name
(never a guessed one), claims every named account's emission (``YumaConsensus.claim``: paid
to the hotkey's coldkey) and pays out its settled escrow earnings (``claimEarnings``: paid to
the miner hotkey), and prints what moved. Amounts are shown in tokens; ``--json`` prints
base units in ``*_wei`` fields (decimal strings).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer
from eth_account.signers.local import LocalAccount
from eth_utils import is_address, to_checksum_address
from rich.table import Table

from chain.cli_options import DevOpt, JsonOpt, KeystoreOpt, NetworkOpt, RpcOpt, WalletOpt
from chain.cli_output import cli_console, print_table
from chain.errors import ConfigError

if TYPE_CHECKING:
    from chain.rewards import AccountRewards, RewardsReader
    from chain.target import ChainTarget

app = typer.Typer(
    help="Emission and escrow earnings: what is claimable, what was claimed; claim it.",
    no_args_is_help=True,
)
console = cli_console()

HotkeyOpt = Annotated[
    str | None, typer.Option("--hotkey", help="Sign with this hotkey of the wallet instead.")
]
AccountOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--hotkey-address",
        help="Only this hotkey, the owner, or a replaced (former) hotkey; repeatable.",
    ),
]
ColdkeyOpt = Annotated[
    str | None, typer.Option("--coldkey-address", help="Only hotkeys owned by this coldkey.")
]
NoEscrowOpt = Annotated[
    bool, typer.Option("--no-escrow", help="Claim emission only, not escrow earnings.")
]


@dataclass(frozen=True)
class _Ledgers:
    reader: RewardsReader
    network: str


def _open(network: str, rpc_url: str | None) -> tuple[ChainTarget, _Ledgers]:
    from chain.epoch import EpochClient
    from chain.escrow import EscrowClient
    from chain.metagraph import MetagraphReader
    from chain.rewards import RewardsReader
    from chain.target import open_target

    target = open_target(network, rpc_url)
    epoch = EpochClient(target.w3, target.address("YumaConsensus", None, flag="epoch"))
    metagraph = MetagraphReader(target.w3, target.address("Metagraph", None, flag="metagraph"))
    escrow_address = target.optional_address("PaymentEscrow")
    escrow = EscrowClient(target.w3, escrow_address) if escrow_address else None
    blocks = [c.block for c in target.manifest.contracts.values()]
    reader = RewardsReader(
        target.w3, epoch, metagraph, escrow, from_block=min(blocks) if blocks else 0
    )
    return target, _Ledgers(reader, target.network.name)


def _address(text: str, flag: str) -> str:
    if not is_address(text):
        raise ConfigError(f"{flag} {text!r} is not an address")
    return to_checksum_address(text)


def _select(
    reader: RewardsReader,
    block: int,
    rows: list[AccountRewards],
    accounts: list[str] | None,
    coldkey: str | None,
) -> list[AccountRewards]:
    """Rows for the named accounts, or those paying ``coldkey``; all rows when neither. A
    named address without a uid is read as a former hotkey (its replaced uid's earnings)."""
    if accounts:
        wanted = {_address(a, "--hotkey-address") for a in accounts}
        chosen = [r for r in rows if r.account in wanted]
        for address in sorted(wanted - {r.account for r in chosen}):
            former = reader.read_former(address, block)
            if not (former.claimable or former.claimed or former.escrow_claimed):
                raise ConfigError(
                    f"{address} holds no uid, is not the subnet owner and was never credited; "
                    "see `latent metagraph`"
                )
            chosen.append(former)
        return chosen
    if coldkey is not None:
        paid_to = _address(coldkey, "--coldkey-address")
        return [r for r in rows if r.recipient == paid_to]
    return rows


def _tokens(amount: int) -> str:
    from chain.token import format_tokens

    return format_tokens(amount, places=4)


@app.command("show")
def show(
    network: NetworkOpt = "localnet",
    rpc_url: RpcOpt = None,
    hotkey_address: AccountOpt = None,
    coldkey_address: ColdkeyOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Per hotkey and the subnet owner: last epoch's incentive and dividends, claimable and
    claimed emission, claimable and claimed escrow earnings."""
    _, ledgers = _open(network, rpc_url)
    snap = ledgers.reader.metagraph.snapshot()
    rows = _select(
        ledgers.reader, snap.block, ledgers.reader.read(snap), hotkey_address, coldkey_address
    )
    if json_out:
        print(
            json.dumps(
                {
                    "network": ledgers.network,
                    "block": snap.block,
                    "accounts": [r.to_json() for r in rows],
                    "claimable_wei": str(sum(r.claimable for r in rows)),
                    "escrow_claimable_wei": str(sum(r.escrow_claimable for r in rows)),
                },
                indent=2,
            )
        )
        return
    table = Table(
        "uid", "account", "paid to", "last epoch", "incentive", "dividends", "claimable",
        "claimed", "escrow claimable", "escrow claimed",
        title=f"rewards on {ledgers.network} at block {snap.block} (LAT)",
    )  # fmt: skip
    for r in rows:
        split = "" if r.split_exact else "~"
        table.add_row(
            str(r.uid) if r.uid is not None else r.role,
            r.account,
            r.recipient if r.recipient != r.account else "(itself)",
            _tokens(r.last_epoch),
            split + _tokens(r.incentive) if r.role == "hotkey" else "-",
            split + _tokens(r.dividends) if r.role == "hotkey" else "-",
            _tokens(r.claimable),
            _tokens(r.claimed),
            _tokens(r.escrow_claimable) if r.role != "owner" else "-",
            _tokens(r.escrow_claimed) if r.role != "owner" else "-",
        )
    print_table(table, console)
    console.print(
        f"claimable: {_tokens(sum(r.claimable for r in rows))} LAT emission, "
        f"{_tokens(sum(r.escrow_claimable for r in rows))} LAT escrow earnings "
        "(`latent rewards claim`; ~ = split apportioned by shares)"
    )


def _claimable_by(rows: list[AccountRewards], signer: str, owner: str) -> list[AccountRewards]:
    """Accounts whose emission ``signer`` may claim: itself (a hotkey, or the subnet owner)
    and every hotkey whose coldkey it is (the contract's rule)."""
    return [
        r
        for r in rows
        if r.account == signer
        or (r.role != "owner" and r.recipient == signer and r.account != owner)
    ]


@app.command("claim")
def claim(
    network: NetworkOpt = "localnet",
    rpc_url: RpcOpt = None,
    wallet: WalletOpt = None,
    hotkey: HotkeyOpt = None,
    keystore: KeystoreOpt = None,
    dev_account: DevOpt = None,
    hotkey_address: AccountOpt = None,
    no_escrow: NoEscrowOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Claim emission credited to the signer's hotkeys (the signer is the coldkey, the hotkey
    itself, or the subnet owner) and pay out their settled escrow earnings."""
    target, ledgers = _open(network, rpc_url)
    signer: LocalAccount = target.account(
        keystore=keystore, wallet=wallet, dev_account=dev_account, hotkey=hotkey
    )
    reader = ledgers.reader
    owner = reader.subnet_owner()
    snap = reader.metagraph.snapshot()
    rows = _select(reader, snap.block, reader.read(snap), hotkey_address, None)
    mine = _claimable_by(rows, signer.address, owner)
    if hotkey_address and len(mine) < len(rows):
        others = ", ".join(r.account for r in rows if r not in mine)
        raise ConfigError(
            f"{signer.address} is not the coldkey of {others} (nor that account itself); sign "
            "with the coldkey or the hotkey"
        )
    claims: list[dict[str, Any]] = []
    for r in mine:
        if r.claimable:
            amount = reader.epoch.claim(signer, r.account)
            claims.append(
                {"source": "emission", "account": r.account, "uid": r.uid, "role": r.role,
                 "paid_to": r.recipient, "amount_wei": str(amount)}
            )  # fmt: skip
        if r.escrow_channels and not no_escrow and reader.escrow is not None:
            receipt = reader.escrow.claim_earnings(list(r.escrow_channels), sender=signer)
            paid = sum(int(e["paid"]) for e in reader.escrow.events(receipt, "EarningsClaimed"))
            claims.append(
                {"source": "escrow", "account": r.account, "uid": r.uid, "role": r.role,
                 "paid_to": r.account, "amount_wei": str(paid)}
            )  # fmt: skip
    total = sum(int(c["amount_wei"]) for c in claims)
    if json_out:
        print(
            json.dumps(
                {"signer": signer.address, "claims": claims, "claimed_wei": str(total)}, indent=2
            )
        )
        return
    if not claims:
        console.print(f"nothing to claim for {signer.address} (claimed 0 LAT)")
        return
    for c in claims:
        who = f"uid {c['uid']}" if c["uid"] is not None else c["role"]
        console.print(
            f"claimed {_tokens(int(c['amount_wei']))} LAT {c['source']} of {who} "
            f"{c['account']} -> {c['paid_to']}"
        )
    console.print(f"total claimed: {_tokens(total)} LAT")
