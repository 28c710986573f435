"""SubnetToken client and ERC-2612 permit signing (EIP-712 typed data via eth-account)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.types import TxReceipt

from chain.client import Contract
from chain.errors import ConfigError

TOKEN_NAME = "Latent Subnet Token"
ONE = 10**18  # 18 decimals
DECIMALS = 18


SYMBOL = "LAT"
#: Prices a person types or reads are tokens per this many tokens of text (OpenRouter shows
#: "$ per 1M tokens"): a per-token price in whole tokens is a string of zeros (0.000001).
#: On the wire (``/v1/models`` ``pricing``) prices stay whole tokens per token, OpenRouter's
#: API shape, and exact base units per token travel in ``*_wei`` / ``latent`` fields.
PRICE_PER = 1_000_000


def parse_token_amount(text: str, decimals: int = DECIMALS, *, allow_zero: bool = False) -> int:
    """Whole-token decimal string (``"1.5"``) -> base units; positive (or zero with
    ``allow_zero``), at most ``decimals`` places.

    Raises :class:`ConfigError` naming the bad input (not a number, not positive, too precise).
    """
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ConfigError(f"amount {text!r} is not a number of tokens") from None
    if not value.is_finite():
        raise ConfigError(f"amount {text!r} is not a number of tokens")
    scaled = value.scaleb(decimals)
    if value < 0 or (value == 0 and not allow_zero) or scaled != scaled.to_integral_value():
        sign = ">= 0" if allow_zero else "positive"
        raise ConfigError(f"amount {text!r} must be {sign} with at most {decimals} decimals")
    return int(scaled)


def format_tokens(amount: int, decimals: int = DECIMALS, *, places: int | None = None) -> str:
    """Base units -> whole tokens: exact (``"1.5"``), or rounded to ``places`` with thousands
    separators (``"1,234.5000"``)."""
    value = Decimal(amount) / (Decimal(10) ** decimals)
    return f"{value:f}" if places is None else f"{value:,.{places}f}"


def format_token_amount(amount: int, decimals: int = DECIMALS, symbol: str = SYMBOL) -> str:
    """Base units -> exact whole tokens with thousands separators and the symbol, for
    sentences (``"9,899.5 LAT"``)."""
    whole, _, fraction = format_tokens(amount, decimals).partition(".")
    sign = "-" if whole.startswith("-") else ""
    grouped = f"{int(whole.lstrip('-')):,}"
    return f"{sign}{grouped}{'.' + fraction if fraction else ''} {symbol}"


def parse_price(text: str, decimals: int = DECIMALS) -> int:
    """Tokens per :data:`PRICE_PER` tokens of text (``"1.5"``) -> base units per token (>= 0).

    Raises :class:`ConfigError` when it is not a number, negative, or not a whole number of
    base units per token (at most ``decimals - 6`` decimal places).
    """
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ConfigError(f"price {text!r} is not a number of tokens per 1M tokens") from None
    per_token = value.scaleb(decimals) / PRICE_PER if value.is_finite() else value
    if not value.is_finite() or value < 0 or per_token != per_token.to_integral_value():
        places = decimals - len(str(PRICE_PER)) + 1
        raise ConfigError(
            f"price {text!r} must be >= 0 tokens per 1M tokens with at most {places} decimals"
        )
    return int(per_token)


def format_price(per_token: int, decimals: int = DECIMALS) -> str:
    """Base units per token -> exact tokens per :data:`PRICE_PER` tokens (``"4"``)."""
    return format_tokens(per_token * PRICE_PER, decimals)


def wire_price(text: str, decimals: int = DECIMALS) -> int:
    """A ``pricing`` value of a model card (whole tokens per token, decimal string) -> base
    units per token; :class:`ConfigError` when it is not a whole number of them."""
    return parse_token_amount(text, decimals, allow_zero=True)


@dataclass(frozen=True)
class Permit:
    """A signed ERC-2612 permit, ready to pass to ``permit`` or ``openWithPermit``."""

    owner: str
    spender: str
    value: int
    deadline: int
    v: int
    r: bytes
    s: bytes


class SubnetTokenClient(Contract):
    """Typed access to a deployed SubnetToken."""

    def __init__(self, w3: Web3, address: str) -> None:
        super().__init__(w3, "SubnetToken", address)

    def balance_of(self, account: str) -> int:
        return int(self.call("balanceOf", Web3.to_checksum_address(account)))

    def allowance(self, owner: str, spender: str) -> int:
        return int(self.call("allowance", owner, spender))

    def total_supply(self) -> int:
        return int(self.call("totalSupply"))

    def nonces(self, owner: str) -> int:
        return int(self.call("nonces", owner))

    def mint(self, to: str, amount: int, *, sender: LocalAccount) -> TxReceipt:
        return self.transact("mint", to, amount, sender=sender)

    def transfer(self, to: str, amount: int, *, sender: LocalAccount) -> TxReceipt:
        return self.transact("transfer", to, amount, sender=sender)

    def approve(self, spender: str, amount: int, *, sender: LocalAccount) -> TxReceipt:
        return self.transact("approve", spender, amount, sender=sender)

    def sign_permit(
        self,
        owner: LocalAccount,
        spender: str,
        value: int,
        deadline: int,
        *,
        nonce: int | None = None,
    ) -> Permit:
        """Sign an ERC-2612 permit for this token with the owner's key (off-chain)."""
        return sign_permit(
            owner,
            token=self.address,
            chain_id=self.w3.eth.chain_id,
            spender=spender,
            value=value,
            deadline=deadline,
            nonce=self.nonces(owner.address) if nonce is None else nonce,
        )

    def permit(self, permit: Permit, *, sender: LocalAccount) -> TxReceipt:
        return self.transact(
            "permit",
            permit.owner,
            permit.spender,
            permit.value,
            permit.deadline,
            permit.v,
            permit.r,
            permit.s,
            sender=sender,
        )


def sign_permit(
    owner: LocalAccount,
    *,
    token: str,
    chain_id: int,
    spender: str,
    value: int,
    deadline: int,
    nonce: int,
    name: str = TOKEN_NAME,
) -> Permit:
    """ERC-2612 ``Permit(owner,spender,value,nonce,deadline)`` signed as EIP-712 typed data."""
    signed = Account.sign_typed_data(
        owner.key,
        domain_data={
            "name": name,
            "version": "1",
            "chainId": chain_id,
            "verifyingContract": Web3.to_checksum_address(token),
        },
        message_types={
            "Permit": [
                {"name": "owner", "type": "address"},
                {"name": "spender", "type": "address"},
                {"name": "value", "type": "uint256"},
                {"name": "nonce", "type": "uint256"},
                {"name": "deadline", "type": "uint256"},
            ]
        },
        message_data={
            "owner": owner.address,
            "spender": Web3.to_checksum_address(spender),
            "value": value,
            "nonce": nonce,
            "deadline": deadline,
        },
    )
    return Permit(
        owner=owner.address,
        spender=Web3.to_checksum_address(spender),
        value=value,
        deadline=deadline,
        v=signed.v,
        r=signed.r.to_bytes(32, "big"),
        s=signed.s.to_bytes(32, "big"),
    )
