"""Every refusal subtensor can give a validator, as a typed :class:`chain.errors.LatentError`.

Two places refuse a weight extrinsic:

- the transaction pool, before inclusion (JSON-RPC error 1010 "Invalid Transaction" /
  1011 "Unknown Transaction"): a bad signature, a stale or future nonce, no funds for the
  fee, or one of subtensor's transaction-extension checks (``Custom error: N``, the
  ``CustomTransactionError`` codes);
- the pallet, at dispatch (``ExtrinsicFailed`` with a ``SubtensorModule`` error name).

:func:`from_dispatch_error` and :func:`from_rpc_error` turn both into the classes below,
grouped by what the validator should do: :class:`NotRegistered`, :class:`NoValidatorPermit`,
:class:`WeightsRateLimited` (too fast), :class:`TooFewWeights`, :class:`StaleVersionKey`,
:class:`NotEnoughStake`, :class:`CommitRevealMismatch`, :class:`WeightsRejected` (the vector
itself), :class:`SubnetNotFound`, :class:`TransactionRejected` (pool). Each message names the
chain error and says what to do. An error name Latent has no advice for still becomes a
:class:`SubtensorDispatchError` carrying the runtime's own documentation of it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from chain.errors import LatentError


class SubtensorError(LatentError):
    """Root of the Bittensor bridge's errors. ``chain_error`` is subtensor's name, if any."""

    chain_error: str | None = None

    def __init__(self, message: str, *, chain_error: str | None = None) -> None:
        super().__init__(message)
        self.chain_error = chain_error


class SubtensorConnectionError(SubtensorError):
    """The subtensor endpoint cannot be reached or answered something unusable."""


class SubtensorDispatchError(SubtensorError):
    """The extrinsic was included but the runtime refused it (``ExtrinsicFailed``)."""


class NotRegistered(SubtensorDispatchError):
    """The hotkey has no uid on the subnet."""


class NoValidatorPermit(SubtensorDispatchError):
    """The hotkey is registered but holds no validator permit."""


class NotEnoughStake(SubtensorDispatchError):
    """The hotkey's stake is below the subnet's minimum for setting weights."""


class WeightsRateLimited(SubtensorDispatchError):
    """Weights (or commits) were set too recently: the rate limit has not passed."""


class TooFewWeights(SubtensorDispatchError):
    """Fewer non-zero weights than the subnet's ``min_allowed_weights``."""


class StaleVersionKey(SubtensorDispatchError):
    """The weights version key is older than the subnet requires."""


class WeightsRejected(SubtensorDispatchError):
    """The weight vector itself is invalid (lengths, duplicates, unknown uids, max weight)."""


class CommitRevealMismatch(SubtensorDispatchError):
    """The call does not fit the subnet's commit-reveal mode or schedule."""


class SubnetNotFound(SubtensorDispatchError):
    """The netuid (or mechanism) does not exist."""


class TransactionRejected(SubtensorError):
    """The node's transaction pool refused the extrinsic before inclusion."""


