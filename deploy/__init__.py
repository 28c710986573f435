"""Deployment: network configs, the deployment plan, idempotent deploys and manifests."""
