from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from uuid import uuid4

import jwt
import pytest

from shared.settings import load
from shared.tenancy import Actor, Forbidden, Permission, Role, may, require
from shared.tenancy.cli import main as tp_token
from shared.tenancy.permissions import MATRIX, PHRASES, TIMER_PERMISSIONS
from shared.tenancy.settings import JwtSettings
from shared.tenancy.tokens import InvalidToken, mint, verifier


def verify(token: str) -> Actor:
    """The actor of ``token`` as a service with this process's settings reads it."""
    return verifier(load(JwtSettings)).verify(token)


def actor(role: Role = Role.TEACHER, centre: str = "alpha") -> Actor:
    return Actor(user_id=uuid4(), role=role, centre_id=centre)


def test_a_token_round_trips_the_actor() -> None:
    who = actor()
    assert verify(mint(who)) == who


@pytest.mark.parametrize("tamper", ["expired", "forged", "garbage", "bad-centre", "bad-role"])
def test_bad_tokens_are_refused(tamper: str) -> None:
    who = actor()
    tampered: dict[str, Callable[[], str]] = {
        "expired": lambda: mint(who, ttl=timedelta(seconds=-1)),
        "forged": lambda: mint(who, key="another-secret-that-is-long-enough-0123456789"),
        "garbage": lambda: "not.a.token",
        "bad-centre": lambda: jwt.encode(
            {
                "iss": "tutorpulse",
                "aud": "tutorpulse",
                "sub": str(who.user_id),
                "role": "TEACHER",
                "centre": "Centre B!",
                "exp": 4102444800,
            },
            "test-secret-for-tutorpulse-tests-only-0123456789",
        ),
        "bad-role": lambda: jwt.encode(
            {
                "iss": "tutorpulse",
                "aud": "tutorpulse",
                "sub": str(who.user_id),
                "role": "KING",
                "centre": "alpha",
                "exp": 4102444800,
            },
            "test-secret-for-tutorpulse-tests-only-0123456789",
        ),
    }
    token = tampered[tamper]()
    with pytest.raises(InvalidToken):
        verify(token)


def test_only_a_super_admin_may_act_in_another_centre() -> None:
    with pytest.raises(Forbidden):
        actor(Role.CENTER_ADMIN).acting_in("beta")
    root = actor(Role.SUPER_ADMIN).acting_in("beta")
    assert root.centre_id == "beta"
    assert actor(Role.TEACHER).acting_in("alpha").centre_id == "alpha"


def test_the_matrix_fixes_the_old_contradictions() -> None:
    assert may(Role.CENTER_ADMIN, Permission.ENROLMENT_MANAGE)
    assert all(may(Role.SUPER_ADMIN, p) for p in Permission if p not in TIMER_PERMISSIONS)
    assert set(MATRIX) == set(Permission)
    for permission in (Permission.SESSION_SCHEDULE, Permission.ATTENDANCE_MARK):
        assert not {Role.PARENT, Role.STUDENT, Role.FINANCE_ADMIN} & MATRIX[permission]
    assert MATRIX[Permission.HELP_REQUEST_RAISE] == {Role.STUDENT}


def test_the_cli_mints_a_token_for_a_demo_person(capsys: pytest.CaptureFixture[str]) -> None:
    assert tp_token(["john"]) == 0
    who = verify(capsys.readouterr().out.strip())
    assert (who.role, who.centre_id) == (Role.TEACHER, "main-campus")


def test_every_refusal_names_what_was_refused_in_words() -> None:
    assert set(PHRASES) == set(Permission)
    parent = Actor(user_id=uuid4(), role=Role.PARENT, centre_id="alpha")
    admin = Actor(user_id=uuid4(), role=Role.CENTER_ADMIN, centre_id="alpha")
    with pytest.raises(Forbidden, match=r"^a PARENT may not schedule sessions$"):
        require(parent, Permission.SESSION_SCHEDULE)
    with pytest.raises(Forbidden, match=r"^a CENTER_ADMIN may not escalate help requests$"):
        require(admin, Permission.HELP_REQUEST_ESCALATE)
