"""Pipelined JetStream publishes whose every answer, acknowledgement or refusal, reaches its future.

nats-py's ``JetStreamContext.publish_async`` leaves the future of a publish the server refuses
with an error (``wrong last msg ID``, ``wrong last sequence``…) pending for ever: the error
escapes its reply handler instead of failing the future (nats-io/nats.py#985, open in 2.16). The
relay relies on those refusals to keep the stream in order, so it reads the answers itself, on a
reply subject of its own under the connection's inbox prefix (``_INBOX.relay.>``, all the relay
user may subscribe to), with nothing but the client's public API.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import api

NO_RESPONDERS = "503"


class Refused(Exception):
    """JetStream did not store the message: it answered with an error, or nothing took it."""

    def __init__(self, description: str, *, code: int | None = None, err_code: int | None = None):
        super().__init__(description)
        self.code = code
        self.err_code = err_code


class Publisher:
    """Publishes to JetStream without waiting; each publish returns the future of its answer.

    The answers come on ``<inbox>.<n>``, one subscription for all of them; an answer for a
    future that was cancelled meanwhile (a batch given up) is dropped."""

    def __init__(self, nc: Client) -> None:
        self._nc = nc
        self._inbox = ""
        self._subscription: Subscription | None = None
        self._waiting: dict[str, asyncio.Future[api.PubAck]] = {}
        self._sent = 0

    async def publish(
        self, subject: str, payload: bytes, headers: Mapping[str, str]
    ) -> asyncio.Future[api.PubAck]:
        if self._subscription is None:
            self._inbox = self._nc.new_inbox()
            self._subscription = await self._nc.subscribe(f"{self._inbox}.*", cb=self._answer)
        self._sent += 1
        token = str(self._sent)
        future: asyncio.Future[api.PubAck] = asyncio.get_running_loop().create_future()
        self._waiting[token] = future
        future.add_done_callback(lambda _: self._waiting.pop(token, None))
        try:
            await self._nc.publish(
                subject, payload, reply=f"{self._inbox}.{token}", headers=dict(headers)
            )
        except BaseException:
            future.cancel()
            raise
        return future

    @property
    def connection(self) -> tuple[bool, int]:
        """Whether the connection is up, and how many times it reconnected: the answers to
        what was published before a reconnect never come."""
        return self._nc.is_connected, int(self._nc.stats["reconnects"])

    @property
    def waiting(self) -> int:
        """Publishes whose answer has not come (nor been given up)."""
        return len(self._waiting)

    async def close(self) -> None:
        subscription, self._subscription = self._subscription, None
        for future in list(self._waiting.values()):
            future.cancel()
        if subscription is not None and not self._nc.is_closed:
            await subscription.unsubscribe()

    async def _answer(self, msg: Msg) -> None:
        future = self._waiting.pop(msg.subject.rsplit(".", 1)[-1], None)
        if future is None or future.done():
            return
        if msg.headers and msg.headers.get(api.Header.STATUS) == NO_RESPONDERS:
            future.set_exception(
                Refused(
                    "no responders: no stream took the subject (JetStream not ready?)", code=503
                )
            )
            return
        try:
            answer = json.loads(msg.data)
            error = answer.get("error")
            if error is not None:
                future.set_exception(
                    Refused(
                        str(error.get("description", error)),
                        code=error.get("code"),
                        err_code=error.get("err_code"),
                    )
                )
            else:
                future.set_result(api.PubAck.from_response(answer))
        except (ValueError, TypeError, AttributeError, KeyError) as problem:
            future.set_exception(Refused(f"unreadable answer from JetStream: {problem}"))
