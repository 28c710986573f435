"""Prometheus metrics of one miner server (own registry, so several apps can share a process)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class MinerMetrics:
    """Counters and histograms exported on ``/metrics``.

    - ``latent_miner_requests_total{endpoint,status}``: HTTP requests by route and status;
    - ``latent_miner_request_latency_seconds{endpoint}``: time from request to last byte;
    - ``latent_miner_time_to_first_token_seconds``: engine time to first generated token;
    - ``latent_miner_prompt_tokens_total`` / ``latent_miner_completion_tokens_total``;
    - ``latent_miner_proof_bytes_total``: bytes of proofs returned;
    - ``latent_miner_earnings_total``: sum of accepted voucher increments, in token base units
      (a float counter: exact to 2**53 base units, enough to plot; settle from the voucher book);
    - ``latent_miner_paid_requests_total{access}``: completions by access ("paid",
      "validator", "open");
    - ``latent_miner_queue_depth``: engine requests waiting or running, read at scrape time.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "latent_miner_requests",
            "HTTP requests by endpoint and status code.",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "latent_miner_request_latency_seconds",
            "Seconds from request start to the last response byte.",
            ["endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.time_to_first_token = Histogram(
            "latent_miner_time_to_first_token_seconds",
            "Engine seconds until the first generated token.",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.prompt_tokens = Counter(
            "latent_miner_prompt_tokens", "Prompt tokens processed.", registry=self.registry
        )
        self.completion_tokens = Counter(
            "latent_miner_completion_tokens", "Tokens generated.", registry=self.registry
        )
        self.proof_bytes = Counter(
            "latent_miner_proof_bytes",
            "Bytes of inference proofs returned.",
            registry=self.registry,
        )
        self.earnings = Counter(
            "latent_miner_earnings",
            "Sum of accepted voucher increments, in payment-token base units.",
            registry=self.registry,
        )
        self.completions = Counter(
            "latent_miner_paid_requests",
            "Completions served, by access kind (paid, validator, open).",
            ["access"],
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "latent_miner_queue_depth",
            "Engine requests waiting or running.",
            registry=self.registry,
        )

    def watch_queue_depth(self, read: Callable[[], int]) -> None:
        """Report ``read()`` as the queue depth at each scrape."""
        self.queue_depth.set_function(lambda: float(read()))

    def render(self) -> bytes:
        """The text exposition format of every metric."""
        return generate_latest(self.registry)
