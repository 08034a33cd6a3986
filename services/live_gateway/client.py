"""``python -m services.live_gateway.client``: follow sessions, My Day, student overviews and
class rosters live, one line each.

    python -m services.live_gateway.client --token "$(.venv/bin/tp-token john)" --my-day
    python -m services.live_gateway.client --token "$TOKEN" --session <session id> --session <…>
    python -m services.live_gateway.client --token "$TOKEN" --student <student id> --class <id>

Reconnects when the gateway goes away, resuming each topic from the last version it saw.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from dataclasses import dataclass, field
from typing import Any

import websockets

from services.live_gateway.settings import LiveClientSettings
from shared.events import OPEN_CATCH_UPS
from shared.readmodels.views import apply_merge_patch
from shared.settings import SettingsError, load

REFUSED = {4401: "the token was refused", 4403: "the token may not act in that centre"}
RETRY_SECONDS = (0.5, 1, 2, 5)
UNAVAILABLE = 503


@dataclass
class Copy:
    """The client's copy of one topic's view."""

    version: int | None = None
    data: dict[str, Any] = field(default_factory=dict)


def describe(view: dict[str, Any]) -> str:
    """One line on the state of a view: a Control Center, a My Day, a student overview, a class
    roster, the catch-up list or one's notifications."""
    if "unread" in view:
        newest = view["items"][0]["title"] if view["items"] else "nothing yet"
        return f"{view['unread']} unread notifications; newest: {newest}"
    if "attendanceSummary" in view:
        marked = ", ".join(
            f"{status} {count}" for status, count in view["attendanceSummary"].items() if count
        )
        open_catch_ups = sum(1 for c in view["catchUps"] if c["status"] in OPEN_CATCH_UPS)
        return (
            f"{view['name']}: {len(view['sessions'])} sessions ({marked or 'none marked'}), "
            f"{open_catch_ups} open catch-ups, {len(view['notes'])} notes"
        )
    if "total" in view:
        overdue = sum(1 for c in view["catchUps"] if c["overdue"])
        return f"{view['total']} catch-ups, {overdue} of the first {len(view['catchUps'])} overdue"
    if "members" in view:
        return (
            f"{view['name']} {view['status']}: {view['enrolled']} members, "
            f"{view['placesLeft']} places left"
        )
    if "students" in view:
        students = ", ".join(
            f"{s['name']} {s['attendance'] or '-'}"
            + (f" (help {s['openHelpRequest']['priority']})" if s["openHelpRequest"] else "")
            for s in view["students"]
        )
        return f"{view['title']} {view['status']}; {students or 'no students'}"
    return (
        f"{len(view['sessions'])} sessions today, {len(view['openHelpRequests'])} open help "
        f"requests, {len(view['catchUps']['overdue'])} overdue catch-ups, "
        f"{len(view['alerts'])} alerts"
    )


def summary(message: dict[str, Any], copy: Copy | None) -> str:
    """The line printed for a message, given the topic's copy after applying it."""
    kind, topic = message["type"], message.get("topic", "")
    if kind == "snapshot" and copy is not None:
        return f"snapshot {topic} v{message['version']}: {describe(copy.data)}"
    if kind == "subscribed" and copy is not None:
        return f"current  {topic} v{message['version']}: {describe(copy.data)}"
    if kind == "delta" and copy is not None:
        changed = ", ".join(sorted(message["patch"])) or "nothing but the version"
        return f"delta    {topic} v{message['version']} ({changed}): {describe(copy.data)}"
    return json.dumps(message)


def subscription(topic: str, copy: Copy) -> str:
    message: dict[str, Any] = {"type": "subscribe", "topic": topic}
    if copy.version is not None:
        message["lastVersion"] = copy.version
    return json.dumps(message)


def take(copies: dict[str, Copy], message: dict[str, Any]) -> None:
    """Bring the local copy of the message's topic up to date."""
    topic = message.get("topic", "")
    copy = copies.get(topic)
    if copy is None:
        return
    if message["type"] == "error" and message["status"] != UNAVAILABLE:
        del copies[topic]  # refused for good: do not ask again after reconnecting
    elif message["type"] == "snapshot":
        copy.version, copy.data = message["version"], message["data"]
    elif message["type"] == "delta":
        copy.version, copy.data = message["version"], apply_merge_patch(copy.data, message["patch"])


SNAPSHOT_MAX_BYTES = 64 * 1024 * 1024
"""The largest frame accepted: a snapshot of a busy day (a tutor's My Day with hundreds of
sessions, a centre's catch-up list) passes the websockets library's 1 MiB default."""


async def follow_once(url: str, token: str, copies: dict[str, Copy]) -> None:
    """One connection: subscribe to every topic, print what arrives, answer pings."""
    async with websockets.connect(
        url,
        additional_headers={"Authorization": f"Bearer {token}"},
        ping_interval=None,
        max_size=SNAPSHOT_MAX_BYTES,
    ) as socket:
        for topic, copy in copies.items():
            await socket.send(subscription(topic, copy))
        async for raw in socket:
            message = json.loads(raw)
            if message["type"] == "ping":
                await socket.send('{"type":"pong"}')
                continue
            take(copies, message)
            print(summary(message, copies.get(message.get("topic", ""))), flush=True)
            if not copies:
                return


async def follow(url: str, token: str, topics: list[str]) -> int:
    """Follow ``topics`` until every one is refused (exit status 1) or the user stops it."""
    copies = {topic: Copy() for topic in topics}
    failures = 0
    while copies:
        try:
            await follow_once(url, token, copies)
            failures = 0
        except websockets.ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd else None
            if code in REFUSED:
                print(f"closed by the gateway ({code}): {REFUSED[code]}", file=sys.stderr)
                return 1
            failures = 0
        except (OSError, websockets.InvalidHandshake, TimeoutError) as error:
            failures += 1
            print(f"cannot reach {url}: {error}", file=sys.stderr)
        if copies:
            await asyncio.sleep(RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)])
    print("nothing left to follow", file=sys.stderr)
    return 1


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--token", required=True)
    parser.add_argument(
        "--url",
        help="the gateway's websocket (default: ws://127.0.0.1:$TUTORPULSE_GATEWAY_PORT/live)",
    )
    parser.add_argument("--session", action="append", default=[], help="a session id to follow")
    parser.add_argument("--my-day", action="store_true", help="follow the tutor's My Day")
    parser.add_argument(
        "--student", action="append", default=[], help="a student id whose overview to follow"
    )
    parser.add_argument(
        "--class",
        dest="classes",
        action="append",
        default=[],
        help="a class id whose roster to follow",
    )
    parser.add_argument(
        "--catch-ups", action="store_true", help="follow the centre's catch-up list"
    )
    parser.add_argument(
        "--notifications", action="store_true", help="follow one's own notifications"
    )
    args = parser.parse_args()
    topics = (
        [f"session:{s}" for s in args.session]
        + (["my-day"] if args.my_day else [])
        + [f"student:{s}" for s in args.student]
        + [f"class:{c}" for c in args.classes]
        + (["catch-ups"] if args.catch_ups else [])
        + (["notifications"] if args.notifications else [])
    )
    if not topics:
        parser.error(
            "follow at least one --session, --my-day, --student, --class, --catch-ups or "
            "--notifications"
        )
    try:
        url = args.url or load(LiveClientSettings).url
    except SettingsError as error:
        parser.error(str(error))
    print(f"following {', '.join(topics)} at {url}", file=sys.stderr)
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(asyncio.run(follow(url, args.token, topics)))


if __name__ == "__main__":
    main()
