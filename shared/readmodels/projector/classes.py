"""The ``class`` document: a class cohort's teacher, capacity, status and members."""

from __future__ import annotations

from shared import events as ev
from shared.readmodels.documents import CLASS, ClassCohort, ClassMember
from shared.readmodels.projector.batch import Batch
from shared.readmodels.projector.registry import projects
from shared.readmodels.times import iso


@projects(ev.ClassCreated)
def class_created(docs: Batch, e: ev.ClassCreated) -> None:
    key = str(e.aggregate_id)
    docs.put(
        CLASS,
        key,
        e.centre_id,
        ClassCohort(
            class_id=key,
            centre_id=e.centre_id,
            name=e.name,
            subject=e.subject,
            teacher_id=str(e.teacher_id),
            capacity=e.capacity,
        ),
    )


ClassChanged = (
    ev.ClassUpdated
    | ev.ClassCancelled
    | ev.ClassMemberAdded
    | ev.ClassMemberRemoved
    | ev.ClassSessionsScheduled
)


@projects(
    ev.ClassUpdated,
    ev.ClassCancelled,
    ev.ClassMemberAdded,
    ev.ClassMemberRemoved,
    ev.ClassSessionsScheduled,
)
def class_changed(docs: Batch, e: ClassChanged) -> None:
    key = str(e.aggregate_id)
    cohort = docs.get(CLASS, key)
    assert cohort is not None  # created first: same aggregate, applied in order
    if isinstance(e, ev.ClassUpdated):
        cohort.name, cohort.subject, cohort.teacher_id = e.name, e.subject, str(e.teacher_id)
        cohort.capacity = e.capacity
    elif isinstance(e, ev.ClassCancelled):
        cohort.status, cohort.cancel_reason = ev.ClassStatus.CANCELLED, e.reason
    elif isinstance(e, ev.ClassSessionsScheduled):
        sessions = cohort.sessions if isinstance(cohort.sessions, dict) else {}
        sessions.update(
            {str(sid): iso(starts) for sid, starts in zip(e.session_ids, e.starts, strict=True)}
        )
        cohort.sessions = sessions
    elif isinstance(e, ev.ClassMemberAdded):
        cohort.members[str(e.student_id)] = ClassMember(
            student_id=str(e.student_id),
            status=ev.MembershipStatus.ACTIVE,
            joined_at=iso(e.occurred_at),
        )
    else:
        member = cohort.members[str(e.student_id)]
        member.status, member.left_at = ev.MembershipStatus.DROPPED, iso(e.occurred_at)
    docs.put(CLASS, key, e.centre_id, cohort)
