"""Stable identifiers of people and centres, the same in every service and in tokens."""

from __future__ import annotations

from uuid import UUID, uuid5

DIRECTORY = UUID("6f1c6a52-3f5e-4d0e-9b57-0c7d1f1d2a10")


def person_id(centre_id: str, email: str) -> UUID:
    """A person is identified by their e-mail within a centre, so it cannot be registered twice."""
    return uuid5(DIRECTORY, f"person:{centre_id}:{email.strip().lower()}")


def centre_aggregate_id(centre_id: str) -> UUID:
    return uuid5(DIRECTORY, f"centre:{centre_id}")
