"""The people of the demo centre (seeded by ``make run``), so tokens can be minted by name."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from shared.tenancy.identity import person_id
from shared.tenancy.roles import Role

DEMO_CENTRE = "main-campus"
EMPTY_CENTRE = "online-campus"


@dataclass(frozen=True)
class DemoPerson:
    handle: str
    name: str
    role: Role
    guardian: str | None = None

    @property
    def email(self) -> str:
        return f"{self.handle}@{DEMO_CENTRE}.example"

    @property
    def id(self) -> UUID:
        return person_id(DEMO_CENTRE, self.email)


DEMO_PEOPLE: tuple[DemoPerson, ...] = (
    DemoPerson("admin", "Ada Admin", Role.SUPER_ADMIN),
    DemoPerson("sarah", "Sarah Johnson", Role.CENTER_ADMIN),
    DemoPerson("david", "David Martinez", Role.CENTER_SUPERVISOR),
    DemoPerson("emily", "Emily Chen", Role.FINANCE_ADMIN),
    DemoPerson("john", "John Teacher", Role.TEACHER),
    DemoPerson("maria", "Maria Garcia", Role.TEACHER),
    DemoPerson("robert", "Robert Johnson", Role.PARENT),
    DemoPerson("lisa", "Lisa Thompson", Role.PARENT),
    DemoPerson("jennifer", "Jennifer Lee", Role.PARENT),
    DemoPerson("jane", "Jane Johnson", Role.STUDENT, guardian="robert"),
    DemoPerson("alex", "Alex Thompson", Role.STUDENT, guardian="lisa"),
    DemoPerson("michael", "Michael Lee", Role.STUDENT, guardian="jennifer"),
    DemoPerson("sophia", "Sophia Johnson", Role.STUDENT, guardian="robert"),
    DemoPerson("liam", "Liam Chen", Role.STUDENT),
    DemoPerson("aisha", "Aisha Patel", Role.STUDENT),
    DemoPerson("noah", "Noah Williams", Role.STUDENT),
    DemoPerson("priya", "Priya Sharma", Role.STUDENT),
)


def demo_person(handle: str) -> DemoPerson:
    for person in DEMO_PEOPLE:
        if person.handle == handle:
            return person
    known = ", ".join(p.handle for p in DEMO_PEOPLE)
    raise KeyError(f"no demo person {handle!r}; try one of: {known}")
