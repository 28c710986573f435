"""Typed, frozen configuration of the renter proxy (``latent renter proxy``).

Parsed once at the entry point (CLI flags) and passed explicitly; nothing below reads the
environment. Amounts are in the payment token's base units (18 decimals for SubnetToken).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from chain.errors import ConfigError


@dataclass(frozen=True)
class SelectionConfig:
    """Weights of the miner selection policy (``renter.selection``)."""

    #: Exponent on the latency ratio (observed seconds per request over the fastest
    #: candidate's). 0 ignores latency; 1 trades price and latency one for one.
    latency_weight: float = 0.5
    #: How much on-chain incentive (normalised to the best candidate's) lowers a miner's
    #: score: ``score /= 1 + incentive_weight * incentive``.
    incentive_weight: float = 0.25
    #: Seconds a miner that failed (connection, timeout, 5xx) is skipped before it is tried
    #: again.
    failure_cooldown_s: float = 30.0
    #: Smoothing of the per-miner latency EMA (weight of the newest observation).
    latency_ema_alpha: float = 0.2


@dataclass(frozen=True)
class ChannelConfig:
    """How the proxy funds escrow channels."""

    #: Deposit of a newly opened channel (base units).
    deposit: int = 10**18
    #: Top-up added when a channel runs low (base units); at least what the request needs.
    top_up: int = 10**18
    #: Most channels per miner: each carries one request at a time (the miner's rule), so
    #: this is the concurrency the proxy can put on one miner.
    per_miner: int = 4
    #: Open channels with an ERC-2612 permit (one transaction) when the token supports it,
    #: else approve + open.
    use_permit: bool = True


@dataclass(frozen=True)
class SpendConfig:
    """Spending caps (base units); 0 means no cap."""

    #: Most the proxy may spend (receipt prices) in any rolling hour.
    per_hour: int = 0
    #: Most the proxy may spend in total (over the state directory's whole history).
    total: int = 0


@dataclass(frozen=True)
class ProxyConfig:
    """Everything ``latent renter proxy`` needs, one frozen tree."""

    #: Directory of the channel ledgers, the receipt log and miner statistics.
    state_dir: Path = field(default_factory=lambda: Path.home() / ".latent" / "renter")
    #: Interface to bind. API keys are optional on 127.0.0.1 and required elsewhere.
    host: str = "127.0.0.1"
    #: TCP port to bind (0 picks a free one).
    port: int = 8080
    #: Accepted bearer tokens (``Authorization: Bearer KEY``); empty accepts any client.
    api_keys: tuple[str, ...] = ()
    #: Only miners serving this model are used (``None``: whatever the client names).
    model: str | None = None
    #: Highest accepted price per prompt token and per completion token (base units);
    #: ``None`` accepts any price. Miners above it are never picked; a request no miner can
    #: serve within it gets a 400.
    max_price_per_token: int | None = None
    #: Fraction of answers with receipts forwarded to the validators for re-checking.
    recheck_rate: float = 0.05
    #: Validator base URLs that receive re-check submissions (``POST {url}/v1/recheck``).
    validators: tuple[str, ...] = ()
    #: Seconds allowed for a miner's whole response (non-streamed) or between two streamed
    #: chunks before the miner counts as failed and the request is retried elsewhere.
    request_timeout_s: float = 60.0
    #: Seconds to connect to a miner.
    connect_timeout_s: float = 3.0
    #: Most miners tried for one request.
    max_attempts: int = 3
    #: Seconds a request waits for a free channel before the proxy answers 429.
    busy_wait_s: float = 2.0
    #: Seconds suggested in ``Retry-After`` when every miner is busy.
    retry_after_s: int = 1
    #: Seconds between refreshes of the miner list (metagraph + ``/v1/models``).
    refresh_interval_s: float = 30.0
    #: Largest accepted request body (bytes): 413 before more is read.
    max_body_bytes: int = 1 << 20
    #: Seconds allowed to receive a request body; slower clients get 408.
    body_read_timeout_s: float = 10.0
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    channels: ChannelConfig = field(default_factory=ChannelConfig)
    spend: SpendConfig = field(default_factory=SpendConfig)

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first unusable value."""
        if not 0.0 <= self.recheck_rate <= 1.0:
            raise ConfigError("--recheck-rate must be between 0 and 1")
        if self.max_attempts < 1:
            raise ConfigError("--max-attempts must be >= 1")
        if self.channels.per_miner < 1:
            raise ConfigError("--channels-per-miner must be >= 1")
        if self.channels.deposit <= 0 or self.channels.top_up <= 0:
            raise ConfigError("--deposit and --top-up must be positive")
        if self.max_price_per_token is not None and self.max_price_per_token < 0:
            raise ConfigError("--max-price must be >= 0")
        if self.host not in ("127.0.0.1", "localhost", "::1") and not self.api_keys:
            raise ConfigError(
                f"the proxy spends your tokens: binding {self.host} needs --api-key KEY "
                "(or bind 127.0.0.1)"
            )


__all__ = ["ChannelConfig", "ProxyConfig", "SelectionConfig", "SpendConfig"]
