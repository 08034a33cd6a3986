"""One kind of timeout from a JetStream pull fetch.

nats-py 2.16's ``PullSubscription.fetch`` raises a bare ``asyncio.TimeoutError`` when its
deadline runs out between the two pull requests it makes (the no-wait probe answered "no
messages" just before the deadline), and ``nats.errors.TimeoutError`` on every other timeout.
FastStream 0.7's pull loop suppresses only the latter: the bare one ended the scheduler's
consuming task, and FastStream's supervisor logged an ERROR with a traceback before starting it
again. :func:`install` makes ``fetch`` raise ``nats.errors.TimeoutError`` for both (a subclass
of the built-in ``TimeoutError``, so code that catches that is unaffected).
"""

from __future__ import annotations

from typing import Any

import nats.errors
from nats.aio.msg import Msg
from nats.js.client import JetStreamContext

_PullSubscription = JetStreamContext.PullSubscription
_fetch = _PullSubscription.fetch


async def _fetch_with_one_timeout(
    self: JetStreamContext.PullSubscription, *args: Any, **kwargs: Any
) -> list[Msg]:
    try:
        return await _fetch(self, *args, **kwargs)
    except nats.errors.TimeoutError:
        raise
    except TimeoutError as error:
        raise nats.errors.TimeoutError from error


def install() -> None:
    """Make every pull fetch of this process raise ``nats.errors.TimeoutError`` on a timeout."""
    _PullSubscription.fetch = _fetch_with_one_timeout  # type: ignore[method-assign]
