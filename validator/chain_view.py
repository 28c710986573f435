"""The validator's view of the Latent chain: metagraph reads, weight duties, the keeper."""

from __future__ import annotations

from eth_account.signers.local import LocalAccount
from web3 import Web3

from chain.epoch import EpochClient
from chain.metagraph import Metagraph, MetagraphClient
from validator.chain_duties import EpochKeeper, WeightSetter
from validator.state import ValidatorState

__all__ = ["LatentChain", "measure_block_time"]


def measure_block_time(w3: Web3, span: int = 10) -> float:
    """Seconds per block over the last ``span`` blocks (1.0 on a young chain)."""
    latest = w3.eth.get_block("latest")
    number = int(latest["number"])
    if number < span:
        return 1.0
    earlier = w3.eth.get_block(number - span)
    seconds = (int(latest["timestamp"]) - int(earlier["timestamp"])) / span
    return min(30.0, max(0.25, seconds))


class LatentChain:
    """``validator.service.ChainView`` over the Latent contracts (blocking web3 calls)."""

    def __init__(
        self,
        w3: Web3,
        metagraph: MetagraphClient,
        epoch: EpochClient | None,
        hotkey: LocalAccount,
        state: ValidatorState,
        *,
        state_path: str,
        run_epochs: bool = True,
    ) -> None:
        self.w3 = w3
        self.metagraph = metagraph
        self.hotkey: str = str(hotkey.address)
        self.setter = WeightSetter(metagraph, hotkey, state, state_path=state_path)
        self.keeper = (
            EpochKeeper(epoch, hotkey, state=state) if (epoch is not None and run_epochs) else None
        )
        self._block_time = measure_block_time(w3)

    def snapshot(self) -> Metagraph:
        return self.metagraph.snapshot()

    def block_number(self) -> int:
        return int(self.w3.eth.block_number)

    def block_time_s(self) -> float:
        return self._block_time

    def duties(self, block: int, weights: dict[int, float]) -> list[str]:
        lines = []
        if self.keeper is not None:
            receipts = self.keeper.run_if_due(block)
            if receipts:
                gas = sum(int(r["gasUsed"]) for r in receipts)
                lines.append(f"epoch ran at block {block}: {len(receipts)} tx, {gas:,} gas")
        if weights:
            receipt = self.setter.step(block, weights)
            if receipt is not None:
                lines.append(f"weights {self.setter.last_action} at block {block}")
        return lines

    def next_duty_block(self, block: int) -> int:
        candidates = [self.setter.next_action_block(block)]
        if self.keeper is not None:
            candidates.append(self.keeper.next_action_block(block))
        return max(block, min(candidates))
