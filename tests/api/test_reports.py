"""Centre reports from the query API: the catch-up list, help-request analytics and repeated
absences in My Day, from events recorded through the commands (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from services.command.application import TutoringCentres
from services.command.commands.catch_ups import AssignCatchUp, CompleteCatchUp, StartCatchUp
from services.command.commands.help_requests import (
    AcknowledgeHelpRequest,
    CancelHelpRequest,
    RaiseHelpRequest,
    ResolveHelpRequest,
    StartHelping,
)
from services.command.commands.seats import AttendanceRecord, MarkAttendance
from services.command.commands.sessions import EnrolStudent, StartSession
from services.query.app import create_app
from shared import events
from shared.events import AttendanceStatus, HelpPriority
from shared.eventstore import EventStoreSettings
from shared.readmodels.projector import apply_all
from shared.readmodels.store import ReadStore, ReadStoreSettings, open_read_store
from shared.settings import load
from tests.api.helpers import is_problem
from tests.builders import Centre, plan, register_centre
from tests.readside import read_store

Retime = Callable[[events.Event], datetime | None]


@dataclass
class World:
    """Two centres on one event store, projected into a read store the query API reads."""

    centres: TutoringCentres
    store: ReadStore
    client: TestClient[Litestar]
    alpha: Centre
    beta: Centre
    position: int = 0
    retimed: dict[UUID, datetime] = field(default_factory=dict)

    def project(self, retime: Retime | None = None) -> None:
        """Apply what was recorded since the last call; ``retime`` moves events in time (the
        commands stamp them with the wall clock)."""
        notifications = self.centres.recorder.select_notifications(self.position + 1, 100_000)
        items = []
        for notification in notifications:
            event = events.decode(notification.state)
            moved = retime(event) if retime else None
            if isinstance(event, events.HelpRequestRaised) and moved is not None:
                event = msgspec.structs.replace(
                    event,
                    occurred_at=moved,
                    sla_due_at=moved + (event.sla_due_at - event.occurred_at),
                )
            elif moved is not None:
                event = msgspec.structs.replace(event, occurred_at=moved)
            items.append((event, notification.id))
        apply_all(self.store, items)
        if notifications:
            self.position = notifications[-1].id
            self.store.advance_watermark(self.position)

    def get(
        self,
        url: str,
        who: str,
        expect: int = 200,
        centre: Centre | None = None,
        params: Mapping[str, str | int] | None = None,
        **query: str | int,
    ) -> Any:
        """The answer's JSON; ``params`` are query parameters kept in a dict (or whose names are
        not Python names, like ``from``), ``query`` the others."""
        response = self.client.get(
            url, params={**(params or {}), **query}, headers=(centre or self.alpha).auth(who)
        )
        if expect != 200:
            return is_problem(response, expect)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    if request.param == "sqlite":
        centres = TutoringCentres(
            load(
                EventStoreSettings,
                {
                    "TUTORPULSE_STORE": "sqlite",
                    "TUTORPULSE_SQLITE_PATH": str(tmp_path / "events.sqlite"),
                },
            )
        )
        store = read_store(tmp_path)
    else:
        env = request.getfixturevalue("pg").env()
        centres = TutoringCentres(load(EventStoreSettings, env))
        store = open_read_store(
            load(ReadStoreSettings, {"TUTORPULSE_READ_STORE": "postgres", **env})
        )
    alpha, beta = register_centre(centres, "alpha"), register_centre(centres, "beta")
    with TestClient(create_app(store)) as client:
        yield World(centres, store, client, alpha, beta)
    store.close()
    centres.close()


def _session(world: World, tutor: str, *students: str, hours_from_now: float = -1) -> UUID:
    """A session of ``tutor`` with ``students`` enrolled, started (so attendance can be marked)."""
    alpha = world.alpha
    result = world.centres.handle(alpha[tutor], plan(alpha[tutor], hours_from_now=hours_from_now))
    session = UUID(result.body["sessionId"])
    for student in students:
        world.centres.handle(
            alpha[tutor], EnrolStudent(session_id=session, student_id=alpha[student].user_id)
        )
    world.centres.handle(alpha[tutor], StartSession(session_id=session))
    return session


def _ids(body: dict[str, Any]) -> list[str]:
    return [row["catchUpId"] for row in body["data"]["catchUps"]]


# --- the catch-up list ---------------------------------------------------------------------


@dataclass
class CatchUps:
    overdue: str
    absent: str
    later: str
    others: str


def _catch_ups(world: World) -> CatchUps:
    """Ben overdue by two days, Ann absent (due in a week), Cal due in a month; Eve's is the
    other tutor's."""
    alpha, centres, now = world.alpha, world.centres, datetime.now(UTC)
    mine = _session(world, "tutor", "ann", "ben", "cal")
    theirs = _session(world, "other_tutor", "eve")
    marked = centres.handle(
        alpha["tutor"],
        MarkAttendance(
            session_id=mine,
            records=[
                AttendanceRecord(student_id=alpha["ann"].user_id, status=AttendanceStatus.ABSENT)
            ],
        ),
    )
    (absent,) = marked.body["catchUpsAssigned"]

    def assign(tutor: str, session: UUID, student: str, due: timedelta, reason: str) -> str:
        result = centres.handle(
            alpha[tutor],
            AssignCatchUp(
                session_id=session,
                student_id=alpha[student].user_id,
                due_at=now + due,
                reason=reason,
            ),
        )
        return str(result.body["catchUpId"])

    made = CatchUps(
        overdue=assign("tutor", mine, "ben", -timedelta(days=2), "Fractions worksheet"),
        absent=absent,
        later=assign("tutor", mine, "cal", timedelta(days=30), "Reading log"),
        others=assign("other_tutor", theirs, "eve", timedelta(days=3), "Essay plan"),
    )
    world.project()
    return made


