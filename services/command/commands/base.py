"""What every command shares, and the field types several of them use."""

from __future__ import annotations

from typing import Annotated

import msgspec

from shared.events import SESSION_CAPACITY


class Part(msgspec.Struct, frozen=True, kw_only=True, rename="camel", forbid_unknown_fields=True):
    """A piece of a command's body: camelCase on the wire, unknown fields refused."""


class Command(Part, frozen=True):
    """A verb of the centre, as a client asks for it."""


Text = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
LongText = Annotated[str, msgspec.Meta(max_length=2000)]
Ref = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
"""A course, lesson or exercise of the centre's curriculum, by its id."""
Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
OptionalReason = Annotated[str, msgspec.Meta(max_length=500)] | None
MeetingLink = Annotated[str, msgspec.Meta(max_length=500)] | None
Location = Annotated[str, msgspec.Meta(max_length=200)] | None
SessionCapacity = Annotated[int, msgspec.Meta(ge=SESSION_CAPACITY.low, le=SESSION_CAPACITY.high)]
