"""The subnet dashboard: a local web page with the metagraph, miner quality and prices, epoch
history charts, and escrow channels and payments.

``serve_dashboard`` (an async context manager yielding the URL) runs it inside any asyncio
program; ``latent dashboard --network NAME`` serves it for a deployment. The page model is
built by pure functions in :mod:`latent.dashboard.model`.
"""

from latent.dashboard.app import Dashboard, create_app, serve_dashboard

__all__ = ["Dashboard", "create_app", "serve_dashboard"]