# name -> (class, what to do). Names are subtensor's pallet errors (SubtensorModule) and,
# for the pool's "Custom error: N", the CustomTransactionError variants.
_ADVICE: dict[str, tuple[type[SubtensorError], str]] = {
    "HotKeyNotRegisteredInSubNet": (
        NotRegistered,
        "register the hotkey on this subnet (btcli subnets register) or check --netuid / --hotkey",
    ),
    "HotKeyNotRegisteredInNetwork": (
        NotRegistered,
        "register the hotkey on this subnet (btcli subnets register) or check --netuid / --hotkey",
    ),
    "HotKeyAccountNotExists": (
        NotRegistered,
        "the hotkey has never been registered anywhere: register it first",
    ),
    "UidNotFound": (NotRegistered, "the hotkey holds no uid on this subnet: register it first"),
    "NeuronNoValidatorPermit": (
        NoValidatorPermit,
        "only the subnet's top validators by stake hold a permit (recomputed each epoch): "
        "add stake to the hotkey and wait for the next epoch",
    ),
    "NotEnoughStakeToSetWeights": (
        NotEnoughStake,
        "stake more to this hotkey (btcli stake add) until it meets the subnet's minimum",
    ),
    "SettingWeightsTooFast": (
        WeightsRateLimited,
        "wait until weights_rate_limit blocks have passed since the hotkey's last update "
        "(latent bittensor metagraph shows last_update and the limit), then post again",
    ),
    "CommittingWeightsTooFast": (
        WeightsRateLimited,
        "wait until weights_rate_limit blocks have passed since the last commit, then commit again",
    ),
    "TooManyUnrevealedCommits": (
        WeightsRateLimited,
        "wait for earlier commits to be revealed (at most 10 may be pending) before committing again",
    ),
    "RateLimitExceeded": (
        WeightsRateLimited,
        "a rate limit has not passed yet: wait some blocks and retry",
    ),
    "TxRateLimitExceeded": (
        WeightsRateLimited,
        "a transaction rate limit has not passed yet: wait some blocks and retry",
    ),
    "WeightVecLengthIsLow": (
        TooFewWeights,
        "give non-zero scores to at least min_allowed_weights miners "
        "(latent bittensor metagraph shows the minimum)",
    ),
    "IncorrectWeightVersionKey": (
        StaleVersionKey,
        "pass the subnet's current weights_version_key (--version-key; latent bittensor "
        "metagraph shows it) or upgrade the validator software the subnet expects",
    ),
    "WeightVecNotEqualSize": (WeightsRejected, "send as many values as uids"),
    "DuplicateUids": (WeightsRejected, "send each uid once (one score per miner)"),
    "UidVecContainInvalidOne": (
        WeightsRejected,
        "weight only uids registered on the subnet (re-read the metagraph before posting)",
    ),
    "UidsLengthExceedUidsInSubNet": (
        WeightsRejected,
        "send at most as many weights as the subnet has uids",
    ),
    "MaxWeightExceeded": (
        WeightsRejected,
        "the largest weight is above max_weight_limit: spread the scores (Latent clips to the "
        "limit when it knows it; re-read the hyperparameters)",
    ),
    "InputLengthsUnequal": (WeightsRejected, "send as many values as uids"),
    "CanNotSetRootNetworkWeights": (WeightsRejected, "weights cannot be set on the root subnet"),
    "CommitRevealEnabled": (
        CommitRevealMismatch,
        "the subnet runs commit-reveal: commit timelocked weights (Latent does this when it "
        "reads commit_reveal_enabled; re-read the hyperparameters)",
    ),
    "CommitRevealDisabled": (
        CommitRevealMismatch,
        "the subnet has commit-reveal off: call set_weights instead of committing",
    ),
    "IncorrectCommitRevealVersion": (
        CommitRevealMismatch,
        "commit with the chain's CommitRevealWeightsVersion (upgrade Latent and bittensor-drand "
        "if the chain moved to a newer version)",
    ),
    "InvalidRevealRound": (
        CommitRevealMismatch,
        "the drand reveal round is in the past or too far ahead: check the machine's clock and "
        "the --block-time of the network",
    ),
    "RevealTooEarly": (CommitRevealMismatch, "wait for the reveal epoch before revealing"),
    "ExpiredWeightCommit": (
        CommitRevealMismatch,
        "the commit's reveal window has passed: commit again",
    ),
    "NoWeightsCommitFound": (CommitRevealMismatch, "commit before revealing"),
    "CommitNotFound": (CommitRevealMismatch, "commit before revealing"),
    "InvalidRevealCommitHashNotMatch": (
        CommitRevealMismatch,
        "reveal exactly the uids, values, salt and version key that were committed",
    ),
    "CommitBlockNotInRevealRange": (
        CommitRevealMismatch,
        "the commit is outside its reveal range: commit again",
    ),
    "SubnetNotExists": (SubnetNotFound, "check --netuid (btcli subnets list)"),
    "SubNetworkDoesNotExist": (SubnetNotFound, "check --netuid (btcli subnets list)"),
    "MechanismDoesNotExist": (SubnetNotFound, "check --netuid and the mechanism id"),
    "RootNetworkDoesNotExist": (SubnetNotFound, "the root subnet does not exist on this chain"),
}

_GENERIC_ADVICE = (
    "this call is not allowed in the chain's current state; see the subtensor documentation "
    "for this error and re-read the subnet before retrying"
)

# subtensor's CustomTransactionError codes ("Custom error: N" from the pool); 0-13 have been
# stable across runtimes, later codes moved between releases and are reported by number.
CUSTOM_TRANSACTION_ERRORS: dict[int, str] = {
    0: "ColdkeyInSwapSchedule",
    1: "StakeAmountTooLow",
    2: "BalanceTooLow",
    3: "SubnetNotExists",
    4: "HotkeyAccountDoesntExist",
    5: "NotEnoughStakeToWithdraw",
    6: "RateLimitExceeded",
    7: "InsufficientLiquidity",
    8: "SlippageTooHigh",
    9: "TransferDisallowed",
    10: "HotKeyNotRegisteredInNetwork",
    11: "InvalidIpAddress",
    12: "ServingRateLimitExceeded",
    13: "InvalidPort",
}

