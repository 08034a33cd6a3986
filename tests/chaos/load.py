"""Mixed commands from several tutors and their students, each sent the way a careful client
sends it: with an Idempotency-Key, and again with the same key until it gets an answer.

A command is *acknowledged* when it got a 2xx. Whatever dies in between (the command service,
PostgreSQL, the connection), the client retries with the same key, so each logical command is
either acknowledged exactly once or still unanswered when the load stops; the checks afterwards
compare the event store with the acknowledged commands. Some acknowledged commands are sent a
second time on purpose: the replay must answer the first body, flagged ``Idempotent-Replayed``.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx

from shared.tenancy import Actor
from shared.tenancy.tokens import mint


class UnexpectedAnswer(AssertionError):
    """The API answered something no client should ever see (a 500, or a refusal of a valid
    command)."""


@dataclass(frozen=True)
class Acknowledged:
    actor: Actor
    key: str
    status: int
    body: dict[str, Any]


@dataclass
class Load:
    """The commands sent and what became of them."""

    command_url: str
    query_url: str | None = None
    """Where a tutor reads My Day at the position of their last command once a session is
    taught, as a tutor's screen would (``None``: no reads). A lane goes on only once its own
    writes are readable, so the load never outruns the read side without bound."""
    acknowledged: list[Acknowledged] = field(default_factory=list)
    expected_events: Counter[str] = field(default_factory=Counter)
    """Domain events the acknowledged commands must have appended, by type."""
    retries: Counter[str] = field(default_factory=Counter)
    """Why commands had to be sent again (connection refused, 503, …)."""
    replays: int = 0
    unexpected: list[str] = field(default_factory=list)
    _keys: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _tokens: dict[UUID, str] = field(default_factory=dict)

    def _auth(self, actor: Actor) -> dict[str, str]:
        token = self._tokens.get(actor.user_id)
        if token is None:
            token = self._tokens[actor.user_id] = mint(actor, ttl=timedelta(hours=2))
        return {"Authorization": f"Bearer {token}"}

    async def send(
        self,
        client: httpx.AsyncClient,
        actor: Actor,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        events: dict[str, int] | None = None,
        replay: bool = False,
    ) -> dict[str, Any]:
        """Send one logical command until it is answered; count the events it appends."""
        key = f"chaos-{next(self._keys)}"
        headers = {**self._auth(actor), "Idempotency-Key": key}
        delay = 0.05
        while True:
            try:
                response = await client.post(
                    self.command_url + path, json=body, headers=headers, timeout=15.0
                )
            except httpx.HTTPError as error:
                self.retries[type(error).__name__] += 1
            else:
                if response.status_code < 300:
                    break
                if response.status_code in (429, 503):
                    self.retries[str(response.status_code)] += 1
                    delay = max(delay, float(response.headers.get("Retry-After", "0") or 0) / 4)
                else:
                    message = f"{path}: {response.status_code} {response.text[:300]}"
                    self.unexpected.append(message)
                    raise UnexpectedAnswer(message)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
        answer: dict[str, Any] = response.json()
        self.acknowledged.append(Acknowledged(actor, key, response.status_code, answer))
        self.expected_events.update(events or {})
        if replay:
            await self._replay(client, actor, path, body, headers, answer)
        return answer

    async def read_own_writes(self, client: httpx.AsyncClient, actor: Actor, position: int) -> None:
        """Read ``actor``'s My Day at ``position`` until it is answered (the query API waits a
        little for the read models, then says 503; a dead query API refuses the connection)."""
        if self.query_url is None:
            return
        headers = {**self._auth(actor), "X-Tutorpulse-Position": str(position)}
        while True:
            try:
                response = await client.get(
                    self.query_url + "/api/academic/tutor/my-day", headers=headers, timeout=15.0
                )
            except httpx.HTTPError as error:
                self.retries[f"read: {type(error).__name__}"] += 1
            else:
                if response.status_code == 200:
                    return
                if response.status_code not in (429, 503):
                    message = f"my-day: {response.status_code} {response.text[:300]}"
                    self.unexpected.append(message)
                    raise UnexpectedAnswer(message)
                self.retries[f"read: {response.status_code}"] += 1
            await asyncio.sleep(0.1)

    async def _replay(
        self,
        client: httpx.AsyncClient,
        actor: Actor,
        path: str,
        body: dict[str, Any] | None,
        headers: dict[str, str],
        first: dict[str, Any],
    ) -> None:
        while True:
            try:
                response = await client.post(
                    self.command_url + path, json=body, headers=headers, timeout=15.0
                )
            except httpx.HTTPError as error:
                self.retries[type(error).__name__] += 1
                await asyncio.sleep(0.1)
                continue
            if response.status_code in (429, 503):
                self.retries[str(response.status_code)] += 1
                await asyncio.sleep(0.1)
                continue
            break
        again = response.json() if response.status_code < 300 else {}
        same = {k: v for k, v in again.items() if k != "position"} == {
            k: v for k, v in first.items() if k != "position"
        }
        if response.headers.get("Idempotent-Replayed") != "true" or not same:
            message = f"replay of {path} answered {response.status_code} {response.text[:300]}"
            self.unexpected.append(message)
            raise UnexpectedAnswer(message)
        self.replays += 1


@dataclass(frozen=True)
class Lane:
    """One tutor and the students they teach, session after session."""

    tutor: Actor
    students: tuple[Actor, ...]


async def run_lane(load: Load, lane: Lane, stop: asyncio.Event, seed: int) -> int:
    """Teach sessions until told to stop; returns how many sessions were completed."""
    chance = random.Random(seed)
    completed = 0
    async with httpx.AsyncClient() as client:
        while not stop.is_set():
            await teach_one_session(load, client, lane, chance)
            completed += 1
    return completed


async def teach_one_session(
    load: Load, client: httpx.AsyncClient, lane: Lane, chance: random.Random
) -> None:
    def replay() -> bool:
        return chance.random() < 0.15

    starts = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=5)
    session = (
        await load.send(
            client,
            lane.tutor,
            "/api/v1/sessions",
            {
                "title": "Chaos clinic",
                "startsAt": starts.isoformat(),
                "endsAt": (starts + timedelta(hours=1)).isoformat(),
                "mode": "ONLINE",
                "meetingLink": "https://meet.example.org/chaos",
            },
            events={"SessionScheduled": 1},
            replay=replay(),
        )
    )["sessionId"]
    base = f"/api/v1/sessions/{session}"
    for number, student in enumerate(lane.students):
        await load.send(
            client,
            lane.tutor,
            f"{base}/enrolments",
            {
                "studentId": str(student.user_id),
                "courseId": "maths",
                "lessonId": f"lesson-{number}",
            },
            events={"StudentEnrolled": 1},
            replay=replay(),
        )
    await load.send(
        client, lane.tutor, f"{base}/start", events={"SessionStarted": 1}, replay=replay()
    )
    requests = []
    for student in lane.students:
        answer = await load.send(
            client,
            student,
            f"{base}/help-requests",
            {
                "priority": chance.choice(["LOW", "MEDIUM", "HIGH", "URGENT"]),
                "message": "stuck on question 3",
            },
            events={"HelpRequestRaised": 1},
            replay=replay(),
        )
        requests.append(answer["helpRequestId"])
    await load.send(
        client,
        lane.tutor,
        f"{base}/help-requests/{requests[0]}/acknowledge",
        events={"HelpRequestAcknowledged": 1},
        replay=replay(),
    )
    await load.send(
        client,
        lane.tutor,
        f"{base}/help-requests/{requests[0]}/resolve",
        {"response": "see the worked example"},
        events={"HelpRequestResolved": 1},
        replay=replay(),
    )
    statuses = ["PRESENT", "LATE", "ABSENT"]
    await load.send(
        client,
        lane.tutor,
        "/api/academic/attendance/bulk",
        {
            "sessionId": session,
            "records": [
                {"studentId": str(s.user_id), "status": statuses[i % 3]}
                for i, s in enumerate(lane.students)
            ],
        },
        events={
            "AttendanceMarked": len(lane.students),
            "CatchUpAssigned": sum(1 for i in range(len(lane.students)) if i % 3 == 2),
        },
        replay=replay(),
    )
    ended = await load.send(
        client, lane.tutor, f"{base}/end", events={"SessionEnded": 1}, replay=replay()
    )
    await load.read_own_writes(client, lane.tutor, ended["position"])
