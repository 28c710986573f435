"""A small, complete subnet on anvil for the dashboard tests: the deployment plan (token,
metagraph, escrow, epoch), five neurons (two validators with stake and weights, three
miners), three completed epochs and two escrow channels with settled vouchers.

Everything that depends on the registration API lives in :func:`build_demo_subnet` (through
``latent.gas.yuma.Subnet.register``), so a change to ``register`` is adapted in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from eth_account.signers.local import LocalAccount
from web3 import Web3

from chain.client import Contract
from chain.epoch import EpochClient
from chain.escrow import EscrowClient
from chain.metagraph import MetagraphClient
from chain.networks import Network, get_network
from chain.vouchers import sign_voucher
from deploy.deployer import deploy_plan
from latent.gas.yuma import Subnet

TOKEN = 10**18
VALIDATORS = (0, 1)
MINERS = (2, 3, 4)
#: Hyperparameters that make a demo fast: short tempo, cheap registration, no rate limits.
DEMO_PARAMS = {
    "tempo": 10,
    "immunity_period": 0,
    "weights_rate_limit": 0,
    "reveal_period": 1,
    "min_allowed_weights": 0,
    "burn_increase_mult": 10_000,
    "min_burn": 1,
    "max_burn": 10**15,
}
#: Validator uid -> {miner uid: weight} for each of the epochs after the first.
WEIGHTS: tuple[Mapping[int, Mapping[int, int]], ...] = (
    {0: {2: 65_535, 3: 30_000, 4: 10_000}, 1: {2: 60_000, 3: 40_000, 4: 5_000}},
    {0: {2: 50_000, 3: 65_535, 4: 20_000}, 1: {2: 45_000, 3: 65_535, 4: 25_000}},
)


@dataclass(frozen=True)
class DemoSubnet:
    """What the dashboard needs to serve the demo, and what the tests compare against."""

    w3: Web3
    metagraph: str
    epoch: str
    escrow: str
    from_block: int
    hotkeys: tuple[str, ...]
    #: channel id (0x hex) -> (miner uid, deposit, settled) in base units
    channels: dict[str, tuple[int, int, int]]
    epochs: int
    subnet: Subnet
    keeper: LocalAccount

    def set_endpoints(self, endpoints: Mapping[int, str]) -> None:
        """Publish miner endpoints (uid -> URL) on the metagraph."""
        for uid, url in endpoints.items():
            self.subnet.metagraph.set_endpoint(self.subnet.hotkeys[uid], url)

    def run_epoch(self) -> None:
        """Mine to the next epoch and run it."""
        self.subnet.mine_to_next_epoch()
        self.subnet.epoch.run_epoch_until_done(self.keeper)


def demo_network(w3: Web3) -> Network:
    net = get_network("localnet")
    return Network(net.name, int(w3.eth.chain_id), "unused", net.rpc_env, True, DEMO_PARAMS)


def build_demo_subnet(w3: Web3, accounts: list[LocalAccount], manifest_dir: Path) -> DemoSubnet:
    """Deploy and populate the demo subnet (miners publish no endpoint yet)."""
    owner, coldkey, keeper, renter = accounts[0], accounts[1], accounts[2], accounts[3]
    start = w3.eth.block_number + 1
    manifest, _ = deploy_plan(w3, demo_network(w3), owner, manifest_dir=manifest_dir)
    token = Contract(w3, "SubnetToken", manifest.address("SubnetToken"))
    subnet = Subnet(
        w3,
        owner,
        coldkey,
        token,
        MetagraphClient(w3, manifest.address("Metagraph")),
        EpochClient(w3, manifest.address("YumaConsensus")),
    )
    subnet.register(len(VALIDATORS) + len(MINERS))
    subnet.stake(0, 3_000 * TOKEN)
    subnet.stake(1, 1_000 * TOKEN)

    # The first epoch hands out validator permits; the next ones score the weights.
    subnet.mine_to_next_epoch()
    subnet.epoch.run_epoch_until_done(keeper)
    for rows in WEIGHTS:
        subnet.set_weights(rows)
        subnet.mine_to_next_epoch()
        subnet.epoch.run_epoch_until_done(keeper)

    escrow = EscrowClient(w3, manifest.address("PaymentEscrow"))
    token.transact("approve", escrow.address, 2**256 - 1, sender=renter)
    channels: dict[str, tuple[int, int, int]] = {}
    for uid, deposit, vouchers in ((2, 50 * TOKEN, (15, 40)), (3, 20 * TOKEN, (5,))):
        miner = subnet.hotkeys[uid]
        cid, _ = escrow.open(
            miner.address, token.address, bytes([uid]) * 32, deposit, sender=renter
        )
        for tenths in vouchers:
            amount = tenths * TOKEN // 10
            voucher = sign_voucher(
                renter,
                escrow=escrow.address,
                chain_id=int(w3.eth.chain_id),
                channel_id=cid,
                cumulative_amount=amount,
            )
            escrow.settle(voucher, sender=miner)
        channels["0x" + cid.hex()] = (uid, deposit, vouchers[-1] * TOKEN // 10)
    return DemoSubnet(
        w3=w3,
        metagraph=subnet.metagraph.address,
        epoch=subnet.epoch.address,
        escrow=escrow.address,
        from_block=start,
        hotkeys=tuple(hk.address for hk in subnet.hotkeys),
        channels=channels,
        epochs=1 + len(WEIGHTS),
        subnet=subnet,
        keeper=keeper,
    )
