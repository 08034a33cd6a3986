"""Frames written straight to a socket: the same bytes as the ordinary path, in the order they
were offered, and queued whenever the socket cannot take them at once."""

from __future__ import annotations

from uuid import uuid4

from websockets.frames import Frame as WebSocketFrame
from websockets.frames import Opcode
from websockets.protocol import State
from websockets.server import ServerProtocol

from services.live_gateway import protocol
from services.live_gateway.hub import Connection, Frame, Topic, text_frame
from shared.readmodels.documents import SESSION
from shared.tenancy import Actor, Role


def tutor() -> Actor:
    return Actor(user_id=uuid4(), role=Role.TEACHER, centre_id="c1")


class Socket:
    """A socket's direct writer: takes frames while ``open``, records what it wrote."""

    def __init__(self) -> None:
        self.open = True
        self.written: list[Frame] = []

    def __call__(self, frame: Frame) -> bool:
        if self.open:
            self.written.append(frame)
        return self.open


def delta(version: int) -> Frame:
    return Frame.of(protocol.Delta(topic="session:s", version=version, patch={"v": version}))


def queued(connection: Connection) -> list[object]:
    items: list[object] = []
    while not connection.outbox.empty():
        items.append(connection.outbox.get_nowait())
    return items


def test_a_frame_is_the_websocket_frame_the_server_protocol_writes_for_its_text() -> None:
    for size in (10, 125, 126, 200, 65_535, 70_000):  # the three lengths of the frame header
        text = '{"type":"delta","patch":"' + "é" * size + '"}'
        frame = Frame.encoded("delta", text.encode())
        assert frame.text == text
        server = ServerProtocol()
        server.state = State.OPEN
        server.send_text(text.encode())
        assert frame.wire == b"".join(server.data_to_send())
        assert text_frame(text.encode()) == (
            WebSocketFrame(Opcode.TEXT, text.encode()).serialize(mask=False, extensions=[])
        )
    assert Frame.of(protocol.Pong()).wire == text_frame(b'{"type":"pong"}')


def test_frames_go_straight_to_the_socket_when_nothing_waits_before_them() -> None:
    socket = Socket()
    connection = Connection(tutor(), queue_size=4, direct=socket)
    connection.offer(delta(1))
    connection.offer(delta(2))
    assert [frame.text for frame in socket.written] == [delta(1).text, delta(2).text]
    assert connection.outbox.empty()


def test_a_frame_queues_behind_a_message_queued_before_it_so_the_order_holds() -> None:
    socket = Socket()
    connection = Connection(tutor(), queue_size=4, direct=socket)
    snapshot = protocol.Snapshot(topic="session:s", version=1, data={"v": 1})
    connection.offer(snapshot)  # a message is encoded (and opened) by the writer
    connection.offer(delta(2))
    assert socket.written == []
    assert queued(connection) == [snapshot, delta(2)]


def test_a_frame_queues_while_the_writer_holds_one_it_has_not_written() -> None:
    socket = Socket()
    connection = Connection(tutor(), queue_size=4, direct=socket)
    connection.writing = True
    connection.offer(delta(1))
    assert socket.written == [] and queued(connection) == [delta(1)]
    connection.writing = False
    connection.offer(delta(2))
    assert socket.written == [delta(2)]


def test_a_socket_that_cannot_take_a_frame_gets_it_queued_then_a_snapshot_when_too_slow() -> None:
    socket = Socket()
    connection = Connection(tutor(), queue_size=2, direct=socket)
    connection.topics["session:s"] = Topic("session:s", SESSION.name, "s")
    socket.open = False  # its buffer is full: the client stopped reading
    for version in range(1, 5):
        connection.offer(delta(version))
    socket.open = True
    connection.offer(delta(5))  # the queue is not empty: it waits its turn
    assert socket.written == []
    assert connection.behind and connection.stale == {"session:s"}
