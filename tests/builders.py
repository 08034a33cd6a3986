"""Small builders shared by the tests: a centre with people, actors and session plans."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from services.command.application import TutoringCentres
from services.command.commands.centres import RegisterCentre, RegisterPerson
from services.command.commands.sessions import ScheduleSession
from shared.events import SessionMode
from shared.tenancy import Actor, Role
from shared.tenancy.identity import person_id
from shared.tenancy.tokens import mint

ROOT = Actor(user_id=uuid4(), role=Role.SUPER_ADMIN, centre_id="alpha")


@dataclass
class Centre:
    """A registered centre with one person of every role and a few students."""

    centre_id: str
    people: dict[str, Actor] = field(default_factory=dict)

    def __getitem__(self, handle: str) -> Actor:
        return self.people[handle]

    def token(self, handle: str) -> str:
        return mint(self.people[handle])

    def auth(self, handle: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(handle)}"}


HANDLES: dict[str, Role] = {
    "admin": Role.CENTER_ADMIN,
    "supervisor": Role.CENTER_SUPERVISOR,
    "finance": Role.FINANCE_ADMIN,
    "tutor": Role.TEACHER,
    "other_tutor": Role.TEACHER,
    "parent": Role.PARENT,
    "ann": Role.STUDENT,
    "ben": Role.STUDENT,
    "cal": Role.STUDENT,
    "dee": Role.STUDENT,
    "eve": Role.STUDENT,
    "fay": Role.STUDENT,
}


def register_centre(centres: TutoringCentres, centre_id: str) -> Centre:
    root = ROOT.acting_in(centre_id)
    centres.handle(
        root,
        RegisterCentre(centre_id=centre_id, name=centre_id.title(), time_zone="Australia/Sydney"),
    )
    centre = Centre(centre_id)
    centre.people["root"] = root
    for handle, role in HANDLES.items():
        email = f"{handle}@{centre_id}.example"
        centres.handle(root, RegisterPerson(name=handle.title(), email=email, role=role))
        centre.people[handle] = Actor(
            user_id=person_id(centre_id, email), role=role, centre_id=centre_id
        )
    return centre


def plan(
    tutor: Actor | None = None,
    *,
    hours_from_now: float = 1,
    capacity: int = 5,
    mode: SessionMode = SessionMode.ONLINE,
) -> ScheduleSession:
    """A session of ``tutor`` (by default, of whoever schedules it) starting in an hour."""
    starts = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=hours_from_now)
    return ScheduleSession(
        title="Maths and English",
        starts_at=starts,
        ends_at=starts + timedelta(hours=1),
        mode=mode,
        tutor_id=tutor.user_id if tutor else None,
        capacity=capacity,
        meeting_link="https://meet.example.org/room" if mode is not SessionMode.PHYSICAL else None,
        location="Room 1" if mode is not SessionMode.ONLINE else None,
    )


def session_id(result_body: dict[str, object]) -> UUID:
    return UUID(str(result_body["sessionId"]))