def test_the_catch_up_list_puts_the_most_urgent_first_with_names_and_sessions(world: World) -> None:
    made = _catch_ups(world)
    body = world.get("/api/v1/catch-ups", "supervisor")
    assert _ids(body) == [made.overdue, made.others, made.absent, made.later]
    assert body["version"] >= 4 and body["data"]["total"] == 4 and body["data"]["next"] is None
    ben = body["data"]["catchUps"][0]
    assert (ben["studentName"], ben["tutorName"]) == ("Ben", "Tutor")
    assert ben["sessionTitle"] == "Maths and English"
    assert (ben["reason"], ben["status"], ben["overdue"]) == (
        "Fractions worksheet",
        "PENDING",
        True,
    )
    assert 2 * 86400 - 60 <= ben["overdueSeconds"] <= 2 * 86400 + 60
    ann = body["data"]["catchUps"][2]
    assert ann["reason"].startswith("absent from") and ann["overdue"] is False
    assert ann["overdueSeconds"] is None and ann["tutorId"] == str(world.alpha["tutor"].user_id)


def test_catch_ups_move_through_the_list_as_they_are_worked_on(world: World) -> None:
    made = _catch_ups(world)
    alpha = world.alpha
    world.centres.handle(alpha["ben"], StartCatchUp(catch_up_id=UUID(made.overdue)))
    world.centres.handle(alpha["tutor"], CompleteCatchUp(catch_up_id=UUID(made.later)))
    world.centres.handle(
        alpha["tutor"],
        MarkAttendance(
            session_id=UUID(
                world.get("/api/v1/catch-ups", "admin")["data"]["catchUps"][2]["sessionId"]
            ),
            records=[
                AttendanceRecord(student_id=alpha["ann"].user_id, status=AttendanceStatus.EXCUSED)
            ],
        ),
    )
    world.project()
    rows = {r["catchUpId"]: r for r in world.get("/api/v1/catch-ups", "admin")["data"]["catchUps"]}
    assert rows[made.overdue]["status"] == "IN_PROGRESS" and rows[made.overdue]["startedAt"]
    assert rows[made.later]["status"] == "COMPLETED" and rows[made.later]["overdue"] is False
    assert rows[made.absent]["status"] == "CANCELLED" and rows[made.absent]["cancelReason"]
    assert list(rows)[:2] == [made.overdue, made.others]  # finished ones go last
    done = world.get("/api/v1/catch-ups", "admin", status="COMPLETED")
    assert _ids(done) == [made.later]


def test_the_catch_up_list_filters(world: World) -> None:
    made = _catch_ups(world)
    alpha, now = world.alpha, datetime.now(UTC)
    assert _ids(world.get("/api/v1/catch-ups", "admin", overdue="true")) == [made.overdue]
    assert _ids(world.get("/api/v1/catch-ups", "admin", studentId=str(alpha["cal"].user_id))) == [
        made.later
    ]
    other = str(alpha["other_tutor"].user_id)
    assert _ids(world.get("/api/v1/catch-ups", "admin", tutorId=other)) == [made.others]
    before = (now + timedelta(days=5)).isoformat()
    assert _ids(world.get("/api/v1/catch-ups", "admin", dueBefore=before)) == [
        made.overdue,
        made.others,
    ]
    window = {"dueAfter": now.isoformat(), "dueBefore": (now + timedelta(days=10)).isoformat()}
    assert _ids(world.get("/api/v1/catch-ups", "admin", params=window)) == [
        made.others,
        made.absent,
    ]
    assert _ids(world.get("/api/v1/catch-ups", "admin", status="IN_PROGRESS")) == []


