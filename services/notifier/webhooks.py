"""Webhook calls: a JSON body signed with HMAC-SHA256, and how a receiver checks it.

Headers of every call:

* ``X-Tutorpulse-Delivery``: the notification's id; the same on every retry, so a receiver
  that saw it already can ignore it;
* ``X-Tutorpulse-Timestamp``: Unix seconds when this try was signed;
* ``X-Tutorpulse-Signature``: ``v1=<hex>``, HMAC-SHA256 with the centre's webhook secret over
  ``<timestamp>.<body>`` (the raw bytes of the body).

A receiver recomputes the signature over the timestamp header and the raw body, compares it in
constant time, and refuses a timestamp far from its own clock (:func:`verify`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import socket
import time
from typing import Final
from urllib.parse import urlsplit

import httpx
import msgspec

from shared.notifications import Notification

DELIVERY_HEADER: Final = "X-Tutorpulse-Delivery"
TIMESTAMP_HEADER: Final = "X-Tutorpulse-Timestamp"
SIGNATURE_HEADER: Final = "X-Tutorpulse-Signature"
TOLERANCE_SECONDS: Final = 300


class WebhookBody(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """What a webhook receives."""

    delivery_id: str
    notification: Notification


class DeliveryFailed(Exception):
    """The receiver did not take it (an error, a timeout, a status other than 2xx)."""


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"v1={mac.hexdigest()}"


def verify(
    secret: str,
    body: bytes,
    timestamp: str,
    signed: str,
    *,
    now: float | None = None,
    tolerance: int = TOLERANCE_SECONDS,
) -> bool:
    """Whether ``body`` with these headers was signed with ``secret`` within ``tolerance``
    seconds of ``now`` (what a receiver runs)."""
    try:
        moment = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - moment) > tolerance:
        return False
    return hmac.compare_digest(signature(secret, moment, body), signed)


def request(
    notification: Notification, secret: str, *, now: float | None = None
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a call carrying ``notification``."""
    body = msgspec.json.encode(
        WebhookBody(delivery_id=notification.notification_id, notification=notification)
    )
    timestamp = int(time.time() if now is None else now)
    return body, {
        "Content-Type": "application/json",
        DELIVERY_HEADER: notification.notification_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, body),
    }


async def public_host(url: str) -> None:
    """:class:`DeliveryFailed` unless every address ``url``'s host resolves to is a public one
    (a centre's webhook must not reach the notifier's own network). The check is made before
    each call; a host whose DNS answer changes between the check and the call is not caught."""
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    try:
        found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as error:
        raise DeliveryFailed(f"cannot resolve {host!r}: {error}") from error
    for *_, address in found:
        ip = ipaddress.ip_address(str(address[0]).split("%")[0])
        if not ip.is_global:
            raise DeliveryFailed(f"{host!r} is a private address ({ip}): not called")


async def call(
    client: httpx.AsyncClient,
    url: str,
    notification: Notification,
    secret: str,
    *,
    private_allowed: bool = False,
) -> int:
    """POST ``notification`` to ``url``; its status, or :class:`DeliveryFailed`."""
    if not private_allowed:
        await public_host(url)
    body, headers = request(notification, secret)
    try:
        answer = await client.post(url, content=body, headers=headers)
    except httpx.HTTPError as error:
        raise DeliveryFailed(f"{type(error).__name__}: {error}") from error
    if not 200 <= answer.status_code < 300:
        raise DeliveryFailed(f"the receiver answered {answer.status_code}")
    return answer.status_code
