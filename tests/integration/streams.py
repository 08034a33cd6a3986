"""Reading back what reached JetStream, to compare it with the event store."""

from __future__ import annotations

from dataclasses import dataclass

from nats.js import JetStreamContext

from shared.events import STREAM_NAME


@dataclass(frozen=True)
class StreamedEvent:
    sequence: int
    subject: str
    msg_id: str
    notification_id: int
    data: bytes


async def read_stream(js: JetStreamContext, stream: str = STREAM_NAME) -> list[StreamedEvent]:
    info = await js.stream_info(stream)
    found: list[StreamedEvent] = []
    for sequence in range(info.state.first_seq, info.state.last_seq + 1):
        message = await js.get_msg(stream, sequence)
        headers = message.headers or {}
        found.append(
            StreamedEvent(
                sequence=sequence,
                subject=message.subject or "",
                msg_id=headers["Nats-Msg-Id"],
                notification_id=int(headers["Tp-Notification-Id"]),
                data=message.data or b"",
            )
        )
    return found