def test_the_catch_up_list_pages_with_a_cursor(world: World) -> None:
    made = _catch_ups(world)
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = world.get("/api/v1/catch-ups", "supervisor", params=params)["data"]
        seen += [row["catchUpId"] for row in page["catchUps"]]
        pages += 1
        cursor = page["next"]
        if cursor is None:
            break
    assert pages == 2 and seen == [made.overdue, made.others, made.absent, made.later]
    exact = world.get("/api/v1/catch-ups", "supervisor", limit=4)["data"]
    assert exact["next"] is None and len(exact["catchUps"]) == 4


def test_a_teacher_lists_only_the_catch_ups_of_their_own_sessions(world: World) -> None:
    made = _catch_ups(world)
    assert _ids(world.get("/api/v1/catch-ups", "other_tutor")) == [made.others]
    assert _ids(world.get("/api/v1/catch-ups", "tutor")) == [made.overdue, made.absent, made.later]
    world.get("/api/v1/catch-ups", "tutor", 403, tutorId=str(world.alpha["other_tutor"].user_id))
    for role in ("parent", "finance", "ann"):
        world.get("/api/v1/catch-ups", role, 403)


def test_another_centre_never_sees_the_catch_ups(world: World) -> None:
    _catch_ups(world)
    beta = world.get("/api/v1/catch-ups", "admin", centre=world.beta)
    assert beta["data"] == {"catchUps": [], "total": 0, "next": None}
    alpha_tutor = str(world.alpha["tutor"].user_id)
    probe = world.get("/api/v1/catch-ups", "admin", centre=world.beta, tutorId=alpha_tutor)
    assert probe["data"]["total"] == 0
    assert world.client.get("/api/v1/catch-ups").status_code == 401


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"status": "LOST"}, "status"),
        ({"limit": "0"}, "limit"),
        ({"limit": "201"}, "limit"),
        ({"overdue": "maybe"}, "overdue"),
        ({"tutorId": "not-a-uuid"}, "tutorId"),
        ({"dueBefore": "2030-01-01T00:00:00"}, "dueBefore"),
        ({"dueAfter": "next week"}, "dueAfter"),
        ({"cursor": "bm90IGEgY3Vyc29y"}, "cursor"),
        ({"cursor": "%%%"}, "cursor"),
    ],
)
def test_bad_catch_up_filters_are_422_naming_the_parameter(
    world: World, params: dict[str, str], name: str
) -> None:
    problem = world.get("/api/v1/catch-ups", "admin", 422, params=params)
    assert problem["field"] == name


# --- help-request analytics ----------------------------------------------------------------

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
DAY = {"from": "2026-03-02T00:00:00Z", "to": "2026-03-03T00:00:00Z"}


def _help_history(world: World) -> None:
    """On 2 March: five requests, their answers at known seconds after raising.

    Tutor: Ann URGENT acknowledged +30 s, resolved +100 s; Ben HIGH started +60 s, resolved
    +400 s (past its 5 min SLA); Cal URGENT withdrawn +10 s; Dee LOW still open (breached).
    Other tutor: Eve MEDIUM resolved +50 s without being acknowledged first.
    """
    alpha, centres = world.alpha, world.centres
    mine = _session(world, "tutor", "ann", "ben", "cal", "dee", hours_from_now=-0.5)
    theirs = _session(world, "other_tutor", "eve", hours_from_now=-0.5)
    offsets: dict[tuple[UUID, str], int] = {}

    def raise_(session: UUID, student: str, priority: HelpPriority, start: int) -> UUID:
        body = centres.handle(
            alpha[student], RaiseHelpRequest(session_id=session, priority=priority)
        ).body
        request = UUID(body["helpRequestId"])
        offsets[(request, "HelpRequestRaised")] = start
        return request

    ann = raise_(mine, "ann", HelpPriority.URGENT, 0)
    centres.handle(alpha["tutor"], AcknowledgeHelpRequest(session_id=mine, request_id=ann))
    centres.handle(
        alpha["tutor"], ResolveHelpRequest(session_id=mine, request_id=ann, response="Done")
    )
    offsets |= {(ann, "HelpRequestAcknowledged"): 30, (ann, "HelpRequestResolved"): 100}
    ben = raise_(mine, "ben", HelpPriority.HIGH, 600)
    centres.handle(alpha["tutor"], StartHelping(session_id=mine, request_id=ben))
    centres.handle(
        alpha["tutor"], ResolveHelpRequest(session_id=mine, request_id=ben, response="Done")
    )
    offsets |= {(ben, "HelpRequestStarted"): 660, (ben, "HelpRequestResolved"): 1000}
    cal = raise_(mine, "cal", HelpPriority.URGENT, 1200)
    centres.handle(alpha["cal"], CancelHelpRequest(session_id=mine, request_id=cal))
    offsets[(cal, "HelpRequestCancelled")] = 1210
    raise_(mine, "dee", HelpPriority.LOW, 1800)
    eve = raise_(theirs, "eve", HelpPriority.MEDIUM, 0)
    centres.handle(
        alpha["other_tutor"], ResolveHelpRequest(session_id=theirs, request_id=eve, response="Done")
    )
    offsets[(eve, "HelpRequestResolved")] = 50

    def retime(event: events.Event) -> datetime | None:
        request = getattr(event, "help_request_id", None)
        offset = offsets.get((request, event.type_name)) if request else None
        return None if offset is None else T0 + timedelta(seconds=offset)

    world.project(retime)


