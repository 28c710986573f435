"""One exception tree for everything Latent raises on purpose.

Every error a user can cause or meet derives from :class:`LatentError`; the CLI prints
its message on one line and exits non-zero, without a traceback. Contract reverts are
decoded into subclasses of :class:`ContractRevert` named after the Solidity custom error
(``custom_error("EscrowVoucherStale")``), so callers and tests catch them by name.
"""

from __future__ import annotations

from typing import Any


class LatentError(Exception):
    """Root of every error Latent raises deliberately. The message says what to do."""


class ConfigError(LatentError):
    """A configuration value (network, flag, environment variable) is missing or invalid."""


class ChainConnectionError(LatentError):
    """An RPC endpoint cannot be reached or does not speak JSON-RPC."""


class ChainIdMismatch(LatentError):
    """The RPC endpoint serves a different chain than the named network expects."""


class CompileError(LatentError):
    """The Solidity compiler rejected the sources or could not be run."""


class KeystoreError(LatentError):
    """A keystore is missing, unreadable, or the password is wrong."""


class NodeError(LatentError):
    """The local anvil node could not be started or stopped."""


class TransactionFailed(LatentError):
    """A transaction or call reverted; the revert data could not be decoded further."""


class ContractRevert(TransactionFailed):
    """A revert carrying a Solidity custom error (or ``Error(string)`` / ``Panic(uint256)``).

    ``error_name`` is the Solidity name, ``error_args`` maps argument names to values.
    Concrete subclasses are created on demand by :func:`custom_error`.
    """

    error_name: str = "ContractRevert"

    def __init__(self, error_args: dict[str, Any] | None = None, *, contract: str | None = None):
        self.error_args: dict[str, Any] = dict(error_args or {})
        self.contract = contract
        amounts = TOKEN_AMOUNT_ARGS.get(self.error_name, ())
        shown = ", ".join(
            f"{k}={_show(v, token_amount=k in amounts)}" for k, v in self.error_args.items()
        )
        where = f" in {contract}" if contract else ""
        explained = _explain(self)  # the common ones read as a sentence, in tokens
        head = self.error_name if explained else f"{self.error_name}({shown})"
        super().__init__(f"{head}{where}{explained}")


#: Arguments of custom errors that are token amounts in base units: shown in whole tokens.
TOKEN_AMOUNT_ARGS: dict[str, tuple[str, ...]] = {
    "ERC20InsufficientBalance": ("balance", "needed"),
    "ERC20InsufficientAllowance": ("allowance", "needed"),
    "SubnetTokenCapExceeded": ("supply", "amount", "cap"),
    "MetagraphPriceAboveLimit": ("price", "maxPrice"),
    "MetagraphInsufficientStake": ("staked", "requested"),
    "EscrowNothingReceived": ("requested",),
    "EscrowDepositOverflow": ("deposit",),
    "EscrowVoucherStale": ("cumulative", "settled"),
    "EscrowVoucherExceedsDeposit": ("cumulative", "deposit"),
}

#: Names shown beside addresses in error messages (contracts of the manifest, the signer).
_ADDRESS_NAMES: dict[str, str] = {}


def name_address(address: str, name: str) -> None:
    """Show ``address`` as ``0x... (name)`` in error messages from now on."""
    _ADDRESS_NAMES[address.lower()] = name


def _show(value: Any, *, token_amount: bool = False) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if token_amount and isinstance(value, int):
        from chain.token import format_token_amount  # chain.token imports this module

        return format_token_amount(value)
    if isinstance(value, str) and value.lower() in _ADDRESS_NAMES:
        return f"{value} ({_ADDRESS_NAMES[value.lower()]})"
    return str(value)


def _explain(error: ContractRevert) -> str:
    """A sentence for the errors a person meets most, in tokens (empty for the others)."""
    args = error.error_args
    if error.error_name == "ERC20InsufficientBalance":
        return (
            f": {_show(args.get('sender'))} has balance "
            f"{_show(args.get('balance'), token_amount=True)}, needs "
            f"{_show(args.get('needed'), token_amount=True)}; fund it first"
        )
    if error.error_name == "ERC20InsufficientAllowance":
        return (
            f": {_show(args.get('spender'))} may spend "
            f"{_show(args.get('allowance'), token_amount=True)}, needs "
            f"{_show(args.get('needed'), token_amount=True)}; approve more first"
        )
    return ""


_CUSTOM_ERRORS: dict[str, type[ContractRevert]] = {}


def define_custom_error(cls: type[ContractRevert]) -> type[ContractRevert]:
    """Class decorator: reverts with the custom error ``cls.error_name`` decode to ``cls``
    (a named class with its own message), and ``custom_error(name)`` returns it."""
    _CUSTOM_ERRORS[cls.error_name] = cls
    return cls


def custom_error(name: str) -> type[ContractRevert]:
    """The exception class for the Solidity custom error ``name`` (created once, cached)."""
    cls = _CUSTOM_ERRORS.get(name)
    if cls is None:
        cls = type(name, (ContractRevert,), {"error_name": name, "__module__": __name__})
        _CUSTOM_ERRORS[name] = cls
    return cls
