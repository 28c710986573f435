"""A subtensor subnet's metagraph and weight hyperparameters as plain, frozen data (pure).

Decoders take bytes or already-decoded storage values and return dataclasses; nothing here
talks to a node (``chain.bittensor.client`` does). State is keyed by hotkey (SS58):
``Metagraph.by_hotkey`` / ``uid_of`` are how a validator loop finds a miner, because a uid
can be handed to another hotkey between two reads.

``NeuronInfoLite`` (runtime API ``NeuronInfoRuntimeApi_get_neurons_lite(netuid)``), as the
runtime metadata describes it (checked against the SDK's metadata-driven decoder on a
recorded finney response, ``tests/bittensor/data``)::

    hotkey: AccountId32, coldkey: AccountId32, uid: Compact<u16>, netuid: Compact<u16>,
    active: bool,
    axon_info: {block: u64, version: u32, ip: u128, port: u16, ip_type: u8, protocol: u8,
                placeholder1: u8, placeholder2: u8},
    prometheus_info: {block: u64, version: u32, ip: u128, port: u16, ip_type: u8},
    stake: Vec<(AccountId32, Compact<u64>)>,
    rank, emission (Compact<u64>), incentive, consensus, trust, validator_trust, dividends:
    Compact<u16> (emission Compact<u64>), last_update: Compact<u64>, validator_permit: bool,
    pruning_score: Compact<u16>
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from chain.bittensor.scale import ScaleDecodeError, ScaleReader
from chain.bittensor.ss58 import account_id_to_ss58

U16_MAX = 65_535
RAO_PER_TAO = 1_000_000_000


@dataclass(frozen=True)
class Axon:
    """Where a neuron serves (``serve_axon``); ``ip`` is text, ``port`` 0 when never served."""

    ip: str
    port: int
    ip_type: int
    version: int
    protocol: int
    block: int

    @property
    def served(self) -> bool:
        return self.port != 0 and self.ip not in ("0.0.0.0", "::")


@dataclass(frozen=True)
class Neuron:
    """One uid of a subnet. Fractions are u16 on chain and shown here divided by 65535."""

    uid: int
    hotkey: str
    coldkey: str
    active: bool
    axon: Axon
    stake_rao: int  # alpha stake on this hotkey, all coldkeys together (rao units)
    rank: float
    emission_rao: int
    incentive: float
    consensus: float
    trust: float
    validator_trust: float
    dividends: float
    last_update: int
    validator_permit: bool
    pruning_score: int


@dataclass(frozen=True)
class Hyperparameters:
    """The hyperparameters a validator must respect when it posts weights.

    ``max_weight_limit`` is u16 (65535 = no limit): the largest weight may be at most
    ``max_weight_limit / 65535`` of the row sum. ``commit_reveal_version`` is the chain-wide
    version a timelocked commit must carry. The epoch-schedule fields feed the reveal-round
    prediction (``chain.bittensor.timelock``).
    """

    netuid: int
    tempo: int
    weights_rate_limit: int
    commit_reveal_enabled: bool
    commit_reveal_version: int
    reveal_period_epochs: int
    weights_version_key: int
    min_allowed_weights: int
    max_weight_limit: int
    max_allowed_uids: int = 0


@dataclass(frozen=True)
class Metagraph:
    """A snapshot of one subnet at one block."""

    netuid: int
    block: int
    neurons: tuple[Neuron, ...]
    weights: Mapping[int, tuple[tuple[int, int], ...]] = field(default_factory=dict)
    hyperparameters: Hyperparameters | None = None

    @property
    def by_hotkey(self) -> dict[str, Neuron]:
        return {n.hotkey: n for n in self.neurons}

    def uid_of(self, hotkey: str) -> int | None:
        """The uid ``hotkey`` holds in this snapshot, or None when it is not registered."""
        neuron = self.by_hotkey.get(hotkey)
        return None if neuron is None else neuron.uid

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-serialisable data (for ``--json``)."""
        return {
            "netuid": self.netuid,
            "block": self.block,
            "hyperparameters": None
            if self.hyperparameters is None
            else asdict(self.hyperparameters),
            "neurons": [asdict(n) for n in self.neurons],
            "weights": {str(uid): [list(e) for e in row] for uid, row in self.weights.items()},
        }


def ip_text(ip: int, ip_type: int) -> str:
    """An axon's u128 ``ip`` as text (IPv4 unless ``ip_type`` is 6 or it does not fit)."""
    if ip_type == 6:
        return str(ipaddress.IPv6Address(ip))
    if ip >= 1 << 32:
        return str(ipaddress.IPv6Address(ip))
    return str(ipaddress.IPv4Address(ip))


