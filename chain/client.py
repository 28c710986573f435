"""Typed contract access over web3.py: connect, deploy, call, transact, decode reverts.

Transactions are signed locally with an eth-account ``LocalAccount`` and sent raw, so the
same code works on anvil and on a public testnet whose RPC holds no keys. Every revert —
at gas estimation, at ``eth_call`` or in a mined transaction — is decoded against the
custom errors of every compiled contract and raised as the matching
:func:`chain.errors.custom_error` class.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from typing import Any, TypeVar

from eth_abi import decode as abi_decode
from eth_account.signers.local import LocalAccount
from eth_utils import function_abi_to_4byte_selector, to_checksum_address
from web3 import Web3
from web3.contract import Contract as Web3Contract
from web3.exceptions import ContractLogicError, TimeExhausted, Web3Exception
from web3.logs import DISCARD
from web3.types import TxParams, TxReceipt

from chain.compile import Artifact, all_artifacts, artifact
from chain.errors import (
    ChainConnectionError,
    ChainIdMismatch,
    ContractRevert,
    TransactionFailed,
    custom_error,
)

_ERROR_STRING = bytes.fromhex("08c379a0")  # Error(string)
_PANIC = bytes.fromhex("4e487b71")  # Panic(uint256)
T = TypeVar("T")


def connect(rpc_url: str, *, expected_chain_id: int | None = None, timeout_s: float = 30) -> Web3:
    """A Web3 for ``rpc_url`` that has answered; checks the chain id when one is expected."""
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout_s}))
    try:
        chain_id = w3.eth.chain_id
    except Exception as exc:  # noqa: BLE001 - transport errors come in many types
        raise ChainConnectionError(
            f"cannot reach an Ethereum JSON-RPC endpoint at {rpc_url} ({type(exc).__name__}); "
            "check the URL or start the node"
        ) from None
    if expected_chain_id is not None and chain_id != expected_chain_id:
        raise ChainIdMismatch(
            f"{rpc_url} serves chain id {chain_id}, but {expected_chain_id} was expected; "
            "point the RPC URL at the right network"
        )
    return w3


@lru_cache(maxsize=1)
def _error_table_cached(key: tuple[str, ...]) -> dict[bytes, tuple[str, list[dict[str, Any]]]]:
    table: dict[bytes, tuple[str, list[dict[str, Any]]]] = {}
    for art in all_artifacts().values():
        for entry in art.abi:
            if entry.get("type") == "error":
                selector = function_abi_to_4byte_selector(entry)  # type: ignore[arg-type]
                table[selector] = (entry["name"], entry["inputs"])
    return table


def _error_table() -> dict[bytes, tuple[str, list[dict[str, Any]]]]:
    return _error_table_cached(tuple(sorted(all_artifacts())))


def _abi_type(param: Mapping[str, Any]) -> str:
    kind = str(param["type"])
    if kind.startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in param["components"])
        return f"({inner}){kind[5:]}"
    return kind


def decode_revert(data: bytes | str | None, *, contract: str | None = None) -> TransactionFailed:
    """Turn raw revert data into the matching exception (not raised)."""
    if isinstance(data, str):
        text = data[2:] if data.startswith("0x") else data
        try:
            data = bytes.fromhex(text)
        except ValueError:
            return TransactionFailed(f"reverted: {data!r}")
    if not data or len(data) < 4:
        return TransactionFailed(f"reverted without reason{f' in {contract}' if contract else ''}")
    selector, payload = data[:4], data[4:]
    if selector == _ERROR_STRING:
        (reason,) = abi_decode(["string"], payload)
        return custom_error("Error")({"reason": reason}, contract=contract)
    if selector == _PANIC:
        (code,) = abi_decode(["uint256"], payload)
        return custom_error("Panic")({"code": hex(code)}, contract=contract)
    known = _error_table().get(selector)
    if known is None:
        return TransactionFailed(f"reverted with unknown error 0x{data.hex()}")
    name, inputs = known
    values = abi_decode([_abi_type(p) for p in inputs], payload)
    args = {
        p["name"] or f"arg{i}": to_checksum_address(v) if p["type"] == "address" else v
        for i, (p, v) in enumerate(zip(inputs, values, strict=True))
    }
    return custom_error(name)(args, contract=contract)


def _revert_data(exc: ContractLogicError) -> Any:
    data = exc.data
    if isinstance(data, dict):  # some nodes nest it
        data = data.get("data", data.get("message"))
    return data


def _guard(contract: str | None, action: Callable[[], T]) -> T:
    try:
        return action()
    except ContractLogicError as exc:
        raise decode_revert(_revert_data(exc), contract=contract) from None


class Contract:
    """A deployed contract with its ABI: call views, send transactions, read events."""

    def __init__(self, w3: Web3, art: Artifact | str, address: str) -> None:
        self.w3 = w3
        self.artifact = artifact(art) if isinstance(art, str) else art
        self.address = to_checksum_address(address)
        self._contract: Web3Contract = w3.eth.contract(address=self.address, abi=self.artifact.abi)

    @property
    def name(self) -> str:
        return self.artifact.name

    @property
    def functions(self) -> Any:
        """The raw web3 contract functions (for encoding or unusual calls)."""
        return self._contract.functions

    def call(
        self, fn_name: str, *args: Any, sender: str | None = None, block: Any = "latest"
    ) -> Any:
        """Evaluate a function with ``eth_call``; reverts raise their named exception."""
        fn = getattr(self._contract.functions, fn_name)(*args)
        params: TxParams = {"from": to_checksum_address(sender)} if sender else {}
        return _guard(self.name, lambda: fn.call(params, block_identifier=block))

    def transact(
        self,
        fn_name: str,
        *args: Any,
        sender: LocalAccount,
        value: int = 0,
        gas: int | None = None,
    ) -> TxReceipt:
        """Sign and send a transaction, wait for it, raise the decoded error on revert."""
        fn = getattr(self._contract.functions, fn_name)(*args)
        params: TxParams = {"from": sender.address, "value": Web3.to_wei(value, "wei")}
        return send_transaction(
            self.w3,
            sender,
            lambda p: fn.build_transaction(p),
            params,
            gas=gas,
            # Estimated against the pending block, where the transaction will be mined,
            # so block-number-dependent checks (windows, unbonding) judge the right block.
            estimate=lambda: fn.estimate_gas(params, block_identifier="pending"),
            contract=self.name,
        )

    def logs(
        self, event_name: str, from_block: int, to_block: Any, **indexed: Any
    ) -> list[dict[str, Any]]:
        """Decoded arguments of the contract's ``event_name`` logs in blocks ``from_block ..
        to_block`` whose indexed arguments equal ``indexed``."""
        event = getattr(self._contract.events, event_name)()
        logs = event.get_logs(
            from_block=from_block, to_block=to_block, argument_filters=indexed or None
        )
        return [dict(log["args"]) for log in logs]

    def events(self, receipt: TxReceipt, event_name: str) -> list[dict[str, Any]]:
        """Arguments of every ``event_name`` this contract emitted in ``receipt``."""
        event = getattr(self._contract.events, event_name)()
        return [dict(log["args"]) for log in event.process_receipt(receipt, errors=DISCARD)]


def send_transaction(
    w3: Web3,
    sender: LocalAccount,
    build: Callable[[TxParams], TxParams],
    params: TxParams,
    *,
    gas: int | None,
    estimate: Callable[[], int],
    contract: str | None,
    timeout_s: float = 120,
) -> TxReceipt:
    """Estimate (surfacing reverts), sign locally, send raw, wait; raise on a failed receipt."""
    if gas is None:
        estimated = _guard(contract, estimate)
        block_limit = int(w3.eth.get_block("latest")["gasLimit"])
        gas = min(block_limit, estimated * 6 // 5 + 10_000)
    tx = dict(params)
    tx.update(
        {
            "gas": gas,
            "nonce": w3.eth.get_transaction_count(sender.address, "pending"),
            "chainId": w3.eth.chain_id,
        }
    )
    built = _guard(contract, lambda: build(tx))  # type: ignore[arg-type]
    signed = sender.sign_transaction(built)  # type: ignore[arg-type]
    try:
        tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout_s)
    except TimeExhausted:
        raise TransactionFailed(f"transaction not mined within {timeout_s:.0f}s") from None
    except ContractLogicError as exc:
        raise decode_revert(_revert_data(exc), contract=contract) from None
    except Web3Exception as exc:
        raise TransactionFailed(f"the node rejected the transaction: {exc}") from None
    if receipt["status"] != 1:
        # Replay at the block it failed in to recover the revert data.
        replay = {k: v for k, v in built.items() if k in ("from", "to", "data", "value", "gas")}
        try:
            w3.eth.call(replay, block_identifier=receipt["blockNumber"])  # type: ignore[arg-type]
        except ContractLogicError as exc:
            raise decode_revert(_revert_data(exc), contract=contract) from None
        raise TransactionFailed(
            f"transaction 0x{bytes(receipt['transactionHash']).hex()} reverted (out of gas?)"
        )
    return receipt


def deploy_contract(
    w3: Web3, art: Artifact | str, *ctor_args: Any, sender: LocalAccount, gas: int | None = None
) -> tuple[Contract, TxReceipt]:
    """Deploy ``art`` with constructor arguments; returns the client and the receipt."""
    resolved = artifact(art) if isinstance(art, str) else art
    if resolved.bytecode in ("", "0x"):
        raise TransactionFailed(f"{resolved.name} is abstract or an interface: nothing to deploy")
    factory = w3.eth.contract(abi=resolved.abi, bytecode=resolved.bytecode)
    ctor = factory.constructor(*ctor_args)
    params: TxParams = {"from": sender.address}
    receipt = send_transaction(
        w3,
        sender,
        lambda p: ctor.build_transaction(p),
        params,
        gas=gas,
        estimate=lambda: ctor.estimate_gas(params),
        contract=resolved.name,
    )
    address = receipt["contractAddress"]
    if address is None:
        raise TransactionFailed(f"deploying {resolved.name} returned no contract address")
    return Contract(w3, resolved, address), receipt


def known_error_names() -> Iterable[str]:
    """Names of every custom error declared by the compiled contracts."""
    return sorted({name for name, _ in _error_table().values()})


__all__ = [
    "Contract",
    "ContractRevert",
    "connect",
    "decode_revert",
    "deploy_contract",
    "known_error_names",
    "send_transaction",
]
