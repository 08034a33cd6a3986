"""SYSTEM is what the scheduler acts as: no token carries it, nobody is registered with it, and
it holds the timer permissions and nothing else, which no person holds."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import jwt
import pytest

from services.command.application import TutoringCentres
from services.command.commands.centres import RegisterPerson
from services.command.domain.aggregate import InvalidValue
from shared.eventstore import EventStoreSettings
from shared.settings import load
from shared.tenancy import Actor, Permission, Role, may
from shared.tenancy.permissions import MATRIX, TIMER_PERMISSIONS
from shared.tenancy.roles import PEOPLE_ROLES, SYSTEM_ACTOR_ID
from shared.tenancy.settings import JwtSettings
from shared.tenancy.tokens import InvalidToken, mint, verifier
from tests.builders import register_centre

SECRET = "a-secret-of-more-than-thirty-two-bytes-0123456789"


def test_system_holds_exactly_the_timer_permissions_and_no_person_holds_any() -> None:
    assert len(PEOPLE_ROLES) == 7 and Role.SYSTEM not in PEOPLE_ROLES
    assert TIMER_PERMISSIONS, "the timers need permissions of their own"
    assert {p for p in Permission if may(Role.SYSTEM, p)} == TIMER_PERMISSIONS
    for role in PEOPLE_ROLES:
        assert not any(may(role, p) for p in TIMER_PERMISSIONS), role
    assert all(MATRIX[p] == {Role.SYSTEM} for p in TIMER_PERMISSIONS)


def test_no_token_carries_system() -> None:
    system = Actor(user_id=SYSTEM_ACTOR_ID, role=Role.SYSTEM, centre_id="alpha")
    with pytest.raises(ValueError, match="SYSTEM"):
        mint(system, key=SECRET)
    forged = jwt.encode(
        {
            "iss": "tutorpulse",
            "aud": "tutorpulse",
            "sub": str(SYSTEM_ACTOR_ID),
            "role": "SYSTEM",
            "centre": "alpha",
            "exp": datetime.now(UTC) + timedelta(hours=1),
        },
        SECRET,
    )
    tokens = verifier(load(JwtSettings, {"TUTORPULSE_JWT_SECRET": SECRET}))
    with pytest.raises(InvalidToken, match="no tutorpulse role"):
        tokens.verify(forged)


@pytest.fixture
def centres(tmp_path: Path) -> Iterator[TutoringCentres]:
    app = TutoringCentres(
        load(EventStoreSettings, {"TUTORPULSE_SQLITE_PATH": str(tmp_path / "events.sqlite")})
    )
    yield app
    app.close()


def test_nobody_is_registered_as_system(centres: TutoringCentres) -> None:
    alpha = register_centre(centres, "alpha")
    for registrar in (alpha["admin"], alpha["root"]):
        with pytest.raises(InvalidValue) as refused:
            centres.handle(
                registrar,
                RegisterPerson(name="Robot", email=f"robot-{uuid4()}@x.example", role=Role.SYSTEM),
            )
        assert refused.value.field == "role"