def _timings(
    count: int, mean: float | None, median: float | None, p90: float | None
) -> dict[str, Any]:
    return {"count": count, "mean": mean, "median": median, "p90": p90}


def test_help_request_analytics_per_tutor_and_priority(world: World) -> None:
    _help_history(world)
    body = world.get("/api/v1/analytics/help-requests", "supervisor", params=DAY)
    data = body["data"]
    assert (data["from"], data["to"]) == ("2026-03-02T00:00:00Z", "2026-03-03T00:00:00Z")
    assert [t["tutorName"] for t in data["tutors"]] == ["Other_Tutor", "Tutor"]
    other, tutor = data["tutors"]
    total = tutor["total"]
    assert {k: total[k] for k in ("raised", "resolved", "cancelled", "open", "slaBreached")} == {
        "raised": 4,
        "resolved": 2,
        "cancelled": 1,
        "open": 1,
        "slaBreached": 2,
    }
    assert total["responseSeconds"] == _timings(2, 45.0, 45.0, 60.0)
    assert total["resolutionSeconds"] == _timings(2, 250.0, 250.0, 400.0)
    urgent = tutor["byPriority"]["URGENT"]
    assert (urgent["raised"], urgent["resolved"], urgent["cancelled"], urgent["slaBreached"]) == (
        2,
        1,
        1,
        0,
    )
    assert urgent["responseSeconds"] == _timings(1, 30.0, 30.0, 30.0)
    assert tutor["byPriority"]["MEDIUM"]["raised"] == 0
    assert tutor["byPriority"]["MEDIUM"]["resolutionSeconds"] == _timings(0, None, None, None)
    assert tutor["byPriority"]["LOW"]["open"] == tutor["byPriority"]["LOW"]["slaBreached"] == 1
    assert other["total"]["responseSeconds"]["count"] == 0
    assert other["byPriority"]["MEDIUM"]["resolutionSeconds"] == _timings(1, 50.0, 50.0, 50.0)
    overall = data["overall"]["total"]
    assert (overall["raised"], overall["resolved"], overall["slaBreached"]) == (5, 3, 2)
    assert overall["resolutionSeconds"] == _timings(3, 183.333, 100.0, 400.0)


def test_help_request_analytics_cover_only_the_period_asked_for(world: World) -> None:
    _help_history(world)
    first_ten_minutes = {"from": T0.isoformat(), "to": (T0 + timedelta(minutes=10)).isoformat()}
    data = world.get("/api/v1/analytics/help-requests", "admin", params=first_ten_minutes)["data"]
    raised = [(t["tutorName"], t["total"]["raised"]) for t in data["tutors"]]
    assert raised == [("Other_Tutor", 1), ("Tutor", 1)]
    empty = world.get(
        "/api/v1/analytics/help-requests",
        "admin",
        params={"from": "2026-03-03T00:00:00+11:00", "to": "2026-03-04T00:00:00+11:00"},
    )
    assert empty["data"]["tutors"] == [] and empty["data"]["overall"]["total"]["raised"] == 0
    recent = world.get("/api/v1/analytics/help-requests", "admin")["data"]  # the last 30 days
    assert recent["overall"]["total"]["raised"] == 0


