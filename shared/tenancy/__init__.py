"""Who may do what, and in which centre.

The centre an actor works in comes only from their signed token; nothing in a request body or
path can change it. SUPER_ADMIN alone may act in another centre, and only by naming it
explicitly (see :func:`Actor.acting_in`).
"""

from shared.tenancy.actor import Actor, CentreId, is_valid_centre_id
from shared.tenancy.permissions import Forbidden, Permission, may, require
from shared.tenancy.roles import Role

__all__ = [
    "Actor",
    "CentreId",
    "Forbidden",
    "Permission",
    "Role",
    "is_valid_centre_id",
    "may",
    "require",
]
