"""What a validator loop calls to post its scores to a subtensor subnet.

``SubtensorWeightsTarget(client, signer, netuid).post_weights(scores)`` takes scores keyed by
hotkey (SS58) — or by uid — reads the metagraph at the head, maps each hotkey to the uid it
holds *now* (scores of hotkeys that left are dropped, so a recycled uid never inherits them),
and posts through :meth:`SubtensorClient.post_weights` (plain or timelocked as the subnet
runs). Errors are the typed ``chain.bittensor.errors`` classes; a loop catches
``SubtensorError`` per iteration. The calls block on the node (substrate-interface is
synchronous): an asyncio validator runs them with ``asyncio.to_thread``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chain.bittensor.client import PostedWeights, SubtensorClient
from chain.bittensor.errors import WeightsRejected
from chain.bittensor.metagraph import Metagraph
from chain.bittensor.weights import scores_to_uid_weights


class SubtensorWeightsTarget:
    """Posts one validator hotkey's weights to one subnet."""

    def __init__(
        self,
        client: SubtensorClient,
        signer: Any,
        netuid: int,
        *,
        version_key: int | None = None,
    ) -> None:
        self.client = client
        self.signer = signer
        self.netuid = netuid
        self.version_key = version_key

    @property
    def hotkey(self) -> str:
        return str(self.signer.ss58_address)

    def metagraph(self) -> Metagraph:
        return self.client.metagraph(self.netuid)

    def post_weights(
        self, scores: Mapping[str | int, float], *, metagraph: Metagraph | None = None
    ) -> PostedWeights:
        """Post ``scores`` (hotkey or uid -> score >= 0); returns what was sent."""
        graph = metagraph if metagraph is not None else self.metagraph()
        weights = scores_to_uid_weights(scores, graph)
        if not any(v > 0 for v in weights.values()):
            raise WeightsRejected(
                f"no registered miner of subnet {self.netuid} has a positive score: "
                "nothing to post (check that the validator reached any miner)"
            )
        return self.client.post_weights(
            self.signer, self.netuid, weights, version_key=self.version_key
        )
