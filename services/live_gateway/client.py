"""``python -m services.live_gateway.client``: follow sessions and My Day live, one line per message.

    python -m services.live_gateway.client --token "$(.venv/bin/tp-token john)" --my-day
    python -m services.live_gateway.client --token "$TOKEN" --session <session id> --session <…>
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from typing import Any

import websockets

from services.projections.views import apply_merge_patch


def summary(message: dict[str, Any]) -> str:
    kind, topic, version = message["type"], message.get("topic", ""), message.get("version", "")
    if kind == "snapshot":
        data = message["data"]
        if "students" in data:
            return f"snapshot {topic} v{version}: {data['title']} {data['status']}, {len(data['students'])} students"
        return (f"snapshot {topic} v{version}: {len(data['sessions'])} sessions today, "
                f"{len(data['openHelpRequests'])} open help requests, {len(data['alerts'])} alerts")
    if kind == "delta":
        return f"delta    {topic} v{version}: {json.dumps(message['patch'], separators=(',', ':'))[:300]}"
    return json.dumps(message)


async def follow(url: str, token: str, topics: list[str]) -> None:
    views: dict[str, Any] = {}
    async with websockets.connect(f"{url}?token={token}", ping_interval=None) as socket:
        for topic in topics:
            await socket.send(json.dumps({"type": "subscribe", "topic": topic}))
        async for raw in socket:
            message = json.loads(raw)
            if message["type"] == "ping":
                await socket.send('{"type":"pong"}')
                continue
            if message["type"] == "snapshot":
                views[message["topic"]] = message["data"]
            elif message["type"] == "delta":
                views[message["topic"]] = apply_merge_patch(views.get(message["topic"], {}), message["patch"])
            print(summary(message), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--token", required=True)
    parser.add_argument("--url", default="ws://127.0.0.1:8013/live")
    parser.add_argument("--session", action="append", default=[], help="a session id to follow")
    parser.add_argument("--my-day", action="store_true", help="follow the tutor's My Day")
    args = parser.parse_args()
    topics = [f"session:{s}" for s in args.session] + (["my-day"] if args.my_day else [])
    if not topics:
        parser.error("follow at least one --session or --my-day")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(follow(args.url, args.token, topics))


if __name__ == "__main__":
    main()
