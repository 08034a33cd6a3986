"""A day at a tutoring centre, scripted end to end through the running services.

Every step is an HTTP command to the command service (PostgreSQL event store); the relay
publishes to a real nats-server, the projection service builds the read models, and the
assertions read what a tutor, a student and a parent are shown by the query service (at the
command's position) and what the tutor's websocket receives live.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import httpx
import pytest
import websockets

from shared.readmodels.views import apply_merge_patch
from shared.tenancy import Actor, Role
from shared.tenancy.tokens import mint
from tests.integration.cluster import running_cluster
from tests.support.servers import NatsServer, PostgresServer

pytestmark = pytest.mark.integration
CENTRE = "harbour-tutoring"


@dataclass
class Centre:
    """Tokens of the people of the day, and the last position a command reached."""

    command: httpx.AsyncClient
    query: httpx.AsyncClient
    tokens: dict[str, str] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)
    position: int = 0

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    async def do(
        self, who: str, url: str, body: dict[str, Any] | None = None, status: int = 200
    ) -> Any:
        response = await self.command.post(url, json=body, headers=self.auth(who))
        assert response.status_code == status, f"{url}: {response.text}"
        answer = response.json()
        self.position = max(self.position, answer.get("position", 0))
        return answer

    async def sees(self, who: str, url: str, status: int = 200) -> Any:
        response = await self.query.get(
            url, params={"position": self.position}, headers=self.auth(who)
        )
        assert response.status_code == status, f"{url}: {response.text}"
        body = response.json()
        return body.get("data", body)


@asynccontextmanager
async def cluster(pg: PostgresServer, nats_server: NatsServer) -> AsyncIterator[tuple[Centre, int]]:
    async with (
        running_cluster(pg, nats_server) as running,
        httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{running.command_port}", timeout=10
        ) as command,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{running.query_port}", timeout=10) as query,
    ):
        yield Centre(command, query), running.gateway_port


async def open_the_centre(day: Centre) -> None:
    root = Actor(user_id=uuid4(), role=Role.SUPER_ADMIN, centre_id=CENTRE)
    day.tokens["root"] = mint(root)
    await day.do(
        "root",
        "/api/v1/centres",
        {"centreId": CENTRE, "name": "Harbour Tutoring", "timeZone": "Australia/Sydney"},
        201,
    )
    people = [
        ("owner", "Olive Owner", "CENTER_ADMIN", None),
        ("tina", "Tina Tutor", "TEACHER", None),
        ("paul", "Paul Parent", "PARENT", None),
        ("sam", "Sam Student", "STUDENT", "paul"),
        ("kim", "Kim Student", "STUDENT", None),
        ("lee", "Lee Student", "STUDENT", None),
    ]
    for handle, name, role, guardian in people:
        body = {"name": name, "email": f"{handle}@harbour.example", "role": role}
        if guardian:
            body["guardianId"] = day.ids[guardian]
        registered = await day.do("root", "/api/v1/people", body, 201)
        day.ids[handle] = registered["personId"]
        day.tokens[handle] = mint(
            Actor(user_id=registered["personId"], role=Role(role), centre_id=CENTRE)
        )


async def test_a_day_at_the_centre(
    pg: PostgresServer, nats_server: NatsServer, tmp_path: Path
) -> None:
    async with cluster(pg, nats_server) as (day, gateway_port):
        await open_the_centre(day)
        sam, kim, lee = day.ids["sam"], day.ids["kim"], day.ids["lee"]

        # Morning: Tina plans a session starting now and enrols three students on their own courses.
        now = datetime.now(ZoneInfo("Australia/Sydney")).replace(microsecond=0)
        starts = max(
            now - timedelta(minutes=5), now.replace(hour=0, minute=0, second=0)
        )  # today there
        session = (
            await day.do(
                "tina",
                "/api/v1/sessions",
                {
                    "title": "Afternoon maths and English",
                    "startsAt": starts.isoformat(),
                    "endsAt": (starts + timedelta(hours=1)).isoformat(),
                    "mode": "ONLINE",
                    "meetingLink": "https://meet.example.org/harbour-1",
                },
                201,
            )
        )["sessionId"]
        for student, course in ((sam, "maths-y5"), (kim, "english-y6"), (lee, "maths-y7")):
            await day.do(
                "tina",
                f"/api/v1/sessions/{session}/enrolments",
                {"studentId": student, "courseId": course},
                201,
            )
        my_day = await day.sees("tina", "/api/academic/tutor/my-day")
        assert [s["title"] for s in my_day["sessions"]] == ["Afternoon maths and English"]
        assert my_day["next"]["status"] == "SCHEDULED"
        assert sorted(my_day["next"]["studentNames"]) == [
            "Kim Student",
            "Lee Student",
            "Sam Student",
        ]

        # The tutor keeps the Control Center open on a websocket for the whole session.
        url = f"ws://127.0.0.1:{gateway_port}/live"
        tina = {"Authorization": f"Bearer {day.tokens['tina']}"}
        async with websockets.connect(url, additional_headers=tina, ping_interval=None) as socket:
            await socket.send(json.dumps({"type": "subscribe", "topic": f"session:{session}"}))
            first = json.loads(await asyncio.wait_for(socket.recv(), 10))
            assert first["type"] == "snapshot"
            live_view: dict[str, Any] = first["data"]

            async def live_until(check: Any) -> dict[str, Any]:
                nonlocal live_view
                while not check(live_view):
                    message = json.loads(await asyncio.wait_for(socket.recv(), 10))
                    if message["type"] == "snapshot":
                        live_view = message["data"]
                    elif message["type"] == "delta":
                        live_view = apply_merge_patch(live_view, message["patch"])
                return live_view

            await day.do("tina", f"/api/v1/sessions/{session}/start")
            for student in ("sam", "kim"):
                await day.do(student, f"/api/v1/sessions/{session}/presence", {"event": "JOIN"})
            marked = await day.do(
                "tina",
                "/api/academic/attendance/bulk",
                {
                    "sessionId": session,
                    "records": [
                        {"studentId": sam, "status": "PRESENT"},
                        {"studentId": kim, "status": "LATE", "notes": "traffic"},
                        {"studentId": lee, "status": "ABSENT"},
                    ],
                },
            )
            (catch_up,) = marked["catchUpsAssigned"]
            # The catch-up is in the same commit but may arrive in a later delta than the marks.
            view = await live_until(
                lambda v: (
                    v["status"] == "LIVE"
                    and all(s["attendance"] for s in v["students"])
                    and any(s["catchUps"] for s in v["students"])
                )
            )
            rows = {s["studentId"]: s for s in view["students"]}
            assert (rows[sam]["activity"], rows[lee]["activity"]) == ("ACTIVE", "NOT_JOINED")
            assert [c["catchUpId"] for c in rows[lee]["catchUps"]] == [catch_up]

            # Tina sets a quiz for everyone present; Sam finishes it, Kim is half-way.
            quiz = await day.do(
                "tina",
                "/api/v1/exercises",
                {
                    "title": "Place value",
                    "courseId": "maths-y5",
                    "exerciseType": "NUMERICAL",
                    "questions": [
                        {"questionId": "q1", "prompt": "0.5 + 0.25", "acceptedAnswers": ["0.75"]},
                        {"questionId": "q2", "prompt": "10 / 4", "acceptedAnswers": ["2.5"]},
                    ],
                },
                201,
            )
            work = (
                await day.do(
                    "tina",
                    f"/api/v1/sessions/{session}/work",
                    {"exerciseId": quiz["exerciseId"], "studentIds": [sam, kim]},
                    201,
                )
            )["work"]
            work_of = {w["studentId"]: w["workId"] for w in work}
            for student, handle in ((sam, "sam"), (kim, "kim")):
                await day.do(handle, f"/api/v1/sessions/{session}/work/{work_of[student]}/start")
            await day.do(
                "kim", f"/api/v1/sessions/{session}/work/{work_of[kim]}/progress", {"percent": 50}
            )
            marked_quiz = await day.do(
                "sam",
                f"/api/v1/sessions/{session}/work/{work_of[sam]}/submit",
                {"answers": {"q1": "0.75", "q2": "2.50"}},
            )
            assert (marked_quiz["status"], marked_quiz["xpAwarded"]) == ("AUTO_GRADED", 50)

            # Kim is stuck and asks for help: it reaches Tina live, first in the list.
            raised = await day.do(
                "kim",
                f"/api/v1/sessions/{session}/help-requests",
                {"priority": "HIGH", "message": "What is a remainder?"},
                201,
            )
            view = await live_until(lambda v: v["openHelpRequests"] == 1)
            assert view["students"][0]["studentId"] == kim
            assert view["students"][0]["currentExercise"]["progress"] == 50
            help_url = f"/api/v1/sessions/{session}/help-requests/{raised['helpRequestId']}"
            await day.do("tina", f"{help_url}/acknowledge")
            await day.do(
                "tina", f"/api/v1/sessions/{session}/students/{kim}/mode", {"mode": "TEACH"}
            )
            await day.do("tina", f"{help_url}/resolve", {"response": "It is what is left over"})
            await day.do(
                "tina", f"/api/v1/sessions/{session}/students/{kim}/mode", {"mode": "OBSERVE"}
            )
            view = await live_until(lambda v: v["openHelpRequests"] == 0)
            kim_row = next(s for s in view["students"] if s["studentId"] == kim)
            (handled,) = kim_row["helpRequests"]
            assert handled["status"] == "RESOLVED" and handled["responseSeconds"] is not None
            assert kim_row["sinceAttendedSeconds"] is not None

        # Tina writes to Sam's parent, sets homework, and ends the session.
        await day.do(
            "tina",
            f"/api/v1/students/{sam}/notes",
            {"content": "Sam was quick with decimals today", "visibility": "EXTERNAL"},
            201,
        )
        await day.do(
            "tina",
            f"/api/v1/students/{sam}/notes",
            {"content": "Check Sam's times tables", "visibility": "INTERNAL"},
            201,
        )
        homework = await day.do(
            "tina",
            "/api/v1/homework",
            {
                "studentId": sam,
                "title": "More place value",
                "exerciseIds": [quiz["exerciseId"]],
                "dueAt": (datetime.now(UTC) + timedelta(days=2)).isoformat(),
                "sessionId": session,
            },
            201,
        )
        await day.do("tina", f"/api/v1/sessions/{session}/end")

        # What each of them sees at the end of the day.
        my_day = await day.sees("tina", "/api/academic/tutor/my-day")
        assert my_day["sessions"][0]["status"] == "COMPLETED" and my_day["openHelpRequests"] == []
        assert [c["studentName"] for c in my_day["catchUps"]["pending"]] == ["Lee Student"]

        own = await day.sees("sam", f"/api/v1/students/{sam}/overview")
        assert own["xp"]["total"] == 50 and own["attendanceSummary"]["PRESENT"] == 1
        assert [h["homeworkId"] for h in own["homework"]] == [homework["homeworkId"]]
        assert [n["content"] for n in own["notes"]] == ["Sam was quick with decimals today"]
        parent = await day.sees("paul", f"/api/v1/students/{sam}/overview")
        assert parent == own
        await day.sees("paul", f"/api/v1/students/{kim}/overview", 404)
        await day.sees("kim", f"/api/v1/students/{sam}/overview", 404)
        lee_view = await day.sees("lee", f"/api/v1/students/{lee}/overview")
        assert [(c["catchUpId"], c["status"]) for c in lee_view["catchUps"]] == [
            (catch_up, "PENDING")
        ]
        parent_session = await day.sees("paul", f"/api/v1/sessions/{session}/control-center")
        assert [s["studentId"] for s in parent_session["students"]] == [sam]

        # Lee catches up at home; Sam hands in the homework, on time.
        await day.do("lee", f"/api/v1/catch-ups/{catch_up}/start")
        await day.do("lee", f"/api/v1/catch-ups/{catch_up}/complete")
        await day.do(
            "sam",
            f"/api/v1/homework/{homework['homeworkId']}/submit",
            {"answers": {quiz["exerciseId"]: {"q1": "0.75", "q2": "2.5"}}},
        )
        own = await day.sees("sam", f"/api/v1/students/{sam}/overview")
        assert own["homework"][0]["status"] == "AUTO_GRADED" and own["xp"]["total"] == 70
        my_day = await day.sees("tina", "/api/academic/tutor/my-day")
        assert my_day["catchUps"] == {"pending": [], "overdue": []}

        # The auditor's trail has every step, in order, and another centre sees none of it.
        log = await day.sees("owner", f"/api/v1/sessions/{session}/log")
        types = [entry["type"] for entry in log["entries"]]
        positions = [entry["position"] for entry in log["entries"]]
        assert positions == sorted(positions)
        assert types[:2] == ["SessionScheduled", "StudentEnrolled"]
        for step in (
            "AttendanceMarked",
            "CatchUpAssigned",
            "ExerciseAssigned",
            "ExerciseSubmitted",
            "HelpRequestRaised",
            "HelpRequestResolved",
            "SessionEnded",
            "CatchUpCompleted",
        ):
            assert step in types, step
        day.tokens["stranger"] = mint(
            Actor(user_id=uuid4(), role=Role.CENTER_ADMIN, centre_id="elsewhere")
        )
        await day.sees("stranger", f"/api/v1/sessions/{session}/control-center", 404)
