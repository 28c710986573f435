"""Typed, frozen configuration of the miner's HTTP server, payment gate and challenge auth.

Parsed once at the entry point (``latent miner run`` flags / environment) and passed
explicitly; nothing below reads the environment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from chain.errors import ConfigError


@dataclass(frozen=True)
class PricingConfig:
    """Per-token prices, in the payment token's base units (18 decimals for SubnetToken).

    The price of a response is
    ``prompt_tokens * per_prompt_token + completion_tokens * per_completion_token``; the
    402 quote names the ceiling ``prompt_tokens * per_prompt_token + max_tokens *
    per_completion_token`` so a renter knows the worst case before sending.
    """

    #: Price of one prompt (input) token.
    per_prompt_token: int = 10**12
    #: Price of one generated (output) token.
    per_completion_token: int = 4 * 10**12

    def price(self, *, prompt_tokens: int, completion_tokens: int) -> int:
        """What a response with these token counts costs."""
        return prompt_tokens * self.per_prompt_token + completion_tokens * self.per_completion_token

    def validate(self) -> None:
        """Raise :class:`ConfigError` on negative prices."""
        if self.per_prompt_token < 0 or self.per_completion_token < 0:
            raise ConfigError("token prices must be >= 0; fix --price-prompt / --price-completion")


@dataclass(frozen=True)
class PaymentConfig:
    """Voucher checks for paid access (DESIGN.md, "Wire protocol")."""

    #: When false every request is served without a voucher (development only); receipts still
    #: carry the formula price.
    require_payment: bool = True
    #: PaymentEscrow address (checksummed) that vouchers are signed for (EIP-712 domain).
    escrow_address: str = ""
    #: ERC-20 (SubnetToken) the miner accepts; channels in any other token get 402. Empty
    #: accepts any token (development only).
    token_address: str = ""
    #: Chain id of the escrow (EIP-712 domain) and of receipts.
    chain_id: int = 31337
    #: Seconds a channel read from the chain is trusted before it is read again. A short TTL
    #: bounds how long a close request or finalisation goes unnoticed.
    channel_cache_ttl_s: float = 10.0
    #: Most channels kept in the in-memory channel cache (least recently used evicted).
    channel_cache_size: int = 4096
    #: File of the latest accepted voucher per channel (what the miner settles); empty keeps
    #: vouchers in memory only (development).
    voucher_book_path: str = ""
    #: Seconds between settlement passes over the voucher book.
    settle_interval_s: float = 60.0
    #: Smallest unsettled amount (token base units) worth a settle transaction on an open
    #: channel; channels whose renter requested close are settled whatever the amount.
    min_settle_amount: int = 10**16


@dataclass(frozen=True)
class AuthConfig:
    """Validator challenge authentication (free access for permit holders)."""

    #: Challenge nonces carry a unix timestamp; nonces further than this from the miner's clock
    #: are rejected, so the set of remembered nonces stays bounded.
    nonce_window_s: float = 120.0
    #: Hard cap on remembered nonces; when full, new challenges get 429 until old ones expire.
    max_tracked_nonces: int = 100_000
    #: Seconds a permit answer from the metagraph is cached per hotkey.
    permit_cache_ttl_s: float = 30.0


@dataclass(frozen=True)
class ServerConfig:
    """HTTP limits and behaviour of the OpenAI-compatible server."""

    #: Interface to bind.
    host: str = "127.0.0.1"
    #: One log line per HTTP request (off by default: CPU on the request path).
    access_log: bool = False
    #: TCP port to bind (0 picks a free one).
    port: int = 8000
    #: Largest accepted request body; larger ones get 413 before any parsing.
    max_body_bytes: int = 1 << 20
    #: Seconds allowed to receive the whole request body; slower clients get 408.
    body_read_timeout_s: float = 10.0
    #: Requests waiting or running in the engine above which new requests get 429.
    max_queue_depth: int = 64
    #: Seconds suggested in the Retry-After header of a 429.
    retry_after_s: int = 1
    #: Cap on ``max_tokens`` per request, on top of the model's context length.
    max_tokens_limit: int = 4096
    #: Proofs larger than this (bytes) are carried in the body only, not in the
    #: ``X-Latent-Proof`` header (keeps headers under common proxy limits).
    proof_header_max_bytes: int = 6144
    #: Name served in ``/v1/models`` and required in requests; ``None`` uses the engine's.
    model_id: str | None = None


@dataclass(frozen=True)
class MinerConfig:
    """Everything ``latent miner run`` needs, one frozen tree."""

    #: Local path (or cached hub id) of the served model; never downloaded at run time.
    model_path: str = ""
    #: Torch device ("cuda", "cpu", ...); ``None`` picks CUDA when present.
    device: str | None = None
    #: Torch dtype name ("bfloat16", "float16", "float32"); ``None`` picks per device.
    dtype: str | None = None
    #: Most sequences the engine decodes together.
    max_batch_size: int = 16
    #: Demo and test only: serve as the cheating miner ``miner.cheats`` names (empty: honest).
    cheat: str = ""
    #: JSON-RPC URL of the chain (escrow, metagraph); empty disables chain reads.
    rpc_url: str = ""
    #: Metagraph contract: validator permits, registration, endpoint publishing. Empty
    #: disables validator challenges and registration checks.
    metagraph_address: str = ""
    #: URL published on-chain as this miner's endpoint (what validators and renters dial);
    #: empty publishes nothing.
    public_url: str = ""
    server: ServerConfig = field(default_factory=ServerConfig)
    pricing: PricingConfig = field(default_factory=PricingConfig)
    payment: PaymentConfig = field(default_factory=PaymentConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first unusable value."""
        self.pricing.validate()
        if not self.model_path:
            raise ConfigError("no model given; pass --model PATH (e.g. from `latent model tiny`)")
        if not 0 <= self.server.port <= 65535:
            raise ConfigError(f"--port {self.server.port} is not a TCP port (0-65535)")
        if self.cheat:
            from miner.cheats import CHEAT_KINDS

            if self.cheat not in CHEAT_KINDS:
                raise ConfigError(
                    f"--cheat {self.cheat!r} is not a cheat; choose one of {', '.join(CHEAT_KINDS)}"
                )
        if self.server.max_body_bytes < 1024:
            raise ConfigError("max body size must be at least 1024 bytes")
        if self.server.body_read_timeout_s <= 0:
            raise ConfigError("body read timeout must be > 0 seconds")
        if self.server.max_queue_depth < 1:
            raise ConfigError("max queue depth must be >= 1")
        if self.payment.require_payment and not self.payment.escrow_address:
            raise ConfigError(
                "paid access needs the escrow address; pass --escrow ADDRESS or --no-payment"
            )
        if self.payment.require_payment and not self.payment.token_address:
            raise ConfigError("paid access needs the payment token; pass --token ADDRESS")
        if self.payment.require_payment and not self.rpc_url:
            raise ConfigError("paid access reads channels on-chain; pass --rpc-url URL")


def default_voucher_book(miner: str) -> Path:
    """Where ``latent miner run`` keeps a miner's vouchers unless told otherwise (and where
    ``latent miner settle`` looks for them)."""
    return Path.home() / ".latent" / "miner" / miner / "vouchers.json"
