"""The on-chain metagraph from Python: a snapshot reader and a transaction client.

``MetagraphReader(w3, address).snapshot()`` reads every registered uid with one ``neurons()``
call plus ``hyperparameters()`` and ``registrationPrice()`` (all pinned to one block), and
returns a frozen :class:`Metagraph` whose tuples are indexed by uid and which also answers per
hotkey. :class:`MetagraphClient` sends the transactions (register, stake, commit/reveal, ...).

Epoch outputs (incentive, dividends, consensus, validator trust: u16 fractions of 65535;
emission: token base units) read as zero until the epoch contract records them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from enum import IntEnum
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from web3 import Web3
from web3.exceptions import Web3Exception
from web3.types import TxReceipt

from chain.client import Contract
from chain.errors import ConfigError, ContractRevert, TransactionFailed, define_custom_error
from chain.weights import WeightSet, commit_hash, unpack_row

ARTIFACT = "Metagraph"


class HyperParam(IntEnum):
    """``IMetagraph.Param``: the index ``setHyperparameter`` takes."""

    TEMPO = 0
    KAPPA = 1
    IMMUNITY_PERIOD = 2
    MAX_UIDS = 3
    MAX_VALIDATORS = 4
    MIN_ALLOWED_WEIGHTS = 5
    WEIGHTS_RATE_LIMIT = 6
    REVEAL_PERIOD = 7
    BONDS_MOVING_AVERAGE = 8
    BONDS_PENALTY = 9
    LIQUID_ALPHA_ENABLED = 10
    ALPHA_LOW = 11
    ALPHA_HIGH = 12
    ALPHA_SIGMOID_STEEPNESS = 13
    ACTIVITY_CUTOFF = 14
    MIN_BURN = 15
    MAX_BURN = 16
    BURN_HALF_LIFE = 17
    BURN_INCREASE_MULT = 18
    UNBONDING_PERIOD = 19
    WEIGHTS_VERSION_KEY = 20


@dataclass(frozen=True)
class Hyperparameters:
    """``IMetagraph.Hyperparameters`` (same field order as the Solidity struct)."""

    tempo: int
    kappa: int
    immunity_period: int
    max_uids: int
    max_validators: int
    min_allowed_weights: int
    weights_rate_limit: int
    reveal_period: int
    bonds_moving_average: int
    bonds_penalty: int
    liquid_alpha_enabled: bool
    alpha_low: int
    alpha_high: int
    alpha_sigmoid_steepness: int
    activity_cutoff: int
    min_burn: int
    max_burn: int
    burn_half_life: int
    burn_increase_mult: int
    unbonding_period: int
    weights_version_key: int

    @classmethod
    def from_tuple(cls, values: Sequence[Any]) -> Hyperparameters:
        return cls(*values)


@dataclass(frozen=True)
class NeuronInfo:
    """One uid of a snapshot."""

    uid: int
    hotkey: str
    coldkey: str
    stake: int
    emission: int
    registered_at: int
    last_update: int
    validator_permit: bool
    incentive: int
    dividends: int
    consensus: int
    validator_trust: int
    endpoint: str


@dataclass(frozen=True)
class Metagraph:
    """All registered uids at ``block``; every tuple is indexed by uid."""

    address: str
    block: int
    hotkeys: tuple[str, ...]
    coldkeys: tuple[str, ...]
    stake: tuple[int, ...]
    emission: tuple[int, ...]
    registered_at: tuple[int, ...]
    last_update: tuple[int, ...]
    validator_permit: tuple[bool, ...]
    incentive: tuple[int, ...]
    dividends: tuple[int, ...]
    consensus: tuple[int, ...]
    validator_trust: tuple[int, ...]
    endpoints: tuple[str, ...]
    hyperparameters: Hyperparameters
    registration_price: int

    @property
    def n(self) -> int:
        """Number of registered uids."""
        return len(self.hotkeys)

    def uid_of(self, hotkey: str) -> int | None:
        """uid of ``hotkey`` in this snapshot, or ``None``."""
        target = to_checksum_address(hotkey)
        for uid, hk in enumerate(self.hotkeys):
            if hk == target:
                return uid
        return None

    def neuron(self, uid: int) -> NeuronInfo:
        """Everything about one uid."""
        return NeuronInfo(
            uid=uid,
            hotkey=self.hotkeys[uid],
            coldkey=self.coldkeys[uid],
            stake=self.stake[uid],
            emission=self.emission[uid],
            registered_at=self.registered_at[uid],
            last_update=self.last_update[uid],
            validator_permit=self.validator_permit[uid],
            incentive=self.incentive[uid],
            dividends=self.dividends[uid],
            consensus=self.consensus[uid],
            validator_trust=self.validator_trust[uid],
            endpoint=self.endpoints[uid],
        )

    def by_hotkey(self, hotkey: str) -> NeuronInfo | None:
        """The neuron registered under ``hotkey``, or ``None``."""
        uid = self.uid_of(hotkey)
        return None if uid is None else self.neuron(uid)

    def has_validator_permit(self, hotkey: str) -> bool:
        """Whether ``hotkey`` is registered and holds a validator permit in this snapshot."""
        info = self.by_hotkey(hotkey)
        return info is not None and info.validator_permit

    def neurons(self) -> list[NeuronInfo]:
        return [self.neuron(uid) for uid in range(self.n)]

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-ready data (amounts as integers in base units)."""
        return {
            "address": self.address,
            "block": self.block,
            "n": self.n,
            "registration_price": self.registration_price,
            "hyperparameters": asdict(self.hyperparameters),
            "neurons": [asdict(info) for info in self.neurons()],
        }


