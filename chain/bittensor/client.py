"""Talk to a subtensor node through ``substrate-interface`` (the I/O edge of the bridge).

:class:`SubtensorClient` takes a connected ``SubstrateInterface`` (or anything with the same
``rpc_request`` / ``query`` / ``query_map`` / ``compose_call`` / ``create_signed_extrinsic`` /
``submit_extrinsic`` methods); decoding is done by the pure functions in
``chain.bittensor.metagraph``. :func:`connect` builds the ``SubstrateInterface`` for a
network name or URL; only entry points (CLI, validator start-up) call it.

Weight posting (:meth:`SubtensorClient.post_weights`) reads the subnet at the head, refuses
early with the same typed errors the chain would give (not registered, rate limit, too few
weights, stale version key), then sends ``SubtensorModule.set_weights`` when commit-reveal is
off or ``commit_timelocked_weights`` (commit-reveal v4: the chain reveals by itself at the drand
round) when it is on, and maps any refusal to ``chain.bittensor.errors``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from chain.bittensor.errors import (
    NotRegistered,
    StaleVersionKey,
    SubtensorConnectionError,
    SubtensorError,
    WeightsRateLimited,
    from_receipt_error,
    from_rpc_error,
)
from chain.bittensor.metagraph import (
    HYPERPARAMETER_ITEMS,
    Hyperparameters,
    Metagraph,
    Neuron,
    decode_neurons_lite,
    hyperparameters_from_storage,
    weight_rows,
)
from chain.bittensor.ss58 import is_ss58
from chain.bittensor.timelock import (
    EpochScheduleState,
    encrypt_commit,
    legacy_first_reveal_block,
    pinned_schedule_state,
)
from chain.bittensor.weights import SubtensorWeights, conform

NETWORKS: dict[str, str] = {
    "finney": "wss://entrypoint-finney.opentensor.ai:443",
    "test": "wss://test.finney.opentensor.ai:443",
    "local": "ws://127.0.0.1:9944",
}
BLOCK_TIME_SECONDS = 12.0
PALLET = "SubtensorModule"


def network_url(network: str) -> str:
    """The endpoint for ``finney`` / ``test`` / ``local`` or a ``ws(s)://`` / ``http(s)://`` URL."""
    if network in NETWORKS:
        return NETWORKS[network]
    if network.split("://", 1)[0] in ("ws", "wss", "http", "https"):
        return network
    raise SubtensorConnectionError(
        f"unknown network {network!r}: use finney, test, local or a ws(s):// URL"
    )


def connect(network: str) -> Any:
    """A ``SubstrateInterface`` connected to ``network`` (name or URL)."""
    from substrateinterface import SubstrateInterface

    url = network_url(network)
    try:
        return SubstrateInterface(url=url, ss58_format=42)
    except Exception as exc:
        raise SubtensorConnectionError(
            f"cannot reach subtensor at {url}: {exc}; check --network and your connection"
        ) from exc


class Signer(Protocol):
    """An sr25519 signer (``substrateinterface.Keypair``)."""

    ss58_address: str
    public_key: bytes


@dataclass(frozen=True)
class PostedWeights:
    """What :meth:`SubtensorClient.post_weights` sent and where it landed."""

    mode: Literal["set_weights", "commit_timelocked_weights"]
    netuid: int
    uids: tuple[int, ...]
    values: tuple[int, ...]
    version_key: int
    extrinsic_hash: str | None
    block_hash: str | None
    reveal_round: int | None = None


