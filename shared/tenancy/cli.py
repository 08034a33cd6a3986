"""``tp-token``: mint development bearer tokens.

    tp-token john                     # a demo person by handle (see shared/tenancy/demo.py)
    tp-token --role TEACHER --centre main-campus --email someone@example.org
    tp-token --role STUDENT --centre main-campus --user 0b9e...   # an explicit user id

Tokens are signed (HS256) with ``TUTORPULSE_JWT_SECRET`` for the audience
``TUTORPULSE_JWT_AUDIENCE``. Without a secret they are signed with the public development secret,
which services accept only in development mode (``TUTORPULSE_DEV_MODE=1``, as ``make run``
sets). With an identity provider (``TUTORPULSE_JWT_JWKS_URL``) services take only its tokens.
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import timedelta
from uuid import UUID

from shared.settings import SettingsError, load
from shared.tenancy.actor import Actor, is_valid_centre_id
from shared.tenancy.demo import DEMO_CENTRE, DEMO_PEOPLE, demo_person
from shared.tenancy.identity import person_id
from shared.tenancy.roles import Role
from shared.tenancy.settings import JwtSettings
from shared.tenancy.tokens import mint

_DURATION = re.compile(r"^(\d+)([smhd])$")


def _duration(text: str) -> timedelta:
    match = _DURATION.match(text)
    if not match:
        raise argparse.ArgumentTypeError("use a number and s, m, h or d, e.g. 12h")
    unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
    return timedelta(**{unit: int(match.group(1))})


def _centre(text: str) -> str:
    if not is_valid_centre_id(text):
        raise argparse.ArgumentTypeError("a centre id is lower-case letters, digits and '-'")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tp-token", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "handle", nargs="?", help="a demo person: " + ", ".join(p.handle for p in DEMO_PEOPLE)
    )
    parser.add_argument("--role", type=Role, choices=list(Role))
    parser.add_argument("--centre", type=_centre, default=DEMO_CENTRE)
    who = parser.add_mutually_exclusive_group()
    who.add_argument("--email", help="derive the user id from an e-mail registered in --centre")
    who.add_argument("--user", type=UUID, help="the user id to put in the token")
    parser.add_argument("--ttl", type=_duration, default=timedelta(hours=12))
    args = parser.parse_args(argv)

    if args.handle:
        try:
            person = demo_person(args.handle)
        except KeyError as error:
            parser.error(str(error.args[0]))
        actor = Actor(user_id=person.id, role=args.role or person.role, centre_id=DEMO_CENTRE)
    else:
        if args.role is None or (args.email is None and args.user is None):
            parser.error("give a demo handle, or --role with --email or --user")
        user_id = args.user or person_id(args.centre, args.email)
        actor = Actor(user_id=user_id, role=args.role, centre_id=args.centre)
    try:
        settings = load(JwtSettings)
    except SettingsError as error:
        parser.error(str(error))
    if settings.jwks_url:
        print(
            "tp-token: TUTORPULSE_JWT_JWKS_URL is set, so services accept only the identity "
            "provider's tokens, not this one",
            file=sys.stderr,
        )
    sys.stdout.write(mint(actor, ttl=args.ttl, settings=settings) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