# The pool's InvalidTransaction / UnknownTransaction reasons (sp_runtime's texts in the
# JSON-RPC error's ``data``), the variant name, and what to do about each.
_POOL_ADVICE: tuple[tuple[str, str, str], ...] = (
    (
        "Inability to pay some fees",
        "Payment",
        "the signing account cannot pay the fee: send some TAO to the hotkey",
    ),
    (
        "Transaction is outdated",
        "Stale",
        "the nonce was already used (does another process sign with this hotkey?): retry",
    ),
    (
        "will be valid in the future",
        "Future",
        "the nonce is ahead of the account's: retry after pending transactions land",
    ),
    (
        "bad signature",
        "BadProof",
        "the signature does not verify: the hotkey file does not match the account, or the "
        "node serves another chain (check --network)",
    ),
    ("ancient birth block", "AncientBirthBlock", "the mortal era is too old: retry"),
    ("exhaust the block limits", "ExhaustsResources", "the block is full: retry in a few blocks"),
    (
        "Transaction call is not expected",
        "Call",
        "the runtime does not accept this call: upgrade Latent to match the chain",
    ),
    (
        "Priority is too low",
        "Priority",
        "a transaction with the same nonce and a higher priority is pending: retry later",
    ),
    (
        "already imported",
        "AlreadyImported",
        "the same extrinsic is already in the pool: wait for it to land",
    ),
)


def _advice_for(name: str) -> tuple[type[SubtensorError], str]:
    return _ADVICE.get(name, (SubtensorDispatchError, _GENERIC_ADVICE))


def advice_for(name: str) -> str:
    """What a validator should do about subtensor error ``name``."""
    return _advice_for(name)[1]


def _error_class(name: str) -> type[SubtensorError]:
    """One class per chain error name (a subclass of its category), created once."""
    cls = _BY_NAME.get(name)
    if cls is None:
        base, _ = _advice_for(name)
        cls = type(name, (base,), {"__module__": __name__, "__doc__": f"subtensor {name}."})
        _BY_NAME[name] = cls
    return cls


_BY_NAME: dict[str, type[SubtensorError]] = {}


def error_class(name: str) -> type[SubtensorError]:
    """The exception class for subtensor error ``name`` (catch it or its category)."""
    return _error_class(name)


def from_dispatch_error(name: str, docs: str | list[str] | None = None) -> SubtensorError:
    """The typed error for a ``SubtensorModule`` dispatch error name (``ExtrinsicFailed``)."""
    _, advice = _advice_for(name)
    doc = " ".join(docs) if isinstance(docs, list) else (docs or "")
    doc = " ".join(doc.split())
    what = f" ({doc.rstrip('.')})" if doc else ""
    return _error_class(name)(f"subtensor refused: {name}{what}: {advice}", chain_error=name)


def from_receipt_error(error: Mapping[str, Any] | None) -> SubtensorError:
    """The typed error for ``substrate-interface``'s ``ExtrinsicReceipt.error_message``."""
    if not error:
        return SubtensorDispatchError("subtensor refused the extrinsic without a reason")
    name = str(error.get("name") or error.get("type") or "Unknown")
    docs = error.get("docs")
    return from_dispatch_error(name, docs if isinstance(docs, list | str) else None)


_CUSTOM_RE = re.compile(r"Custom error:\s*(\d+)")


def from_rpc_error(error: Mapping[str, Any] | str) -> SubtensorError:
    """The typed error for a JSON-RPC ``author_submitExtrinsic`` refusal (codes 1010 / 1011)."""
    if isinstance(error, str):
        message, data = error, ""
    else:
        message, data = str(error.get("message", "")), str(error.get("data", ""))
    text = f"{message} {data}".strip()
    custom = _CUSTOM_RE.search(text)
    if custom:
        code = int(custom.group(1))
        name = CUSTOM_TRANSACTION_ERRORS.get(code)
        if name is None:
            return TransactionRejected(
                f"subtensor refused the transaction (custom error {code}): this code is not "
                "known to this Latent version; re-read the subnet and retry, or upgrade Latent",
                chain_error=f"Custom({code})",
            )
        return from_dispatch_error(name)
    for needle, reason, advice in _POOL_ADVICE:
        if needle.lower() in text.lower():
            return TransactionRejected(
                f"subtensor's pool refused the transaction ({reason}: {text}): {advice}",
                chain_error=reason,
            )
    return TransactionRejected(
        f"subtensor refused the transaction ({text or 'no reason given'}): check the hotkey, "
        "--network and the node's logs, then retry",
        chain_error=None,
    )
