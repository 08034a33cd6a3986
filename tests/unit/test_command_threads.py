"""The threads that run commands (``shared.threads``): as many at once as there
are calls, up to the bound, with the caller's context, its errors and its cancellation."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest

from shared.threads import WorkerThreads

REQUEST = contextvars.ContextVar[str]("request")


async def test_concurrent_calls_run_at_once_each_in_its_thread() -> None:
    threads = WorkerThreads(8, "test")
    together = threading.Barrier(5, timeout=10)  # broken (and raising) unless all five meet

    def meet() -> str:
        together.wait()
        return threading.current_thread().name

    names = await asyncio.gather(*(threads.run(meet) for _ in range(5)))
    assert len(set(names)) == 5


async def test_no_more_than_the_bound_run_at_once() -> None:
    threads = WorkerThreads(2, "test")
    lock = threading.Lock()
    running = 0
    most = 0
    release = threading.Event()

    def hold() -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        release.wait(10)
        with lock:
            running -= 1

    calls = [asyncio.ensure_future(threads.run(hold)) for _ in range(4)]
    while True:  # both threads taken
        with lock:
            if running == 2:
                break
        await asyncio.sleep(0.001)
    release.set()
    await asyncio.gather(*calls)
    assert most == 2


async def test_a_call_sees_the_callers_context_and_raises_to_it() -> None:
    threads = WorkerThreads(2, "test")
    REQUEST.set("r-1")
    assert await threads.run(REQUEST.get) == "r-1"

    def refuse() -> None:
        raise LookupError("no such session")

    with pytest.raises(LookupError, match="no such session"):
        await threads.run(refuse)
    assert await threads.run(lambda: 40 + 2) == 42  # the thread goes on


async def test_a_call_cancelled_before_a_thread_took_it_is_not_run() -> None:
    threads = WorkerThreads(1, "test")
    release = threading.Event()
    ran: list[str] = []

    def first() -> None:
        release.wait(10)
        ran.append("first")

    busy = asyncio.ensure_future(threads.run(first))
    waiting = asyncio.ensure_future(threads.run(lambda: ran.append("cancelled")))
    await asyncio.sleep(0)
    waiting.cancel()
    release.set()
    await busy
    await threads.run(lambda: ran.append("third"))
    assert ran == ["first", "third"]
    assert waiting.cancelled()
