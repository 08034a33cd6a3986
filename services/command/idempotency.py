"""Idempotency keys: a retried command returns its first result and appends nothing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid5

from services.command.domain.aggregate import Aggregate, applies
from services.command.domain.directory import DIRECTORY
from shared.events import CommandReceiptRecorded
from shared.tenancy import Actor

MAX_KEY_LENGTH = 200


@dataclass(frozen=True)
class IdempotencyKey:
    key: str
    fingerprint: str
    """A digest of the request, so a key reused for a different request is refused."""


class KeyReused(Exception):
    """The Idempotency-Key was already used for a different request (HTTP 422)."""


def receipt_id(actor: Actor, key: str) -> UUID:
    return uuid5(DIRECTORY, f"receipt:{actor.centre_id}:{actor.user_id}:{key}")


class CommandReceipt(Aggregate):
    fingerprint: str
    status_code: int
    body: dict[str, Any]

    @classmethod
    def record(
        cls, actor: Actor, key: IdempotencyKey, status_code: int, body: dict[str, Any]
    ) -> CommandReceipt:
        receipt = cls(receipt_id(actor, key.key), actor.centre_id)
        receipt._record(
            CommandReceiptRecorded,
            actor,
            idempotency_key=key.key,
            fingerprint=key.fingerprint,
            status_code=status_code,
            body=body,
        )
        return receipt

    def matches(self, key: IdempotencyKey) -> bool:
        return self.fingerprint == key.fingerprint

    @applies(CommandReceiptRecorded)
    def _recorded(self, event: CommandReceiptRecorded) -> None:
        self.fingerprint = event.fingerprint
        self.status_code = event.status_code
        self.body = dict(event.body)
