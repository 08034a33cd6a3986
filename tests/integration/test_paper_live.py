"""A student photographs their worksheet and hands it in: the scan files itself, and the tutor
following the session and My Day sees "paper handed in" and the marking queue change live; the
query API answers the upload (PostgreSQL, nats-server, every service of the chain)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from services.command.commands.exercises import AssignExercise, PublishExercise
from shared.blobs import BlobSettings, open_blob_store
from shared.events import ExerciseType, Question
from shared.settings import load
from tests.api.test_paper import pages_of, photo
from tests.builders import register_centre
from tests.integration.cluster import running_cluster
from tests.support.servers import NatsServer, PostgresServer
from tests.support.timers import session as live_session

pytestmark = pytest.mark.integration


async def deltas_naming(
    socket: ClientConnection, topics: set[str], wanted: str
) -> dict[str, dict[str, Any]]:
    """For each of ``topics``, the first delta whose patch mentions ``wanted`` (others may
    come first, in any order)."""
    found: dict[str, dict[str, Any]] = {}
    while set(found) != topics:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(socket.recv(), 15))
        if (
            message["type"] == "delta"
            and message["topic"] in topics
            and message["topic"] not in found
            and wanted in json.dumps(message["patch"])
        ):
            found[message["topic"]] = message
    return found


async def test_a_scan_handed_in_reaches_the_tutor_live(
    pg: PostgresServer, nats_server: NatsServer, tmp_path: Path
) -> None:
    env = {
        "TUTORPULSE_BLOB_DIR": str(tmp_path / "blobs"),
        "TUTORPULSE_BLOB_URL_KEY": "test-blob-url-key-for-tutorpulse-tests-only-0123456789",
    }
    blobs = open_blob_store(load(BlobSettings, env))
    key = b"test-sheet-key-for-tutorpulse-tests-only-0123456789"
    async with running_cluster(pg, nats_server, blobs, key) as cluster:
        alpha = register_centre(cluster.centres, "alpha")
        tutor = alpha["tutor"]
        session = live_session(
            cluster.centres,
            alpha,
            starts_at=datetime.now(UTC) - timedelta(minutes=5),
            students=("ann",),
            live=True,
        )
        essay = cluster.centres.handle(
            tutor,
            PublishExercise(
                title="Describe a ratio",
                course_id="maths-y5",
                exercise_type=ExerciseType.SHORT_ANSWER,
                questions=[Question(question_id="q1", prompt="Explain 2:3", points=4)],
            ),
        )
        cluster.centres.handle(
            tutor, AssignExercise(session_id=session, exercise_id=essay.body["exerciseId"])
        )
        while cluster.read.watermark() < cluster.centres.position:
            await asyncio.sleep(0.05)

        url = f"ws://127.0.0.1:{cluster.gateway_port}/live"
        tutor_token = {"Authorization": f"Bearer {alpha.token('tutor')}"}
        topic = f"session:{session}"
        async with (
            websockets.connect(url, additional_headers=tutor_token, ping_interval=None) as socket,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{cluster.command_port}") as command,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{cluster.query_port}") as query,
        ):
            for followed in (topic, "my-day"):
                await socket.send(json.dumps({"type": "subscribe", "topic": followed}))
            opened = [json.loads(await socket.recv()) for _ in range(2)]
            snapshot = next(m for m in opened if m["type"] == "snapshot" and m["topic"] == topic)
            assert snapshot["data"]["paperHandedIn"] == 0

            printed = await command.post(
                f"/api/v1/sessions/{session}/worksheets", headers=alpha.auth("tutor")
            )
            assert printed.status_code == 200, printed.text
            (sheet,) = pages_of(printed.content)
            handed = await command.post(
                "/api/v1/paper/uploads",
                files=[("files", ("sheet.jpg", photo(sheet, degrees=4), "image/jpeg"))],
                headers=alpha.auth("ann"),
            )
            assert handed.status_code == 201, handed.text
            upload = handed.json()["uploadId"]
            assert handed.json()["status"] == "ROUTED"

            deltas = await deltas_naming(socket, {topic, "my-day"}, upload)
            assert deltas[topic]["patch"]["paperHandedIn"] == 1
            assert deltas["my-day"]["patch"]["stats"]["paperToMark"] == 1

            answer = await query.get(
                f"/api/v1/paper/uploads/{upload}",
                params={"position": handed.json()["position"]},
                headers=alpha.auth("ann"),
            )
            assert answer.status_code == 200, answer.text
            data = answer.json()["data"]
            assert data["status"] == "AWAITING_MARKING"
            assert data["routing"]["studentId"] == str(alpha["ann"].user_id)
            scan = await query.get(data["pages"][0]["url"])
            assert scan.status_code == 200 and scan.headers["content-type"] == "image/jpeg"
    blobs.close()