def test_a_teacher_sees_only_their_own_help_figures(world: World) -> None:
    _help_history(world)
    own = world.get("/api/v1/analytics/help-requests", "other_tutor", params=DAY)["data"]
    assert [t["tutorName"] for t in own["tutors"]] == ["Other_Tutor"]
    assert own["overall"] == {k: own["tutors"][0][k] for k in ("total", "byPriority")}
    tutor = str(world.alpha["tutor"].user_id)
    world.get("/api/v1/analytics/help-requests", "other_tutor", 403, tutorId=tutor, params=DAY)
    chosen = world.get("/api/v1/analytics/help-requests", "supervisor", tutorId=tutor, params=DAY)[
        "data"
    ]
    assert [t["tutorName"] for t in chosen["tutors"]] == ["Tutor"]
    for role in ("parent", "finance", "ann"):
        world.get("/api/v1/analytics/help-requests", role, 403, params=DAY)
    elsewhere = world.get(
        "/api/v1/analytics/help-requests", "admin", centre=world.beta, params=DAY
    )["data"]
    assert elsewhere["tutors"] == [] and elsewhere["overall"]["total"]["raised"] == 0


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"from": "2026-03-02T00:00:00", "to": "2026-03-03T00:00:00Z"}, "from"),
        ({"to": "2026-03-03T00:00:00"}, "to"),
        ({"from": "yesterday"}, "from"),
        ({"from": "2026-03-03T00:00:00Z", "to": "2026-03-02T00:00:00Z"}, "from"),
        ({"from": "2024-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "from"),
        ({"tutorId": "nobody"}, "tutorId"),
    ],
)
def test_bad_analytics_parameters_are_422_naming_them(
    world: World, params: dict[str, str], name: str
) -> None:
    assert (
        world.get("/api/v1/analytics/help-requests", "admin", 422, params=params)["field"] == name
    )


# --- repeated absences in My Day -----------------------------------------------------------


def test_students_absent_twice_in_a_row_show_in_my_day(world: World) -> None:
    alpha, centres = world.alpha, world.centres

    def lesson(hours_ago: float, tutor: str = "tutor", **marks: AttendanceStatus) -> None:
        session = _session(world, tutor, *marks, hours_from_now=-hours_ago)
        centres.handle(
            alpha[tutor],
            MarkAttendance(
                session_id=session,
                records=[
                    AttendanceRecord(student_id=alpha[s].user_id, status=status)
                    for s, status in marks.items()
                ],
            ),
        )

    absent, present, excused = (
        AttendanceStatus.ABSENT,
        AttendanceStatus.PRESENT,
        AttendanceStatus.EXCUSED,
    )
    lesson(72, ann=present, ben=absent, cal=absent)
    lesson(48, ann=absent, ben=absent, cal=excused)
    lesson(
        24, "other_tutor", ann=absent, ben=absent, cal=absent
    )  # another tutor's session counts too
    lesson(2, ann=absent, ben=present, cal=absent)
    world.project()
    day = world.get("/api/academic/tutor/my-day", "tutor")["data"]
    assert [(a["studentName"], a["consecutiveAbsences"]) for a in day["repeatedAbsences"]] == [
        ("Ann", 3),
        ("Cal", 2),
    ]
    assert [s["startsAt"] for s in day["repeatedAbsences"][0]["sessions"]] == sorted(
        (s["startsAt"] for s in day["repeatedAbsences"][0]["sessions"]), reverse=True
    )
    alerts = [a for a in day["alerts"] if a["type"] == "REPEATED_ABSENCES"]
    assert [a["studentId"] for a in alerts] == [
        str(alpha["ann"].user_id),
        str(alpha["cal"].user_id),
    ]
    assert alerts[0]["message"] == "Ann was absent from their last 3 sessions"
    assert day["stats"]["repeatedAbsences"] == 2
    theirs = world.get("/api/academic/tutor/my-day", "other_tutor")["data"]
    assert [a["studentName"] for a in theirs["repeatedAbsences"]] == ["Ann", "Cal"]

    centres.handle(
        alpha["tutor"],
        MarkAttendance(
            session_id=UUID(alerts[0]["sessionIds"][0]),
            records=[
                AttendanceRecord(student_id=alpha["ann"].user_id, status=AttendanceStatus.LATE)
            ],
        ),
    )
    world.project()
    day = world.get("/api/academic/tutor/my-day", "tutor")["data"]
    assert [a["studentName"] for a in day["repeatedAbsences"]] == ["Cal"]