class SubtensorClient:
    """Reads a subnet and posts weights on one subtensor node (substrate-interface)."""

    def __init__(self, substrate: Any, *, block_time: float = BLOCK_TIME_SECONDS) -> None:
        self.substrate = substrate
        self.block_time = block_time

    # ------------------------------------------------------------------ reads

    def head(self) -> tuple[int, str]:
        """The head block's number and hash."""
        block_hash = self._rpc("chain_getHead", [])
        header = self._rpc("chain_getHeader", [block_hash])
        return int(header["number"], 16), str(block_hash)

    def neurons(self, netuid: int, block_hash: str | None = None) -> list[Neuron]:
        """Every uid of ``netuid`` (``NeuronInfoRuntimeApi_get_neurons_lite``)."""
        params = int(netuid).to_bytes(2, "little").hex()
        result = self._rpc(
            "state_call",
            ["NeuronInfoRuntimeApi_get_neurons_lite", params, block_hash]
            if block_hash
            else ["NeuronInfoRuntimeApi_get_neurons_lite", params],
        )
        if result is None:
            raise SubtensorError(f"the node returned nothing for netuid {netuid}: check --netuid")
        return decode_neurons_lite(bytes.fromhex(str(result).removeprefix("0x")))

    def _storage(self, item: str, params: list[Any], block_hash: str | None) -> Any:
        try:
            value = self.substrate.query(PALLET, item, params, block_hash=block_hash)
        except Exception as exc:
            raise SubtensorError(f"reading SubtensorModule.{item} failed: {exc}") from exc
        return getattr(value, "value", value)

    def has_storage(self, item: str, block_hash: str | None = None) -> bool:
        """Whether the node's runtime defines ``SubtensorModule.<item>``."""
        try:
            self.substrate.init_runtime(block_hash=block_hash)
            return self.substrate.get_metadata_storage_function(PALLET, item) is not None
        except Exception:  # noqa: BLE001
            return False

    def hyperparameters(self, netuid: int, block_hash: str | None = None) -> Hyperparameters:
        """The weight-related hyperparameters of ``netuid``."""
        values = {item: self._storage(item, [netuid], block_hash) for item in HYPERPARAMETER_ITEMS}
        values["CommitRevealWeightsVersion"] = self._storage(
            "CommitRevealWeightsVersion", [], block_hash
        )
        return hyperparameters_from_storage(netuid, values)

    def weights(
        self, netuid: int, block_hash: str | None = None
    ) -> dict[int, tuple[tuple[int, int], ...]]:
        """Every validator's stored weight row on ``netuid`` (uid -> [(dest, u16)])."""
        result = self.substrate.query_map(PALLET, "Weights", [netuid], block_hash=block_hash)
        rows = []
        for key, value in result:
            uid = getattr(key, "value", key)
            row = getattr(value, "value", value) or []
            rows.append((int(uid), [(int(d), int(v)) for d, v in row]))
        return weight_rows(rows)

    def metagraph(self, netuid: int, *, with_weights: bool = False) -> Metagraph:
        """A snapshot of ``netuid`` at the head block."""
        block, block_hash = self.head()
        return Metagraph(
            netuid=netuid,
            block=block,
            neurons=tuple(self.neurons(netuid, block_hash)),
            weights=self.weights(netuid, block_hash) if with_weights else {},
            hyperparameters=self.hyperparameters(netuid, block_hash),
        )

    def schedule_state(self, netuid: int, block: int, block_hash: str) -> EpochScheduleState | None:
        """The stateful epoch schedule, or None on runtimes that predate it."""
        if not self.has_storage("LastEpochBlock", block_hash):
            return None

        def num(item: str) -> int:
            return int(self._storage(item, [netuid], block_hash) or 0)

        return EpochScheduleState(
            last_epoch_block=num("LastEpochBlock"),
            pending_epoch_at=num("PendingEpochAt"),
            subnet_epoch_index=num("SubnetEpochIndex"),
            tempo=num("Tempo"),
            blocks_since_last_step=num("BlocksSinceLastStep"),
            current_block=block,
        )

    # ------------------------------------------------------------------ calls

    def set_weights_call(self, netuid: int, weights: SubtensorWeights, version_key: int) -> Any:
        """``SubtensorModule.set_weights(netuid, dests, weights, version_key)`` as a composed call."""
        return self._compose(
            "set_weights",
            {
                "netuid": netuid,
                "dests": list(weights.uids),
                "weights": list(weights.values),
                "version_key": version_key,
            },
        )

    def commit_timelocked_call(
        self, netuid: int, commit: bytes, reveal_round: int, commit_reveal_version: int
    ) -> Any:
        """``SubtensorModule.commit_timelocked_weights`` as a composed call."""
        return self._compose(
            "commit_timelocked_weights",
            {
                "netuid": netuid,
                "commit": "0x" + bytes(commit).hex(),
                "reveal_round": reveal_round,
                "commit_reveal_version": commit_reveal_version,
            },
        )

    def _compose(self, function: str, params: dict[str, Any]) -> Any:
        try:
            return self.substrate.compose_call(
                call_module=PALLET, call_function=function, call_params=params
            )
        except Exception as exc:
            raise SubtensorError(
                f"the node's runtime has no usable SubtensorModule.{function} ({exc}): "
                "upgrade Latent to match the chain"
            ) from exc

    def submit(
        self, call: Any, signer: Any, *, wait_for_inclusion: bool = True
    ) -> tuple[str | None, str | None]:
        """Sign with ``signer`` (sr25519 hotkey), submit, and map any refusal to a typed error."""
        from substrateinterface.exceptions import SubstrateRequestException

        try:
            extrinsic = self.substrate.create_signed_extrinsic(
                call=call, keypair=signer, era={"period": 64}
            )
            receipt = self.substrate.submit_extrinsic(
                extrinsic, wait_for_inclusion=wait_for_inclusion
            )
        except SubstrateRequestException as exc:
            raise _rpc_error(exc) from exc
        if wait_for_inclusion and not receipt.is_success:
            raise from_receipt_error(receipt.error_message)
        return receipt.extrinsic_hash, getattr(receipt, "block_hash", None)

    # ------------------------------------------------------------------ weights

    def post_weights(
        self,
        signer: Any,
        netuid: int,
        weights: Mapping[int, float],
        *,
        version_key: int | None = None,
        wait_for_inclusion: bool = True,
    ) -> PostedWeights:
        """Post ``weights`` (by uid) for ``signer``'s hotkey, plain or timelocked as the subnet runs."""
        block, block_hash = self.head()
        hyper = self.hyperparameters(netuid, block_hash)
        uid = self._storage("Uids", [netuid, signer.ss58_address], block_hash)
        if uid is None:
            raise NotRegistered(
                f"hotkey {signer.ss58_address} is not registered on subnet {netuid}: register it "
                "(btcli subnets register) or check --netuid / --hotkey",
                chain_error="HotKeyNotRegisteredInSubNet",
            )
        uid = int(uid)
        check_rate_limit(self._storage("LastUpdate", [netuid], block_hash), uid, block, hyper)
        key = hyper.weights_version_key if version_key is None else int(version_key)
        if key < hyper.weights_version_key:
            raise StaleVersionKey(
                f"version key {key} is older than subnet {netuid}'s {hyper.weights_version_key}: "
                "pass the current --version-key or upgrade the validator software",
                chain_error="IncorrectWeightVersionKey",
            )
        vector = conform(weights, hyper, own_uid=uid)
        if not hyper.commit_reveal_enabled:
            call = self.set_weights_call(netuid, vector, key)
            ext, blk = self.submit(call, signer, wait_for_inclusion=wait_for_inclusion)
            return PostedWeights("set_weights", netuid, vector.uids, vector.values, key, ext, blk)
        state = self.schedule_state(netuid, block, block_hash)
        if state is None:
            first = legacy_first_reveal_block(
                netuid, hyper.tempo, block, hyper.reveal_period_epochs
            )
            state, period = pinned_schedule_state(block, first), 1
        else:
            period = hyper.reveal_period_epochs
        commit, round_number = encrypt_commit(
            bytes(signer.public_key),
            vector.uids,
            vector.values,
            key,
            state,
            period,
            self.block_time,
        )
        call = self.commit_timelocked_call(
            netuid, commit, round_number, hyper.commit_reveal_version
        )
        ext, blk = self.submit(call, signer, wait_for_inclusion=wait_for_inclusion)
        return PostedWeights(
            "commit_timelocked_weights",
            netuid,
            vector.uids,
            vector.values,
            key,
            ext,
            blk,
            round_number,
        )

    # ------------------------------------------------------------------ plumbing

    def _rpc(self, method: str, params: list[Any]) -> Any:
        try:
            reply = self.substrate.rpc_request(method, params)
        except Exception as exc:
            raise SubtensorConnectionError(f"{method} failed: {exc}; check --network") from exc
        if "error" in reply:
            raise SubtensorError(f"{method} failed: {reply['error']}")
        return reply.get("result")


def check_rate_limit(last_update: Any, uid: int, block: int, hyper: Hyperparameters) -> None:
    """Refuse (:class:`WeightsRateLimited`) when ``uid`` set weights less than the limit ago."""
    limit = hyper.weights_rate_limit
    rows = list(last_update or [])
    if not limit or uid >= len(rows) or int(rows[uid]) == 0:
        return
    since = block - int(rows[uid])
    if since < limit:
        raise WeightsRateLimited(
            f"uid {uid} set weights {since} blocks ago; subnet {hyper.netuid} allows one update "
            f"every {limit} blocks: retry in {limit - since} blocks",
            chain_error="SettingWeightsTooFast",
        )


def _rpc_error(exc: Exception) -> SubtensorError:
    arg = exc.args[0] if exc.args else str(exc)
    if isinstance(arg, dict):
        return from_rpc_error(arg)
    return from_rpc_error(str(arg))


def require_ss58(hotkey: str) -> str:
    """``hotkey`` if it is a valid SS58 address, else a clear error."""
    if not is_ss58(hotkey):
        raise SubtensorError(f"{hotkey!r} is not an SS58 hotkey address")
    return hotkey
