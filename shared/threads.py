"""Threads that run blocking calls for an event loop, and the hop there and back.

A command blocks on PostgreSQL, so each runs in a thread of its own (the command service,
``services.command.http.adapter``); the projection service applies each batch in a thread of
its own (``services.projections.service``). ``loop.run_in_executor`` on a
``ThreadPoolExecutor`` makes that hop with a ``concurrent.futures.Future`` (a condition
variable and its lock), a work item, the executor's idle semaphore, and an asyncio future
chained to the first by callbacks both ways; in a profile of the command service under the
bench's HTTP load the hop was about 9 % of the service's CPU. :class:`WorkerThreads` does the
same with a ``queue.SimpleQueue`` of calls and one asyncio future per call, which the thread
settles with ``call_soon_threadsafe``: 12-13 against 26-35 µs of CPU per hop one at a time, 2-3
against 15-24 µs with 8 to 32 at once (a micro-benchmark on 2 cores, uvloop). anyio's
``to_thread.run_sync`` costs more still (its cancel scope, limiter and queue).

Like the executor: threads are started as calls arrive, up to ``size``, one more whenever no
started thread is idle; a call runs with the caller's context variables (its log bindings); a
call whose caller was cancelled before a thread took it is not run; what the call raises is
raised to the caller. The threads are daemons: the server lets its requests finish before it
stops, so none is cut short by the process's end.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections.abc import Callable
from queue import SimpleQueue
from typing import Any, TypeVar

T = TypeVar("T")

_Call = tuple[
    asyncio.AbstractEventLoop, asyncio.Future[Any], contextvars.Context, Callable[[], Any]
]


class WorkerThreads:
    """Up to ``size`` threads running calls for the event loop (see the module)."""

    def __init__(self, size: int, name: str) -> None:
        self.size = size
        self._name = name
        self._calls: SimpleQueue[_Call] = SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        """Started threads waiting for a call that no call queued so far has claimed."""
        self._started = 0

    async def run(self, call: Callable[[], T]) -> T:
        """``call()`` in one of the threads, with this task's context variables."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._calls.put((loop, future, contextvars.copy_context(), call))
        number = 0
        with self._lock:
            if self._idle:
                self._idle -= 1  # that thread takes this call
            elif self._started < self.size:
                self._started += 1
                number = self._started
            # else the next thread to finish takes it
        if number:
            threading.Thread(target=self._work, name=f"{self._name}_{number}", daemon=True).start()
        return await future

    def _work(self) -> None:
        calls = self._calls
        while True:
            _run(*calls.get())
            with self._lock:
                self._idle += 1


def _run(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[Any],
    context: contextvars.Context,
    call: Callable[[], Any],
) -> None:
    if future.cancelled():  # its caller gave up before a thread took it
        return
    try:
        result = context.run(call)
    except BaseException as error:  # the caller's to raise, as with the executor
        _settle(loop, _failed, future, error)
    else:
        _settle(loop, _done, future, result)


def _settle(
    loop: asyncio.AbstractEventLoop,
    how: Callable[[asyncio.Future[Any], Any], None],
    future: asyncio.Future[Any],
    value: Any,
) -> None:
    with contextlib.suppress(RuntimeError):  # a loop closed meanwhile: nobody waits for it
        loop.call_soon_threadsafe(how, future, value)


def _done(future: asyncio.Future[Any], result: Any) -> None:
    if not future.cancelled():
        future.set_result(result)


def _failed(future: asyncio.Future[Any], error: BaseException) -> None:
    if not future.cancelled():
        future.set_exception(error)


async def outlasting_cancellation(running: asyncio.Future[T]) -> T:
    """What ``running`` (a call in a thread) gives. A caller cancelled meanwhile is cancelled
    only once the call has finished, so nothing it started (a transaction, a round of reads)
    outlives whoever stops the caller; what the call raised then goes unheard."""
    try:
        return await asyncio.shield(running)
    except asyncio.CancelledError:
        while not running.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([running])
        if not running.cancelled():
            running.exception()  # retrieved, so that it is not logged as never retrieved
        raise
