from __future__ import annotations

import re
from uuid import UUID

import msgspec

from shared.tenancy.roles import Role

CentreId = str

CENTRE_ID_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"
"""Centre ids are slugs of up to 64 characters: they are one token of NATS subjects."""
_CENTRE_ID = re.compile(CENTRE_ID_PATTERN)


def is_valid_centre_id(value: str) -> bool:
    """Centre ids are slugs: they appear as one token of NATS subjects."""
    return bool(_CENTRE_ID.match(value))


class Actor(msgspec.Struct, frozen=True):
    """The authenticated person behind a command or query."""

    user_id: UUID
    role: Role
    centre_id: CentreId

    @property
    def is_super_admin(self) -> bool:
        return self.role is Role.SUPER_ADMIN

    def is_teacher_other_than(self, tutor_id: UUID | str | None) -> bool:
        """A TEACHER who is not ``tutor_id``: a TEACHER acts on and sees only their own sessions,
        classes and series and the homework they mark (supervisors and admins see all)."""
        return self.role is Role.TEACHER and str(tutor_id) != str(self.user_id)

    def acting_in(self, centre_id: CentreId | None) -> Actor:
        """The same actor working in ``centre_id``.

        Only SUPER_ADMIN may name a centre other than the one in their token.
        """
        from shared.tenancy.permissions import Forbidden

        if centre_id is None or centre_id == self.centre_id:
            return self
        if not self.is_super_admin:
            raise Forbidden(f"{self.role} may not act in centre {centre_id!r}")
        if not is_valid_centre_id(centre_id):
            raise Forbidden(f"{centre_id!r} is not a centre id")
        return Actor(user_id=self.user_id, role=self.role, centre_id=centre_id)
