"""What an account has earned on the subnet, what it can claim now and what it already claimed.

Two ledgers pay out:

- **Emission** (``YumaConsensus``): each epoch credits every uid's emission (miner incentive
  plus validator dividends) to its hotkey and the subnet owner's share to the owner.
  ``claimable(account)`` is the exact amount a ``claim`` pays now (to the hotkey's coldkey);
  ``RewardsClaimed`` logs give what was claimed before. The contract keeps one balance per
  account, not one per source, so the split of the *last epoch's* credit into incentive and
  dividends is derived: exact when the uid earned one way only (the usual case: a uid is a
  miner or a validator), otherwise apportioned by its recorded u16 incentive share of the
  miner pool (``split_exact`` is then false); see :func:`split_emission`.
- **Escrow earnings** (``PaymentEscrow``): vouchers a miner settled are credited per channel
  and paid to the miner (the hotkey) by ``claimEarnings``, which anyone may call. Claimable =
  ``settled - claimed`` of each channel net of its protocol fee; ``EarningsClaimed`` logs give
  what was paid before. Channels are found from ``ChannelOpened`` logs (the miner is indexed).

Amounts are token base units (wei); display is the caller's business (``chain.token``).
Logs are read in one request per event from the deployment's first block, which a local or
test node serves; a node that caps log ranges makes these reads fail with its own message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_utils import to_checksum_address
from web3 import Web3

from chain.epoch import EpochClient
from chain.escrow import EscrowClient, split_claim
from chain.metagraph import Metagraph, MetagraphReader
from chain.yuma.fixed import MINER_PERCENT


@dataclass(frozen=True)
class AccountRewards:
    """One hotkey's (or the subnet owner's) rewards at a block, in base units."""

    account: str
    #: ``"hotkey"`` (a registered uid), ``"owner"`` (the subnet owner's share) or ``"former"``
    #: (a hotkey whose uid was replaced: what it earned there stays claimable).
    role: str
    uid: int | None
    #: Who a claim pays: the hotkey's coldkey, or the owner itself.
    recipient: str
    #: Emission credited and not yet claimed (``YumaConsensus.claimable``).
    claimable: int
    #: Emission claimed so far (sum of ``RewardsClaimed``).
    claimed: int
    #: Credited by the last completed epoch (the owner: its share of that epoch).
    last_epoch: int
    #: The last epoch's credit as miner incentive and as validator dividends.
    incentive: int
    dividends: int
    #: False when the incentive/dividends split was apportioned (the uid earned both ways).
    split_exact: bool
    #: Escrow earnings settled and not yet paid out, net of the protocol fee.
    escrow_claimable: int
    #: Escrow earnings paid out so far (sum of ``EarningsClaimed.paid``).
    escrow_claimed: int
    #: Channels holding ``escrow_claimable`` (what ``claimEarnings`` is called with).
    escrow_channels: tuple[bytes, ...]

    def to_json(self) -> dict[str, Any]:
        """JSON form: amounts as decimal strings of base units in ``*_wei`` fields."""
        return {
            "account": self.account,
            "role": self.role,
            "uid": self.uid,
            "recipient": self.recipient,
            "claimable_wei": str(self.claimable),
            "claimed_wei": str(self.claimed),
            "last_epoch_wei": str(self.last_epoch),
            "incentive_wei": str(self.incentive),
            "dividends_wei": str(self.dividends),
            "split_exact": self.split_exact,
            "escrow_claimable_wei": str(self.escrow_claimable),
            "escrow_claimed_wei": str(self.escrow_claimed),
            "escrow_channels": ["0x" + cid.hex() for cid in self.escrow_channels],
        }


def split_emission(
    emission: int, incentive_u16: int, validator_permit: bool, miner_pool: int
) -> tuple[int, int, bool]:
    """``(incentive part, dividends part, exact)`` of one uid's epoch emission.

    Exact when the uid earned one way only: no incentive (all of it came from the validator
    pool: dividends, or stake while no validator earned dividends) or no validator permit (all
    of it is incentive). A uid with both is apportioned: its incentive share of the miner
    pool (the share is recorded as a rounded u16, so the split is too), the rest dividends.
    """
    if incentive_u16 == 0 or miner_pool == 0:
        return 0, emission, True
    if not validator_permit:
        return emission, 0, True
    incentive = min(emission, incentive_u16 * miner_pool // 65535)
    return incentive, emission - incentive, False


class RewardsReader:
    """Reads both ledgers for the accounts of one metagraph snapshot."""

    def __init__(
        self,
        w3: Web3,
        epoch: EpochClient,
        metagraph: MetagraphReader,
        escrow: EscrowClient | None,
        *,
        from_block: int = 0,
    ) -> None:
        self.w3 = w3
        self.epoch = epoch
        self.metagraph = metagraph
        self.escrow = escrow
        self.from_block = from_block

    def subnet_owner(self) -> str:
        return to_checksum_address(self.metagraph.contract.call("owner"))

    def _pools(self, block: int) -> tuple[int, int]:
        """``(minted + fees, miner pool)`` of the last completed epoch (zeros before one)."""
        last = self.epoch.last_epoch_block(block)
        if last == 0:
            return 0, 0
        started = self.epoch.contract.logs("EpochStarted", last, block, epochBlock=last)
        if not started:
            return 0, 0
        minted, fees = int(started[-1]["minted"]), int(started[-1]["fees"])
        return minted + fees, minted * MINER_PERCENT // 100

    def _claimed(self, event: str, block: int, **indexed: Any) -> list[dict[str, Any]]:
        return self.epoch.contract.logs(event, self.from_block, block, **indexed)

    def _escrow(self, miner: str, block: int) -> tuple[int, int, tuple[bytes, ...]]:
        if self.escrow is None:
            return 0, 0, ()
        opened = self.escrow.logs("ChannelOpened", self.from_block, block, miner=miner)
        claimable = 0
        channels: list[bytes] = []
        for log in opened:
            channel = self.escrow.find_channel(bytes(log["channelId"]))
            if channel is None or channel.unclaimed == 0:
                continue
            net, _fee = split_claim(channel.claimed, channel.settled, channel.fee_bps)
            claimable += net
            channels.append(channel.channel_id)
        paid = self.escrow.logs("EarningsClaimed", self.from_block, block, miner=miner)
        return claimable, sum(int(log["paid"]) for log in paid), tuple(channels)

    def read(self, snap: Metagraph | None = None) -> list[AccountRewards]:
        """Every uid of ``snap`` (default: a fresh snapshot) and the subnet owner."""
        snap = snap or self.metagraph.snapshot()
        block = snap.block
        distributed, miner_pool = self._pools(block)
        out: list[AccountRewards] = []
        for info in snap.neurons():
            incentive, dividends, exact = split_emission(
                info.emission, info.incentive, info.validator_permit, miner_pool
            )
            escrow_claimable, escrow_claimed, channels = self._escrow(info.hotkey, block)
            out.append(
                AccountRewards(
                    account=info.hotkey,
                    role="hotkey",
                    uid=info.uid,
                    recipient=info.coldkey,
                    claimable=self._claimable(info.hotkey, block),
                    claimed=self._claimed_total(info.hotkey, block),
                    last_epoch=info.emission,
                    incentive=incentive,
                    dividends=dividends,
                    split_exact=exact,
                    escrow_claimable=escrow_claimable,
                    escrow_claimed=escrow_claimed,
                    escrow_channels=channels,
                )
            )
        owner = self.subnet_owner()
        owner_share = max(distributed - sum(snap.emission), 0) if distributed else 0
        out.append(
            AccountRewards(
                account=owner,
                role="owner",
                uid=None,
                recipient=owner,
                # An owner that also holds a uid is listed twice; both rows count its uid.
                claimable=self._claimable(owner, block),
                claimed=self._claimed_total(owner, block),
                last_epoch=owner_share,
                incentive=0,
                dividends=0,
                split_exact=True,
                escrow_claimable=0,
                escrow_claimed=0,
                escrow_channels=(),
            )
        )
        return out

    def read_former(self, account: str, block: int) -> AccountRewards:
        """An address that holds no uid now (a replaced hotkey): what it can still claim and
        claimed; it is paid to its recorded coldkey, or to itself when it has none."""
        account = to_checksum_address(account)
        coldkey = to_checksum_address(self.metagraph.contract.call("hotkeyOwner", account))
        escrow_claimable, escrow_claimed, channels = self._escrow(account, block)
        return AccountRewards(
            account=account,
            role="former",
            uid=None,
            recipient=account if int(coldkey, 16) == 0 else coldkey,
            claimable=self._claimable(account, block),
            claimed=self._claimed_total(account, block),
            last_epoch=0,
            incentive=0,
            dividends=0,
            split_exact=True,
            escrow_claimable=escrow_claimable,
            escrow_claimed=escrow_claimed,
            escrow_channels=channels,
        )

    def _claimable(self, account: str, block: int) -> int:
        return int(self.epoch.contract.call("claimable", account, block=block))

    def _claimed_total(self, account: str, block: int) -> int:
        logs = self._claimed("RewardsClaimed", block, account=account)
        return sum(int(log["amount"]) for log in logs)
