"""Class cohorts: a group of students who meet with one teacher."""

from __future__ import annotations

from typing import ClassVar
from uuid import UUID

from shared.events.base import Event


class ClassEvent(Event, frozen=True, kw_only=True):
    aggregate_kind: ClassVar[str] = "class"
    is_abstract: ClassVar[bool] = True


class ClassCreated(ClassEvent, frozen=True, kw_only=True):
    name: str
    subject: str
    teacher_id: UUID
    capacity: int = 20


class ClassUpdated(ClassEvent, frozen=True, kw_only=True):
    name: str
    subject: str
    teacher_id: UUID
    capacity: int


class ClassCancelled(ClassEvent, frozen=True, kw_only=True):
    reason: str


class ClassMemberAdded(ClassEvent, frozen=True, kw_only=True):
    student_id: UUID


class ClassMemberRemoved(ClassEvent, frozen=True, kw_only=True):
    student_id: UUID