class MetagraphReader:
    """Read-only access: snapshots, permits, weight rows, prices."""

    def __init__(self, w3: Web3, address: str) -> None:
        self.contract = Contract(w3, ARTIFACT, address)
        self.w3 = w3

    @property
    def address(self) -> str:
        return self.contract.address

    def snapshot(self, block: int | str = "latest") -> Metagraph:
        """Every registered uid, read in three calls pinned to one block."""
        number = self.w3.eth.block_number if block == "latest" else int(block)
        rows = self.contract.call("neurons", block=number)
        hp = Hyperparameters.from_tuple(self.contract.call("hyperparameters", block=number))
        price = int(self.contract.call("registrationPrice", block=number))
        columns: dict[str, list[Any]] = {f.name: [] for f in fields(NeuronInfo) if f.name != "uid"}
        for row in rows:
            (hk, ck, stake, emission, reg, last, permit, inc, div, cons, vtrust, endpoint) = row
            for name, value in (
                ("hotkey", to_checksum_address(hk)),
                ("coldkey", to_checksum_address(ck)),
                ("stake", int(stake)),
                ("emission", int(emission)),
                ("registered_at", int(reg)),
                ("last_update", int(last)),
                ("validator_permit", bool(permit)),
                ("incentive", int(inc)),
                ("dividends", int(div)),
                ("consensus", int(cons)),
                ("validator_trust", int(vtrust)),
                ("endpoint", str(endpoint)),
            ):
                columns[name].append(value)
        return Metagraph(
            address=self.address,
            block=number,
            hotkeys=tuple(columns["hotkey"]),
            coldkeys=tuple(columns["coldkey"]),
            stake=tuple(columns["stake"]),
            emission=tuple(columns["emission"]),
            registered_at=tuple(columns["registered_at"]),
            last_update=tuple(columns["last_update"]),
            validator_permit=tuple(columns["validator_permit"]),
            incentive=tuple(columns["incentive"]),
            dividends=tuple(columns["dividends"]),
            consensus=tuple(columns["consensus"]),
            validator_trust=tuple(columns["validator_trust"]),
            endpoints=tuple(columns["endpoint"]),
            hyperparameters=hp,
            registration_price=price,
        )

    def has_validator_permit(self, hotkey: str) -> bool:
        """Whether ``hotkey`` is registered and holds a validator permit now (two calls)."""
        hotkey = to_checksum_address(hotkey)
        if not self.contract.call("isRegistered", hotkey):
            return False
        uid = int(self.contract.call("uidOf", hotkey))
        return bool((int(self.contract.call("validatorPermits")) >> uid) & 1)

    def uid_of(self, hotkey: str) -> int | None:
        hotkey = to_checksum_address(hotkey)
        if not self.contract.call("isRegistered", hotkey):
            return None
        return int(self.contract.call("uidOf", hotkey))

    def weights(self, uid: int) -> list[int]:
        """The stored u16 row of validator ``uid`` (256 lanes, index = target uid)."""
        return unpack_row(self.contract.call("weightRow", uid))

    def registration_price(self) -> int:
        return int(self.contract.call("registrationPrice"))

    def hyperparameters(self) -> Hyperparameters:
        return Hyperparameters.from_tuple(self.contract.call("hyperparameters"))

    def stake_of(self, coldkey: str, hotkey: str) -> int:
        return int(
            self.contract.call("stakeOf", to_checksum_address(coldkey), to_checksum_address(hotkey))
        )

    def hotkey_stake(self, hotkey: str) -> int:
        return int(self.contract.call("hotkeyStake", to_checksum_address(hotkey)))

    def unbonding(self, coldkey: str) -> tuple[int, int]:
        """(amount, release block) of ``coldkey``'s unbonding balance."""
        amount, release = self.contract.call("unbonding", to_checksum_address(coldkey))
        return int(amount), int(release)

    def token_address(self) -> str:
        return to_checksum_address(self.contract.call("token"))


