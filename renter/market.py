"""Which miners serve what, at which price: the metagraph's endpoints + each miner's
``/v1/models`` card.

Miners publish prices in their model card (``miner.server``): ``pricing`` per token in whole
tokens (OpenRouter's shape), ``context_length``, and exact base-unit prices under ``latent``.
No contract stores prices: the proxy reads the on-chain endpoint of every registered uid and
asks the miner. A card whose ``owned_by`` is not the uid's hotkey is ignored (an endpoint
answering for someone else cannot get paid: receipts must be signed by the channel's miner).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, replace
from typing import Any, Protocol

import httpx
from eth_utils import is_address, to_checksum_address
from web3.exceptions import Web3Exception

from chain.errors import ConfigError, LatentError
from chain.metagraph import MetagraphReader
from chain.token import wire_price

log = logging.getLogger("latent.renter")


class MarketError(LatentError):
    """A model card is malformed or the miner list cannot be read."""


@dataclass(frozen=True)
class MinerOffer:
    """One miner's offer for one model."""

    hotkey: str
    uid: int | None
    endpoint: str
    model: str
    context_length: int
    #: Base units per prompt token.
    price_prompt: int
    #: Base units per completion token.
    price_completion: int
    #: On-chain incentive (u16 fixed point, 0..65535), 0 when unknown.
    incentive: int = 0
    #: Seconds the ``/v1/models`` probe took.
    probe_s: float = 0.0

    def max_price(self, prompt_tokens: int, max_tokens: int) -> int:
        """Worst-case price of a request at this miner's rates."""
        return prompt_tokens * self.price_prompt + max_tokens * self.price_completion

    def price(self, prompt_tokens: int, completion_tokens: int) -> int:
        """What a response with these token counts costs at the advertised rates."""
        return prompt_tokens * self.price_prompt + completion_tokens * self.price_completion


def _base_units(card: dict[str, Any], latent_key: str, pricing_key: str) -> int:
    latent = card.get("latent")
    if isinstance(latent, dict) and latent_key in latent:
        return int(str(latent[latent_key]))
    pricing = card.get("pricing")
    if not isinstance(pricing, dict) or pricing_key not in pricing:
        raise MarketError(f"model card has no price for {pricing_key} tokens")
    try:
        return wire_price(str(pricing[pricing_key]))
    except ConfigError as exc:
        raise MarketError(f"model card price {pricing[pricing_key]!r}: {exc}") from None


def offers_from_models(
    payload: Any, *, endpoint: str, hotkey: str | None, uid: int | None, incentive: int = 0
) -> list[MinerOffer]:
    """Parse a ``/v1/models`` answer into offers (cards of other owners are skipped)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
        raise MarketError(f"{endpoint}/v1/models is not an OpenAI model list")
    offers = []
    for card in payload["data"]:
        if not isinstance(card, dict):
            continue
        owner = card.get("owned_by")
        if not isinstance(owner, str) or not is_address(owner):
            continue
        owner = to_checksum_address(owner)
        if hotkey is not None and owner != to_checksum_address(hotkey):
            log.warning("%s serves a card of %s, not of uid %s's hotkey", endpoint, owner, uid)
            continue
        try:
            context = int(card.get("context_length") or card.get("max_context") or 0)
            offers.append(
                MinerOffer(
                    hotkey=owner,
                    uid=uid,
                    endpoint=endpoint.rstrip("/"),
                    model=str(card["id"]),
                    context_length=context,
                    price_prompt=_base_units(card, "price_per_prompt_token", "prompt"),
                    price_completion=_base_units(card, "price_per_completion_token", "completion"),
                    incentive=incentive,
                )
            )
        except (KeyError, ValueError, MarketError) as exc:
            log.warning("skipping a malformed model card from %s: %s", endpoint, exc)
    return offers


class MinerSource(Protocol):
    """Lists the miners' current offers."""

    async def offers(self) -> list[MinerOffer]: ...


async def probe_models(
    http: httpx.AsyncClient,
    endpoint: str,
    *,
    hotkey: str | None,
    uid: int | None,
    incentive: int = 0,
    timeout_s: float = 3.0,
) -> list[MinerOffer]:
    """GET ``{endpoint}/v1/models`` and parse it; [] when the miner does not answer."""
    started = time.perf_counter()
    try:
        response = await http.get(endpoint.rstrip("/") + "/v1/models", timeout=timeout_s)
        response.raise_for_status()
        payload = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        log.info("miner %s at %s does not answer /v1/models: %s", hotkey, endpoint, exc)
        return []
    elapsed = time.perf_counter() - started
    try:
        offers = offers_from_models(
            payload, endpoint=endpoint, hotkey=hotkey, uid=uid, incentive=incentive
        )
    except MarketError as exc:
        log.info("miner %s: %s", hotkey, exc)
        return []
    return [replace(o, probe_s=elapsed) for o in offers]


class MetagraphMinerSource:
    """Offers of every uid with an endpoint on the Metagraph (one snapshot, then the cards
    in parallel)."""

    def __init__(self, reader: MetagraphReader, http: httpx.AsyncClient) -> None:
        self._reader = reader
        self._http = http

    async def offers(self) -> list[MinerOffer]:
        try:
            graph = await asyncio.to_thread(self._reader.snapshot)
        except (OSError, ValueError, Web3Exception) as exc:
            raise MarketError(f"cannot read the metagraph: {exc}") from exc
        probes = [
            probe_models(
                self._http,
                info.endpoint,
                hotkey=info.hotkey,
                uid=info.uid,
                incentive=info.incentive,
            )
            for info in graph.neurons()
            if info.endpoint.startswith(("http://", "https://"))
        ]
        results = await asyncio.gather(*probes)
        return [offer for found in results for offer in found]


class StaticMinerSource:
    """Fixed endpoints (no metagraph): development and benchmarks."""

    def __init__(self, endpoints: list[str], http: httpx.AsyncClient) -> None:
        self._endpoints = endpoints
        self._http = http

    async def offers(self) -> list[MinerOffer]:
        results = await asyncio.gather(
            *(probe_models(self._http, e, hotkey=None, uid=None) for e in self._endpoints)
        )
        return [offer for found in results for offer in found]


__all__ = [
    "MarketError",
    "MetagraphMinerSource",
    "MinerOffer",
    "MinerSource",
    "StaticMinerSource",
    "offers_from_models",
    "probe_models",
]
