"""Latent miner: inference engine, proofs of inference, OpenAI-compatible server."""