CONSENT_TYPES: dict[str, list[dict[str, str]]] = {
    "RegisterConsent": [
        {"name": "hotkey", "type": "address"},
        {"name": "coldkey", "type": "address"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ]
}


@dataclass(frozen=True)
class HotkeyConsent:
    """A hotkey's signed consent to be registered for one coldkey (``registerWithConsent``)."""

    hotkey: str
    coldkey: str
    nonce: int
    deadline: int
    signature: bytes

    def to_text(self) -> str:
        """``<deadline>:0x<signature>``: what ``latent register consent`` prints."""
        return f"{self.deadline}:0x{self.signature.hex()}"

    @classmethod
    def from_text(cls, text: str, *, hotkey: str, coldkey: str) -> HotkeyConsent:
        """Parse :meth:`to_text` (nonce is not carried: the contract checks it)."""
        try:
            deadline, sig = text.strip().split(":", 1)
            return cls(hotkey, coldkey, -1, int(deadline), bytes.fromhex(sig.removeprefix("0x")))
        except ValueError:
            raise ConfigError(
                "--hotkey-consent must be DEADLINE:0xSIGNATURE as printed by "
                "`latent register consent`"
            ) from None


def sign_hotkey_consent(
    hotkey: LocalAccount,
    *,
    coldkey: str,
    nonce: int,
    deadline: int,
    metagraph: str,
    chain_id: int,
) -> HotkeyConsent:
    """EIP-712 ``RegisterConsent`` signed by ``hotkey`` for ``coldkey`` on ``metagraph``."""
    from eth_account.messages import encode_typed_data

    message = {
        "hotkey": hotkey.address,
        "coldkey": to_checksum_address(coldkey),
        "nonce": nonce,
        "deadline": deadline,
    }
    signable = encode_typed_data(
        domain_data={
            "name": "Latent Metagraph",
            "version": "1",
            "chainId": chain_id,
            "verifyingContract": to_checksum_address(metagraph),
        },
        message_types=CONSENT_TYPES,
        message_data=message,
    )
    signed = hotkey.sign_message(signable)
    return HotkeyConsent(
        hotkey.address, to_checksum_address(coldkey), nonce, deadline, bytes(signed.signature)
    )


@define_custom_error
class EpochInProgress(ContractRevert):
    """``MetagraphEpochInProgress``: the metagraph is frozen while a Yuma epoch is processed;
    registration waits until it completes, a few blocks. Raised by the revert itself, and by
    :meth:`MetagraphClient.register` before it sends anything (with ``blocks_left``)."""

    error_name = "MetagraphEpochInProgress"

    def __init__(
        self,
        error_args: dict[str, Any] | None = None,
        *,
        contract: str | None = None,
        blocks_left: int = 0,
    ) -> None:
        super().__init__(error_args, contract=contract)
        self.blocks_left = blocks_left
        wait = f"~{blocks_left} blocks" if blocks_left else "a few blocks"
        self.args = (
            f"epoch in progress, retry in {wait} (the metagraph is frozen while the Yuma "
            "epoch is processed)",
        )

    def __str__(self) -> str:
        return str(self.args[0])


#: runEpoch transactions still to come after each phase starts (Rows -> Columns -> Credit ->
#: Idle); keepers send one per block, so this many blocks is the usual wait on a small subnet.
_EPOCH_CALLS_LEFT = {1: 3, 2: 2, 3: 1}


class MetagraphClient(MetagraphReader):
    """Transactions against the metagraph. Methods that spend tokens approve exactly what they
    spend first (registration: the current price, or ``max_price`` when given)."""

    def _token(self) -> Contract:
        return Contract(self.w3, "SubnetToken", self.token_address())

    def _approve(self, owner: LocalAccount, amount: int) -> None:
        token = self._token()
        if int(token.call("allowance", owner.address, self.address)) < amount:
            token.transact("approve", self.address, amount, sender=owner)

    def consent_nonce(self, hotkey: str) -> int:
        """The nonce the hotkey's next registration consent signs."""
        return int(self.contract.call("consentNonce", to_checksum_address(hotkey)))

    def sign_consent(
        self, hotkey: LocalAccount, coldkey: str, *, deadline: int | None = None
    ) -> HotkeyConsent:
        """``hotkey``'s consent to be registered for ``coldkey`` (EIP-712, valid until
        ``deadline``, default one hour from the latest block)."""
        if deadline is None:
            deadline = int(self.w3.eth.get_block("latest")["timestamp"]) + 3600
        return sign_hotkey_consent(
            hotkey,
            coldkey=coldkey,
            nonce=self.consent_nonce(hotkey.address),
            deadline=deadline,
            metagraph=self.address,
            chain_id=int(self.w3.eth.chain_id),
        )

    def register(
        self,
        coldkey: LocalAccount,
        hotkey: LocalAccount | str,
        endpoint: str = "",
        *,
        max_price: int | None = None,
        consent: HotkeyConsent | None = None,
    ) -> tuple[int, int, TxReceipt]:
        """Register ``hotkey`` paid by ``coldkey``; returns (uid, burned, receipt).

        The hotkey must consent (``IMetagraph.registerWithConsent``): it is the coldkey
        itself, or a hotkey the coldkey already owns, or ``consent`` carries its signature
        (signed here when ``hotkey`` is an account; ``latent register consent`` prints one
        on a hotkey-only box)."""
        address = to_checksum_address(hotkey if isinstance(hotkey, str) else hotkey.address)
        owner = self.hotkey_owner(address)
        needs_consent = address != coldkey.address and owner != coldkey.address
        if needs_consent and consent is None:
            if isinstance(hotkey, str):
                raise ConfigError(
                    f"registering {address} for coldkey {coldkey.address} needs the hotkey's "
                    "consent: sign it with the hotkey (`latent consent`) and pass it "
                    "(--hotkey-consent), or sign with the hotkey here"
                )
            consent = self.sign_consent(hotkey, coldkey.address)
        limit = self.registration_price() if max_price is None else max_price
        self.refuse_during_epoch()  # before the approval: nothing changes on chain
        self._approve(coldkey, limit)
        try:
            if needs_consent:
                assert consent is not None
                receipt = self.contract.transact(
                    "registerWithConsent",
                    address,
                    endpoint,
                    limit,
                    consent.deadline,
                    consent.signature,
                    sender=coldkey,
                )
            else:
                receipt = self.contract.transact(
                    "register", address, endpoint, limit, sender=coldkey
                )
        except EpochInProgress:  # an epoch started since the check above
            raise self._epoch_in_progress() from None
        event = self.contract.events(receipt, "NeuronRegistered")[0]
        return int(event["uid"]), int(event["burned"]), receipt

    def refuse_during_epoch(self) -> None:
        """Raise :class:`EpochInProgress` while the epoch contract is processing an epoch
        (the metagraph would revert ``MetagraphEpochInProgress``)."""
        error = self._epoch_in_progress()
        if error.blocks_left:
            raise error

    def _epoch_in_progress(self) -> EpochInProgress:
        """The error with ``blocks_left`` from the epoch contract's progress (0: no epoch
        running, or an epoch contract that cannot tell, e.g. not a YumaConsensus)."""
        epoch = to_checksum_address(self.contract.call("epochContract"))
        phase = 0
        if int(epoch, 16) and self.w3.eth.get_code(epoch):
            from chain.epoch import EpochClient  # chain.epoch imports this module

            try:
                phase = int(EpochClient(self.w3, epoch).progress()[0])
            except (TransactionFailed, Web3Exception):
                phase = 0
        return EpochInProgress(contract="Metagraph", blocks_left=_EPOCH_CALLS_LEFT.get(phase, 0))

    def hotkey_owner(self, hotkey: str) -> str | None:
        """The coldkey that owns ``hotkey`` (None before its first registration)."""
        owner = to_checksum_address(self.contract.call("hotkeyOwner", to_checksum_address(hotkey)))
        return None if int(owner, 16) == 0 else owner

    def set_endpoint(self, hotkey: LocalAccount, endpoint: str) -> TxReceipt:
        return self.contract.transact("setEndpoint", endpoint, sender=hotkey)

    def add_stake(self, coldkey: LocalAccount, hotkey: str, amount: int) -> TxReceipt:
        self._approve(coldkey, amount)
        return self.contract.transact(
            "addStake", to_checksum_address(hotkey), amount, sender=coldkey
        )

    def remove_stake(self, coldkey: LocalAccount, hotkey: str, amount: int) -> TxReceipt:
        return self.contract.transact(
            "removeStake", to_checksum_address(hotkey), amount, sender=coldkey
        )

    def claim_unbonded(self, coldkey: LocalAccount) -> TxReceipt:
        return self.contract.transact("claimUnbonded", sender=coldkey)

    def update_permits(self, sender: LocalAccount) -> TxReceipt:
        return self.contract.transact("updatePermits", sender=sender)

    def commit_weights(
        self, hotkey: LocalAccount, weights: WeightSet, salt: bytes, version_key: int
    ) -> TxReceipt:
        """Commit ``weights``; keep ``salt`` and ``version_key`` for the reveal."""
        digest = commit_hash(hotkey.address, weights, salt, version_key)
        return self.contract.transact("commitWeights", digest, sender=hotkey)

    def reveal_weights(
        self, hotkey: LocalAccount, weights: WeightSet, salt: bytes, version_key: int
    ) -> TxReceipt:
        return self.contract.transact(
            "revealWeights",
            weights.packed_uids,
            weights.packed_values,
            salt,
            version_key,
            sender=hotkey,
        )

    def set_hyperparameter(self, owner: LocalAccount, param: HyperParam, value: int) -> TxReceipt:
        return self.contract.transact("setHyperparameter", int(param), int(value), sender=owner)


__all__ = [
    "HyperParam",
    "Hyperparameters",
    "Metagraph",
    "MetagraphClient",
    "MetagraphReader",
    "NeuronInfo",
]
