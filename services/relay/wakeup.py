"""What wakes the relay when a command commits, so that it does not wait for its next poll.

On PostgreSQL every commit of events runs ``NOTIFY tutorpulse_events`` in its transaction (the
eventsourcing library's recorder does, and so does the group commit), and PostgreSQL delivers
it to every listening connection once the transaction has committed. :class:`PostgresWakeup`
keeps one connection of its own that ``LISTEN``s on that channel and rings once for the
notifications each read of its socket brings; the relay reads the log as soon as it rings. A
notification can be lost (the listening connection drops, PostgreSQL restarts): the relay still
polls, only less often, and after the connection is opened again the wake-up rings once, in
case a commit fell in the gap.

A frozen server (its connections open, nothing answering) sends no notification, which the
relay's reads notice (they fail after the store timeout); the listening connection itself waits
for nothing meanwhile and carries on once the server runs. Only its ``LISTEN`` waits for an
answer: one not answered within the store timeout has its connection shut down, and the
wake-up connects again as after any loss. A host cut off from the network is noticed by the
connection's TCP keepalives (about 11 s).

SQLite has no notifications: the relay polls, as before. When it shares its process with the
commands (:class:`InProcess`), a commit made through the same store rings it at once; commits of
other processes are still found by the poll.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import psycopg
import structlog
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg import sql

from shared.eventstore import EventStore
from shared.eventstore.postgres import abort, deadline
from shared.eventstore.store import postgres_conninfo
from shared.http.operations import describe

log = structlog.get_logger(__name__)

RECONNECT_SECONDS = (0.1, 0.5, 1.0, 2.0, 5.0)
"""Pauses between attempts to open the listening connection again (the last one repeats)."""


class Wakeup:
    """Rings when events may have been committed. This one never rings: the relay polls."""

    def __init__(self) -> None:
        self._rung = asyncio.Event()

    @property
    def listening(self) -> bool:
        """Whether a commit rings it now (otherwise only the poll finds new events)."""
        return False

    def clear(self) -> None:
        """Forget earlier rings: called just before the relay reads the log, so a commit that
        rings after this is not missed, and one the read already found does not ring again."""
        self._rung.clear()

    def ring(self) -> None:
        self._rung.set()

    async def wait(self, timeout: float) -> bool:
        """Until it rings (True) or ``timeout`` seconds have passed (False)."""
        if timeout <= 0:
            return self._rung.is_set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._rung.wait(), timeout)
            return True
        return False

    async def start(self) -> None:
        """Begin listening (in the background; failures are retried there)."""

    async def stop(self) -> None:
        """Stop listening and close what it opened."""


class Polling(Wakeup):
    """For a store without notifications (SQLite)."""


class InProcess(Wakeup):
    """Rung by the commits this process makes through ``store`` (not listening: commits of
    other processes are found by polling)."""

    def __init__(self, store: EventStore) -> None:
        super().__init__()
        self._store = store
        self._forget: Callable[[], None] | None = None

    async def start(self) -> None:
        if self._forget is not None:
            return
        loop = asyncio.get_running_loop()

        def committed() -> None:  # in the committing thread
            with contextlib.suppress(RuntimeError):  # the relay's loop has closed
                loop.call_soon_threadsafe(self.ring)

        self._forget = self._store.when_committed(committed)

    async def stop(self) -> None:
        forget, self._forget = self._forget, None
        if forget is not None:
            forget()


class PostgresWakeup(Wakeup):
    """``LISTEN`` on the events table's channel on a connection of its own."""

    def __init__(self, conninfo: str, channel: str, timeout: float = 3.0) -> None:
        """``timeout``: the longest its ``LISTEN`` waits for the server."""
        super().__init__()
        self._conninfo = conninfo
        self._channel = channel
        self._timeout = timeout
        self._task: asyncio.Task[None] | None = None
        self._connected = False
        self.connections = 0
        """How many times it has begun listening."""

    @property
    def listening(self) -> bool:
        return self._connected

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._listen_forever(), name="relay-wakeup")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _listen_forever(self) -> None:
        failures = 0
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True
                ) as connection:
                    with deadline(self._timeout, lambda: abort(connection)):
                        await connection.execute(
                            sql.SQL("LISTEN {}").format(sql.Identifier(self._channel))
                        )
                    self._connected = True
                    self.connections += 1
                    if failures:
                        log.info("relay.wakeup_listening", channel=self._channel)
                    failures = 0
                    self.ring()  # a commit may have fallen between the last poll and now
                    await self._ring_at_notifications(connection)
            except psycopg.Error as error:
                if not failures:
                    log.warning("relay.wakeup_lost", error=describe(error), polling=True)
                failures += 1
            finally:
                self._connected = False
            await asyncio.sleep(
                RECONNECT_SECONDS[min(max(failures, 1), len(RECONNECT_SECONDS)) - 1]
            )

    async def _ring_at_notifications(self, connection: psycopg.AsyncConnection[Any]) -> None:
        """Ring once for all the notifications each read of the socket brings, until the
        connection fails (raised).

        libpq's own calls, on the event loop's watch of the socket: psycopg's ``notifies()``
        cost about 80 µs of CPU per notification (a generator, a wait registered and
        removed each time), this 25-35 µs (in-process, a notification every 2 ms, uvloop)."""
        loop = asyncio.get_running_loop()
        pgconn = connection.pgconn
        lost: asyncio.Future[None] = loop.create_future()

        def readable() -> None:
            try:
                pgconn.consume_input()  # raises once the connection has failed
            except psycopg.Error as error:
                if not lost.done():
                    lost.set_exception(error)
                return
            notified = False
            while pgconn.notifies() is not None:
                notified = True
            if notified:
                self.ring()

        socket = pgconn.socket
        loop.add_reader(socket, readable)
        try:
            await lost
        finally:
            loop.remove_reader(socket)


def wakeup_for(store: EventStore, timeout: float = 3.0) -> Wakeup:
    """Notifications of the store's commits where it has them (``timeout``: the longest its
    ``LISTEN`` waits for the server), else polling, woken by the commits of this process."""
    recorder = store.recorder
    if isinstance(recorder, PostgresApplicationRecorder):
        return PostgresWakeup(postgres_conninfo(store.env), recorder.channel_name, timeout)
    return InProcess(store)
