"""Who is told what: the notifications an event causes, from what the read side knows.

A pure function of the event and the :class:`~shared.notifications.model.Audience`: the inbox
projection and the notifier service compute the same notifications, with the same ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from shared import events as ev
from shared.events import HelpPriority
from shared.notifications.model import (
    Audience,
    Notification,
    NotificationPriority,
    NotificationType,
    notification_id,
)
from shared.notifications.render import local_time
from shared.readmodels.times import iso
from shared.tenancy.roles import Role

NOTIFYING_EVENTS: tuple[type[ev.Event], ...] = (
    ev.SessionReminderSent,
    ev.AttendanceReminderSent,
    ev.HelpRequestEscalated,
    ev.CatchUpReminderSent,
    ev.CatchUpBecameOverdue,
    ev.HomeworkDueReminderSent,
    ev.HomeworkBecameOverdue,
    ev.SessionCancelled,
    ev.SessionEnded,
    ev.RepeatedAbsencesNoticed,
    ev.PaperHandedBack,
)
"""The event types that tell someone something (``SessionEnded`` only when the system ended
a session nobody ended)."""

_ESCALATION_PRIORITY = {
    HelpPriority.URGENT: NotificationPriority.URGENT,
    HelpPriority.HIGH: NotificationPriority.URGENT,
}


@dataclass(frozen=True)
class _Message:
    type: NotificationType
    priority: NotificationPriority
    title: str
    body: str


def _session_link(session_id: object) -> str:
    return f"/api/v1/sessions/{session_id}/control-center"


def _student_link(student_id: object) -> str:
    return f"/api/v1/students/{student_id}/overview"


def _family(audience: Audience, student_id: str) -> Iterator[tuple[str, str]]:
    """The student and their parents, each with the link they read more at."""
    yield student_id, _student_link(student_id)
    for parent in audience.parents.get(student_id, ()):
        yield parent, _student_link(student_id)


def _session_name(audience: Audience) -> str:
    return audience.session_title or "Your session"


def _tell(
    event: ev.Event,
    message: _Message,
    people: Iterable[tuple[str, str]],
    source: str | None = None,
) -> list[Notification]:
    """One notification per person (the first link wins for a person named twice), with ids
    from ``source`` (by default the event's aggregate id and version)."""
    source = source or f"{event.aggregate_id}:{event.aggregate_version}"
    told: dict[str, Notification] = {}
    for person_id, link in people:
        if person_id in told:
            continue
        told[person_id] = Notification(
            notification_id=notification_id(source, person_id),
            centre_id=event.centre_id,
            person_id=person_id,
            type=message.type,
            priority=message.priority,
            title=message.title,
            body=message.body,
            link=link,
            at=iso(event.occurred_at),
            source_event=event.type_name,
        )
    return list(told.values())


def notifications_for(event: ev.Event, audience: Audience) -> list[Notification]:
    """The notifications ``event`` causes; none for an event that tells nobody anything."""
    zone = audience.time_zone
    if isinstance(event, ev.SessionReminderSent):
        name = _session_name(audience)
        at = local_time(event.starts_at, zone)
        link = _session_link(event.session_id)
        people: list[tuple[str, str]] = []
        if audience.tutor_id:
            people.append((audience.tutor_id, link))
        people += [(s, link) for s in audience.student_ids]
        for student in audience.student_ids:
            people += [(p, _student_link(student)) for p in audience.parents.get(student, ())]
        return _tell(
            event,
            _Message(
                NotificationType.SESSION_REMINDER,
                NotificationPriority.NORMAL,
                f"{name} starts in {event.minutes_before} minutes",
                f"{name} starts at {at}.",
            ),
            people,
        )
    if isinstance(event, ev.AttendanceReminderSent):
        if not audience.tutor_id:
            return []
        count = len(event.unmarked_student_ids)
        students = "student has" if count == 1 else "students have"
        name = _session_name(audience)
        return _tell(
            event,
            _Message(
                NotificationType.ATTENDANCE_REMINDER,
                NotificationPriority.HIGH,
                f"Mark attendance for {name}",
                f"{count} {students} no attendance mark yet.",
            ),
            [(audience.tutor_id, _session_link(event.session_id))],
        )
    if isinstance(event, ev.HelpRequestEscalated):
        name = _session_name(audience)
        due = local_time(event.sla_due_at, zone)
        return _tell(
            event,
            _Message(
                NotificationType.HELP_REQUEST_ESCALATED,
                _ESCALATION_PRIORITY.get(event.priority, NotificationPriority.HIGH),
                f"{event.priority} help request waiting in {name}",
                f"A {event.priority.lower()} help request was due to be picked up by {due} "
                "and is still open.",
            ),
            [(person, _session_link(event.session_id)) for person in audience.staff],
        )
    if isinstance(event, ev.CatchUpReminderSent | ev.CatchUpBecameOverdue):
        due = local_time(event.due_at, zone)
        name = _session_name(audience)
        overdue = isinstance(event, ev.CatchUpBecameOverdue)
        message = (
            _Message(
                NotificationType.CATCH_UP_OVERDUE,
                NotificationPriority.HIGH,
                "Catch-up work is overdue",
                f"The catch-up for {name} was due {due} and is not done yet.",
            )
            if overdue
            else _Message(
                NotificationType.CATCH_UP_REMINDER,
                NotificationPriority.NORMAL,
                "Catch-up work is due soon",
                f"The catch-up for {name} is due {due}.",
            )
        )
        return _tell(event, message, _family(audience, str(event.student_id)))
    if isinstance(event, ev.HomeworkDueReminderSent | ev.HomeworkBecameOverdue):
        due = local_time(event.due_at, zone)
        title = audience.homework_title or "Homework"
        overdue = isinstance(event, ev.HomeworkBecameOverdue)
        message = (
            _Message(
                NotificationType.HOMEWORK_OVERDUE,
                NotificationPriority.HIGH,
                f"{title} is overdue",
                f"{title} was due {due} and has not been handed in.",
            )
            if overdue
            else _Message(
                NotificationType.HOMEWORK_REMINDER,
                NotificationPriority.NORMAL,
                f"{title} is due soon",
                f"{title} is due {due}.",
            )
        )
        student = str(event.student_id)
        link = f"/api/v1/homework/{event.homework_id}"
        return _tell(event, message, [(person, link) for person, _ in _family(audience, student)])
    if isinstance(event, ev.SessionCancelled):
        name = _session_name(audience)
        when = (
            f" on {local_time(audience.session_starts_at, zone)}"
            if audience.session_starts_at
            else ""
        )
        people = []
        for student in audience.student_ids:
            people += list(_family(audience, student))
        return _tell(
            event,
            _Message(
                NotificationType.SESSION_CANCELLED,
                NotificationPriority.HIGH,
                f"{name} is cancelled",
                f"{name}{when} is cancelled: {event.reason}",
            ),
            people,
        )
    if isinstance(event, ev.SessionEnded) and event.actor_role is Role.SYSTEM:
        if not audience.tutor_id:
            return []
        name = _session_name(audience)
        return _tell(
            event,
            _Message(
                NotificationType.SESSION_AUTO_COMPLETED,
                NotificationPriority.NORMAL,
                f"{name} was completed automatically",
                f"{name} was still live after its end, so it was completed at "
                f"{local_time(event.occurred_at, zone)}. Mark attendance if you have not.",
            ),
            [(audience.tutor_id, _session_link(event.session_id))],
        )
    if isinstance(event, ev.RepeatedAbsencesNoticed):
        return _absent_again(event, audience)
    if isinstance(event, ev.PaperHandedBack):
        return _paper_handed_back(event, audience)
    return []


def _absent_again(event: ev.RepeatedAbsencesNoticed, audience: Audience) -> list[Notification]:
    """Absences that repeat, as the student's attendance record noticed them (the event says
    which sessions, when, and how many in a row): the centre's supervisors and admins are
    told, once per session (the record notices each at most once)."""
    streak = event.absences_in_a_row
    count = str(streak) if streak < ev.ATTENDANCE_RECORD_SESSIONS else f"{streak} or more"
    name = audience.student_name or "A student"
    this = next((s for s in event.sessions if s.session_id == event.session_id), None)
    missed = (
        f"{this.title} on {local_time(this.starts_at, audience.time_zone)}"
        if this is not None
        else "a session"
    )
    if event.sessions and event.sessions[0].session_id == event.session_id:
        more = " or more" if streak >= ev.ATTENDANCE_RECORD_SESSIONS else ""
        before = "the session" if streak == 2 else f"the {streak - 1}{more} sessions"
        body = f"{name} was absent from {missed}, and from {before} marked before it."
    else:
        body = f"{name} was absent from {missed}, one of {count} sessions in a row they missed."
    return _tell(
        event,
        _Message(
            NotificationType.STUDENT_AT_RISK,
            NotificationPriority.HIGH,
            f"{name} has missed {count} sessions in a row",
            body,
        ),
        [(person, _student_link(event.student_id)) for person in audience.staff],
    )


def _paper_handed_back(event: ev.PaperHandedBack, audience: Audience) -> list[Notification]:
    """The student, and their parents by the student's name."""
    link = f"/api/v1/paper/uploads/{event.aggregate_id}"
    student = str(event.student_id)
    marked = f"marked: {event.score:g} of {event.max_score}." + (
        f" {event.feedback}" if event.feedback else ""
    )
    name = audience.student_name or "Your child"
    return [
        *_tell(
            event,
            _Message(
                NotificationType.PAPER_HANDED_BACK,
                NotificationPriority.NORMAL,
                "Your paper work is marked",
                f"Your paper work is {marked}",
            ),
            [(student, link)],
        ),
        *_tell(
            event,
            _Message(
                NotificationType.PAPER_HANDED_BACK,
                NotificationPriority.NORMAL,
                f"{name}'s paper work is marked",
                f"{name}'s paper work is {marked}",
            ),
            [(parent, link) for parent in audience.parents.get(student, ()) if parent != student],
        ),
    ]
