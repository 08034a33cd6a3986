"""Litestar plumbing shared by the HTTP services: auth, problem details, health and metrics."""
