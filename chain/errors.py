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
        shown = ", ".join(f"{k}={_show(v)}" for k, v in self.error_args.items())
        where = f" in {contract}" if contract else ""
        super().__init__(f"{self.error_name}({shown}){where}")


def _show(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return str(value)


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