def _read_axon(r: ScaleReader) -> Axon:
    block, version, ip, port, ip_type, protocol = (
        r.u64(),
        r.u32(),
        r.u128(),
        r.u16(),
        r.u8(),
        r.u8(),
    )
    r.take(2)  # placeholder1, placeholder2
    return Axon(
        ip=ip_text(ip, ip_type),
        port=port,
        ip_type=ip_type,
        version=version,
        protocol=protocol,
        block=block,
    )


def _skip_prometheus(r: ScaleReader) -> None:
    r.take(8 + 4 + 16 + 2 + 1)


def _read_neuron_lite(r: ScaleReader) -> Neuron:
    hotkey = account_id_to_ss58(r.account_id())
    coldkey = account_id_to_ss58(r.account_id())
    uid = r.compact()
    r.compact()  # netuid
    active = r.boolean()
    axon = _read_axon(r)
    _skip_prometheus(r)
    stake = sum(amount for _, amount in r.vec(lambda x: (x.account_id(), x.compact())))
    rank = r.compact()
    emission = r.compact()
    incentive, consensus, trust, vtrust, dividends = (r.compact() for _ in range(5))
    last_update = r.compact()
    permit = r.boolean()
    pruning = r.compact()
    return Neuron(
        uid=uid,
        hotkey=hotkey,
        coldkey=coldkey,
        active=active,
        axon=axon,
        stake_rao=stake,
        rank=rank / U16_MAX,
        emission_rao=emission,
        incentive=incentive / U16_MAX,
        consensus=consensus / U16_MAX,
        trust=trust / U16_MAX,
        validator_trust=vtrust / U16_MAX,
        dividends=dividends / U16_MAX,
        last_update=last_update,
        validator_permit=permit,
        pruning_score=pruning,
    )


def decode_neurons_lite(data: bytes) -> list[Neuron]:
    """Decode the SCALE result of ``NeuronInfoRuntimeApi_get_neurons_lite``: ``Vec<NeuronInfoLite>``."""
    r = ScaleReader(data)
    neurons = r.vec(_read_neuron_lite)
    if not r.at_end():
        raise ScaleDecodeError(
            f"{len(data) - r.pos} bytes left after the neurons: the node's NeuronInfoLite "
            "layout differs from what Latent decodes (upgrade Latent)"
        )
    return sorted(neurons, key=lambda n: n.uid)


def weight_rows(
    rows: Iterable[tuple[int, Iterable[tuple[int, int]]]],
) -> dict[int, tuple[tuple[int, int], ...]]:
    """``SubtensorModule.Weights[netuid]`` entries (uid -> [(dest uid, u16)]) as a sorted map.

    Empty rows are dropped; entries are sorted by destination uid.
    """
    out: dict[int, tuple[tuple[int, int], ...]] = {}
    for uid, row in rows:
        entries = tuple(sorted((int(d), int(v)) for d, v in row))
        if entries:
            out[int(uid)] = entries
    return dict(sorted(out.items()))


def hyperparameters_from_storage(netuid: int, values: Mapping[str, Any]) -> Hyperparameters:
    """Build :class:`Hyperparameters` from ``SubtensorModule`` storage values by item name.

    Missing items take the pallet's defaults where it has one that matters (commit-reveal
    version 4, no max-weight limit).
    """

    def num(name: str, default: int = 0) -> int:
        value = values.get(name)
        return default if value is None else int(value)

    return Hyperparameters(
        netuid=netuid,
        tempo=num("Tempo"),
        weights_rate_limit=num("WeightsSetRateLimit"),
        commit_reveal_enabled=bool(values.get("CommitRevealWeightsEnabled", False)),
        commit_reveal_version=num("CommitRevealWeightsVersion", 4),
        reveal_period_epochs=num("RevealPeriodEpochs", 1),
        weights_version_key=num("WeightsVersionKey"),
        min_allowed_weights=num("MinAllowedWeights"),
        max_weight_limit=num("MaxWeightsLimit", U16_MAX),
        max_allowed_uids=num("MaxAllowedUids"),
    )


# The storage items read for Hyperparameters (all SubtensorModule maps keyed by netuid, but
# CommitRevealWeightsVersion, which is one chain-wide value).
HYPERPARAMETER_ITEMS: tuple[str, ...] = (
    "Tempo",
    "WeightsSetRateLimit",
    "CommitRevealWeightsEnabled",
    "RevealPeriodEpochs",
    "WeightsVersionKey",
    "MinAllowedWeights",
    "MaxWeightsLimit",
    "MaxAllowedUids",
)
