"""Litestar application serving My Day, the Control Center and the SessionLog."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Annotated, Any, TypeVar
from uuid import UUID

import anyio.to_thread
import msgspec
from litestar import Controller, Litestar, Request, Response, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example
from litestar.params import FromPath, HeaderParameter, Parameter, QueryParameter
from litestar.response import Stream

from services.query import answers, export
from services.query.freshness import Freshness, wait_for_watermark
from services.query.marked_pages import MarkedPages, PageRenderer, entity_tag
from services.query.settings import FreshnessSettings, QuerySettings
from shared.blobs import BlobNotFound, BlobStore, BlobStoreUnavailable, open_blob_store
from shared.blobs.http import blob_route
from shared.events import CatchUpStatus
from shared.http.api import api_app
from shared.http.openapi import POSITION, WATERMARK, Contract, example_of
from shared.http.operations import Details, NotReady, describe
from shared.http.problems import RETRY_AFTER_SECONDS, problem, simple
from shared.paper.ink import render_marked_page
from shared.privacy import KeyStore, Revealer
from shared.privacy.erasure import ErasureCheck
from shared.readmodels import access
from shared.readmodels.documents import PaperStatus
from shared.readmodels.store import ReadStore
from shared.readmodels.times import iso
from shared.readmodels.views import name_order, parse, parse_page_cursor, utcnow
from shared.readmodels.views import notifications as notification_views
from shared.readmodels.views import paper as paper_views
from shared.settings import load
from shared.tenancy import Actor, Permission

SERVICE = "query"
WATERMARK_HEADER = "X-Tutorpulse-Watermark"
"""On every read: the notification id up to which the answer reflects the event store."""
JSON_LINES = "application/x-ndjson"
HEAD_TIMEOUT_SECONDS = 0.5
"""How long ``/ready`` waits for the event store's head before reporting it unknown."""


class InvalidQuery(Exception):
    """A query parameter the API cannot use (HTTP 422, naming it)."""

    def __init__(self, detail: str, *, field: str) -> None:
        super().__init__(detail)
        self.field = field


class NotCaughtUp(Exception):
    """The read models have not reached the requested position within the wait (HTTP 503)."""


PositionQuery = Annotated[
    int | None,
    QueryParameter(
        name="position",
        required=False,
        ge=0,
        description="A position from a command response: wait (bounded) until it is reflected.",
    ),
]
PositionHeader = Annotated[
    int | None,
    HeaderParameter(
        name=POSITION.name,
        required=False,
        description="The same as `position`, as a header (the larger of the two counts).",
    ),
]


_LOG_LINES = msgspec.json.encode(example_of(answers.LogEntry)).decode() + "\n"
"""An example of the JSON Lines export."""


def answering(shape: Any, description: str) -> dict[int, ResponseSpec]:
    """The success answer of a query, described by its type (``services.query.answers``)."""
    return {
        200: ResponseSpec(data_container=shape, description=description, generate_examples=False)
    }


class ReadYourWrites:
    """A query given a position (from a command's answer) is answered once the read models
    reflect it, waiting at most ``wait`` seconds (``TUTORPULSE_QUERY_WAIT_SECONDS``); a position
    beyond every committed event can never be reached, and is refused at once."""

    def __init__(self, store: ReadStore, lag: _Lag, wait: float) -> None:
        self._store, self._lag, self._wait = store, lag, wait

    async def watermark(self, query: int | None, header: int | None) -> int:
        """The watermark, once it reached the position asked for."""
        wanted = max(query or 0, header or 0)
        if wanted and await anyio.to_thread.run_sync(self._store.watermark) < wanted:
            head = await self._lag.head_if_known()
            if head is not None and wanted > head:
                field = "position" if (query or 0) >= (header or 0) else POSITION.name
                raise InvalidQuery(
                    f"position {wanted} is beyond the last committed event "
                    f"({head}): send the position a command answered",
                    field=field,
                )
            if not await wait_for_watermark(self._store, wanted, self._wait):
                raise NotCaughtUp(
                    f"the read models have not reached position {wanted} yet; retry shortly"
                )
        return await anyio.to_thread.run_sync(self._store.watermark)


MaybeTime = TypeVar("MaybeTime", bound=datetime | None)


def _aware(value: MaybeTime, field: str) -> MaybeTime:
    if value is not None and value.tzinfo is None:
        raise InvalidQuery(f"'{field}' must carry a UTC offset", field=field)
    return value


async def _answer(
    reads: ReadYourWrites, query: int | None, header: int | None, read: Callable[[], access.View]
) -> Response[dict[str, Any]]:
    """The view ``read`` gives, once the read models reached the position asked for."""
    watermark = await reads.watermark(query, header)
    return _view_response(await anyio.to_thread.run_sync(read), watermark)


def _view_response(view: access.View, watermark: int) -> Response[dict[str, Any]]:
    return Response(
        {"version": view.version, "data": view.data}, headers={WATERMARK_HEADER: str(watermark)}
    )


class TutorController(Controller):
    path = "/api/academic/tutor"
    tags = ("my day",)

    @get(
        "/my-day",
        summary="The tutor's day: sessions, help requests, catch-ups, alerts",
        operation_id="myDay",
        opt={"permission": Permission.MY_DAY_VIEW, "problems": (404,)},
        responses=answering(
            answers.MyDayAnswer,
            "The tutor's day (`tutorId`: another tutor's, for supervisors and admins)",
        ),
    )
    async def my_day(
        self,
        actor: NamedDependency[Actor],
        store: NamedDependency[ReadStore],
        reads: NamedDependency[ReadYourWrites],
        revealer: NamedDependency[Revealer | None],
        position: PositionQuery = None,
        position_header: PositionHeader = None,
        tutor_id: Annotated[UUID | None, QueryParameter(name="tutorId", required=False)] = None,
    ) -> Response[dict[str, Any]]:
        order = name_order(revealer, actor.centre_id)
        return await _answer(
            reads,
            position,
            position_header,
            lambda: access.my_day(store, actor, tutor_id, utcnow(), order),
        )


class StudentReadController(Controller):
    path = "/api/v1/students"
    tags = ("students",)

    @get(
        "/{student_id:uuid}/overview",
        summary="A student's sessions today and before, attendance, catch-ups and notes",
        operation_id="studentOverview",
        opt={"permission": Permission.STUDENT_OVERVIEW_VIEW},
        responses=answering(
            answers.StudentOverviewAnswer, "The student's overview, as the caller may see it"
        ),
    )
    async def overview(
        self,
        student_id: FromPath[UUID],
        actor: NamedDependency[Actor],
        store: NamedDependency[ReadStore],
        reads: NamedDependency[ReadYourWrites],
        position: PositionQuery = None,
        position_header: PositionHeader = None,
    ) -> Response[dict[str, Any]]:
        return await _answer(
            reads,
            position,
            position_header,
            lambda: access.student_overview(store, actor, student_id, utcnow()),
        )

    @get(
        "/{student_id:uuid}/sessions",
        summary="A student's older sessions (those the overview leaves out), a month at a time",
        operation_id="studentSessions",
        opt={"permission": Permission.STUDENT_OVERVIEW_VIEW},
        responses=answering(
            answers.StudentSessionsAnswer, "A month of the student's older sessions"
        ),
    )
    async def older_sessions(
        self,
        student_id: FromPath[UUID],
        actor: NamedDependency[Actor],
        store: NamedDependency[ReadStore],
        reads: NamedDependency[ReadYourWrites],
        position: PositionQuery = None,
        position_header: PositionHeader = None,
        month: Annotated[
            str | None,
            QueryParameter(
                required=False,
                pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$",
                description="`YYYY-MM` (default: the latest month with older sessions); "
                "`next` of the previous page.",
            ),
        ] = None,
    ) -> Response[dict[str, Any]]:
        return await _answer(
            reads,
            position,
            position_header,
            lambda: access.student_sessions(store, actor, student_id, month),
        )


class ClassReadController(Controller):
    path = "/api/v1/classes"
    tags = ("classes",)

    @get(
        "/{class_id:uuid}/roster",
        summary="A class's teacher, capacity and members",
        operation_id="classRoster",
        opt={"permission": Permission.CLASS_VIEW},
        responses=answering(answers.ClassRosterAnswer, "The class and its members"),
    )
    async def roster(
        self,
        class_id: FromPath[UUID],
        actor: NamedDependency[Actor],
        store: NamedDependency[ReadStore],
        reads: NamedDependency[ReadYourWrites],
        revealer: NamedDependency[Revealer | None],
        position: PositionQuery = None,
        position_header: PositionHeader = None,
    ) -> Response[dict[str, Any]]:
        order = name_order(revealer, actor.centre_id)
        return await _answer(
            reads,
            position,
            position_header,
            lambda: access.class_roster(store, actor, class_id, order),
        )


class ExerciseReadController(Controller):
    path = "/api/v1/exercises"
    tags = ("exercises",)

    @get(
        "/",
        summary="The centre's exercise catalogue (staff), optionally for one course",
        operation_id="exerciseCatalogue",
        opt={"permission": Permission.EXERCISE_PUBLISH},
        responses=answering(answers.CatalogueAnswer, "The exercises, by course and title"),
    )
    async def catalogue(
        self,
        actor: NamedDependency[Actor],
        store: NamedDependency[ReadStore],
        reads: NamedDependency[ReadYourWrites],
        course_id: Annotated[
            str | None, QueryParameter(name="courseId", required=False, max_length=100)
        ] = None,
        include_retired: Annotated[
            bool, QueryParameter(name="includeRetired", required=False)
        ] = False,
        position: PositionQuery = None,
        position_header: PositionHeader = None,
    ) -> Response[dict[str, Any]]:
        return await _answer(
            reads,
            position,
            position_header,
            lambda: access.exercise_catalogue(
                store, actor, course_id=course_id, include_retired=include_retired
            ),
        )

    @get(
        "/{exercise_id:uuid}",
        summary="One exercise: the answer key for staff, the questions for students",
        operation_id="exercise",
        opt={"permission": Permission.EXERCISE_VIEW},
        responses=answering(answers.ExerciseAnswer, "The exercise"),
    )
    async def exercise(
        self,
        exercise_id: FromPath[UUID],
        actor: NamedDependency[Actor],
        store: NamedDependency[ReadStore],
        reads: NamedDependency[ReadYourWrites],
        position: PositionQuery = None,
        position_header: PositionHeader = None,
    ) -> Response[dict[str, Any]]:
        return await _answer(
            reads, position, position_header, lambda: access.exercise(store, actor, exercise_id)
        )


class HomeworkReadController(Controller):
    path = "/api/v1/homework"
    tags = ("homework",)

    @get(
        "/{homework_id:uuid}",
        summary="Homework with its answers, mark and feedback",
        operation_id="homework",
        opt={"permission": Permission.STUDENT_OVERVIEW_VIEW},
        responses=answering(answers.HomeworkAnswer, "The homework"),
    )
    async def homework(
        self,
        homework_id: FromPath[UUID],
        actor: NamedDependency[Actor],
        store: NamedDependency[ReadStore],
        reads: NamedDependency[ReadYourWrites],
        position: PositionQuery = None,
        position_header: PositionHeader = None,
    ) -> Response[dict[str, Any]]:
        return await _answer(
            reads,
            position,
            position_header,
            lambda: access.homework(store, actor, homework_id, utcnow()),
        )


class SessionReadController(Controller):
    path = "/api/v1/sessions"
    tags = ("sessions",)

    @get(
        "/{session_id:uuid}/control-center",
        summary="The live picture of a session",
        operation_id="controlCenter",
        opt={"permission": Permission.CONTROL_CENTER_VIEW},
        responses=answering(
            answers.ControlCenterAnswer,
            "The session now (or at `at`); students and parents see only their own rows",
        ),
    )
    async def control_center(
        self,
        session_id: FromPath[UUID],
        actor: NamedDependency[Actor],
        store: NamedDependency[ReadStore],
        reads: NamedDependency[ReadYourWrites],
        position: PositionQuery = None,
        position_header: PositionHeader = None,
        at: Annotated[
            datetime | None,
            QueryParameter(
                required=False,
                description="Replay the session's log: the Control Center as it was then "
                "(supervisors, admins, the session's tutor).",
            ),
        ] = None,
    ) -> Response[dict[str, Any]]:
        watermark = await reads.watermark(position, position_header)
        if at is not None:
            if _aware(at, "at") > utcnow():
                raise InvalidQuery(
                    "'at' is in the future: the past can be replayed, not the future", field="at"
                )
            view = await anyio.to_thread.run_sync(
                lambda: access.control_center_at(store, actor, session_id, at)
            )
        else:
            view = await anyio.to_thread.run_sync(
                lambda: access.control_center(store, actor, session_id, utcnow())
            )
        return _view_response(view, watermark)

    @get(
        "/{session_id:uuid}/log",
        summary="Every event of a session in order, for auditors",
        operation_id="sessionLog",
        opt={"permission": Permission.SESSION_LOG_VIEW},
        responses=answering(answers.SessionLog, "A page of the session's events"),
    )
    async def log(
        self,
        session_id: FromPath[UUID],
        actor: NamedDependency[Actor],
        store: NamedDependency[ReadStore],
        reads: NamedDependency[ReadYourWrites],
        position: PositionQuery = None,
        position_header: PositionHeader = None,
        after: Annotated[int, QueryParameter(ge=0, required=False)] = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=1000, required=False)] = 200,
    ) -> Response[dict[str, Any]]:
        watermark = await reads.watermark(position, position_header)
        rows = await anyio.to_thread.run_sync(
            lambda: access.session_log(store, actor, session_id, after=after, limit=limit)
        )
        entries = [access.log_entry(row) for row in rows]
        body = {
            "sessionId": str(session_id),
            "entries": entries,
            "next": entries[-1]["position"] if len(entries) == limit else None,
        }
        return Response(body, headers={WATERMARK_HEADER: str(watermark)})

    @get(
        "/{session_id:uuid}/log.jsonl",
        summary="The whole SessionLog as JSON Lines",
        operation_id="exportSessionLog",
        opt={"permission": Permission.SESSION_LOG_VIEW},
        media_type=JSON_LINES,
        responses={
            200: ResponseSpec(
                data_container=str,
                media_type=JSON_LINES,
                generate_examples=False,
                description="Every event of the session, one `LogEntry` (as in `sessionLog`) "
                "per line, as an attachment",
                examples=[Example(summary="One line per event", value=_LOG_LINES)],
            )
        },
    )
    async def export(
        self,
        session_id: FromPath[UUID],
        actor: NamedDependency[Actor],
        store: NamedDependency[ReadStore],
        reads: NamedDependency[ReadYourWrites],
        position: PositionQuery = None,
        position_header: PositionHeader = None,
    ) -> Stream:
        watermark = await reads.watermark(position, position_header)
        first = await anyio.to_thread.run_sync(
            lambda: access.session_log(store, actor, session_id, limit=500)
        )

        async def lines() -> AsyncIterator[bytes]:
            rows = first
            while rows:
                for row in rows:
                    yield msgspec.json.encode(access.log_entry(row)) + b"\n"
                rows = await anyio.to_thread.run_sync(
                    functools.partial(
                        access.session_log,
                        store,
                        actor,
                        session_id,
                        after=rows[-1].notification_id,
                        limit=500,
                    )
                )

        return Stream(
            lines(),
            media_type=JSON_LINES,
            headers={
                "Content-Disposition": f'attachment; filename="session-{session_id}.jsonl"',
                WATERMARK_HEADER: str(watermark),
            },
        )


class CatchUpReadController(Controller):
    path = "/api/v1/catch-ups"
    tags = ("catch-ups",)

    @get(
        "/",
        summary="The centre's catch-ups, most urgent first (a TEACHER: their sessions')",
        operation_id="catchUps",
        opt={"permission": Permission.CATCH_UP_LIST_VIEW},
        responses=answering(answers.CatchUpListAnswer, "A page of catch-ups"),
    )
    async def catch_ups(
        self,
        actor: NamedDependency[Actor],
        store: NamedDependency[ReadStore],
        reads: NamedDependency[ReadYourWrites],
        position: PositionQuery = None,
        position_header: PositionHeader = None,
        status: Annotated[CatchUpStatus | None, QueryParameter(required=False)] = None,
        overdue: Annotated[
            bool,
            QueryParameter(required=False, description="Only open catch-ups past their due date."),
        ] = False,
        tutor_id: Annotated[UUID | None, QueryParameter(name="tutorId", required=False)] = None,
        student_id: Annotated[UUID | None, QueryParameter(name="studentId", required=False)] = None,
        due_before: Annotated[
            datetime | None, QueryParameter(name="dueBefore", required=False)
        ] = None,
        due_after: Annotated[
            datetime | None, QueryParameter(name="dueAfter", required=False)
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200, required=False)] = 50,
        cursor: Annotated[
            str | None,
            QueryParameter(
                required=False, max_length=300, description="`next` of the previous page."
            ),
        ] = None,
    ) -> Response[dict[str, Any]]:
        try:
            after = parse_page_cursor(cursor) if cursor is not None else None
        except ValueError as error:
            raise InvalidQuery(str(error), field="cursor") from None
        wanted = access.CatchUpFilter(
            status=status.value if status else None,
            overdue_only=overdue,
            tutor_id=tutor_id,
            student_id=student_id,
            due_before=_aware(due_before, "dueBefore"),
            due_after=_aware(due_after, "dueAfter"),
            limit=limit,
            after=after,
        )
        return await _answer(
            reads,
            position,
            position_header,
            lambda: access.catch_up_list(store, actor, wanted, utcnow()),
        )


class NotificationReadController(Controller):
    path = "/api/v1/notifications"
    tags = ("notifications",)

    @get(
        "/",
        summary="The caller's own notifications, newest first, a page at a time",
        operation_id="notifications",
        opt={"permission": Permission.NOTIFICATIONS_OWN},
        responses=answering(answers.InboxAnswer, "A page of the caller's notifications"),
    )
    async def notifications(
        self,
        actor: NamedDependency[Actor],
        store: NamedDependency[ReadStore],
        reads: NamedDependency[ReadYourWrites],
        position: PositionQuery = None,
        position_header: PositionHeader = None,
        unread: Annotated[
            bool, QueryParameter(required=False, description="Only the unread ones.")
        ] = False,
        limit: Annotated[int, QueryParameter(ge=1, le=200, required=False)] = 50,
        cursor: Annotated[
            str | None,
            QueryParameter(
                required=False, max_length=300, description="`next` of the previous page."
            ),
        ] = None,
    ) -> Response[dict[str, Any]]:
        try:
            after = notification_views.parse_page_cursor(cursor) if cursor is not None else None
        except ValueError as error:
            raise InvalidQuery(str(error), field="cursor") from None
        return await _answer(
            reads,
            position,
            position_header,
            lambda: notification_views.inbox(
                store, actor, unread_only=unread, limit=limit, after=after
            ),
        )

    @get(
        "/unread-count",
        summary="How many of the caller's notifications are unread",
        operation_id="unreadNotifications",
        opt={"permission": Permission.NOTIFICATIONS_OWN},
        responses=answering(answers.UnreadCountAnswer, "The caller's unread count"),
    )
    async def unread_count(
        self,
        actor: NamedDependency[Actor],
        store: NamedDependency[ReadStore],
        reads: NamedDependency[ReadYourWrites],
        position: PositionQuery = None,
        position_header: PositionHeader = None,
    ) -> Response[dict[str, Any]]:
        return await _answer(
            reads, position, position_header, lambda: notification_views.unread_count(store, actor)
        )

    @get(
        "/preferences",
        summary="Which types of the caller's notifications reach which channel",
        operation_id="notificationPreferences",
        opt={"permission": Permission.NOTIFICATIONS_OWN},
        responses=answering(answers.NotificationPreferencesAnswer, "The caller's choice"),
    )
    async def preferences(
        self,
        actor: NamedDependency[Actor],
        store: NamedDependency[ReadStore],
        reads: NamedDependency[ReadYourWrites],
        position: PositionQuery = None,
        position_header: PositionHeader = None,
    ) -> Response[dict[str, Any]]:
        return await _answer(
            reads, position, position_header, lambda: notification_views.preferences(store, actor)
        )

    @get(
        "/channels",
        summary="The centre's webhook and e-mail settings, never the secret (CENTER_ADMIN)",
        operation_id="notificationChannels",
        opt={"permission": Permission.CENTRE_CONFIGURE},
        responses=answering(answers.CentreChannelsAnswer, "The caller's centre's channels"),
    )
    async def channels(
        self,
        actor: NamedDependency[Actor],
        store: NamedDependency[ReadStore],
        reads: NamedDependency[ReadYourWrites],
        position: PositionQuery = None,
        position_header: PositionHeader = None,
    ) -> Response[dict[str, Any]]:
        return await _answer(
            reads, position, position_header, lambda: notification_views.channels(store, actor)
        )


PNG = "image/png"
MAX_PAPER_PAGE = 99
"""Far above any upload's page count (``shared.events.paper.MAX_PAGES``): a larger number is
refused as a bad value rather than looked for."""

AtQuery = Annotated[
    datetime | None,
    QueryParameter(
        name="at",
        required=False,
        description="The marking as it was then: the ink put on by then (erasures after it "
        "undone), the voice comment and score of then; with `atPosition`, the earlier of the "
        "two.",
    ),
]
AtPositionQuery = Annotated[
    int | None,
    QueryParameter(
        name="atPosition",
        required=False,
        ge=0,
        description="The marking as it was once the event store reached this position (an "
        "annotation's `position`): step through `replay` to watch it stroke by stroke.",
    ),
]


def _moment(at: datetime | None, at_position: int | None) -> paper_views.AsOf:
    if at is not None and _aware(at, "at") > utcnow():
        raise InvalidQuery(
            "'at' is in the future: the past can be replayed, not the future", field="at"
        )
    return paper_views.AsOf(at=iso(at) if at else None, position=at_position)


def _paper_cursor(cursor: str | None) -> tuple[str, str] | None:
    if cursor is None:
        return None
    at, _, upload = cursor.partition("|")
    try:
        parse(at)
        UUID(upload)
    except ValueError:
        raise InvalidQuery("not a cursor this API gave", field="cursor") from None
    return at, upload


class PaperReadController(Controller):
    path = "/api/v1"
    tags = ("paper",)

    @get(
        "/paper/uploads",
        summary="The centre's paper uploads, newest first, by status (staff; UNROUTABLE: "
        "those waiting for their code to be typed in)",
        operation_id="paperUploads",
        opt={"permission": Permission.WORK_GRADE},
        responses=answering(answers.PaperUploadListAnswer, "A page of uploads"),
    )
    async def uploads(
        self,
        actor: NamedDependency[Actor],
        store: NamedDependency[ReadStore],
        reads: NamedDependency[ReadYourWrites],
        position: PositionQuery = None,
        position_header: PositionHeader = None,
        status: Annotated[PaperStatus | None, QueryParameter(required=False)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200, required=False)] = 50,
        cursor: Annotated[
            str | None,
            QueryParameter(
                required=False, max_length=200, description="`next` of the previous page."
            ),
        ] = None,
    ) -> Response[dict[str, Any]]:
        after = _paper_cursor(cursor)
        return await _answer(
            reads,
            position,
            position_header,
            lambda: access.paper_uploads(store, actor, status, limit=limit, after=after),
        )

    @get(
        "/paper/uploads/{upload_id:uuid}",
        summary="A paper upload: its pages (signed URLs), the work it was filed against, its "
        "marking now or as it was then (`at`, `atPosition`)",
        operation_id="paperUpload",
        opt={"permission": Permission.PAPER_VIEW},
        responses=answering(
            answers.PaperUploadAnswer,
            "The upload (students and parents: their own, the marking once handed back)",
        ),
    )
    async def upload(
        self,
        upload_id: FromPath[UUID],
        actor: NamedDependency[Actor],
        store: NamedDependency[ReadStore],
        reads: NamedDependency[ReadYourWrites],
        blobs: NamedDependency[BlobStore],
        position: PositionQuery = None,
        position_header: PositionHeader = None,
        at: AtQuery = None,
        at_position: AtPositionQuery = None,
    ) -> Response[dict[str, Any]]:
        moment = _moment(at, at_position)
        return await _answer(
            reads,
            position,
            position_header,
            lambda: access.paper_upload(store, actor, upload_id, blobs.url, moment),
        )

    @get(
        "/paper/uploads/{upload_id:uuid}/pages/{page:int}/marked.png",
        summary="A page of an upload with the ink drawn on it, as PNG (now, or `at`, `atPosition`)",
        operation_id="markedPaperPage",
        media_type=PNG,
        opt={"permission": Permission.PAPER_VIEW},
        responses={
            200: ResponseSpec(
                data_container=bytes,
                media_type=PNG,
                generate_examples=False,
                description="The scanned page with the marking drawn on it (students and "
                "parents: the ink once it is handed back), with its `ETag`",
            ),
            304: ResponseSpec(
                data_container=None,
                generate_examples=False,
                description="`If-None-Match` named this page with this ink: nothing changed",
            ),
        },
    )
    async def marked_page(
        self,
        upload_id: FromPath[UUID],
        page: Annotated[int, Parameter(ge=0, le=MAX_PAPER_PAGE)],
        actor: NamedDependency[Actor],
        store: NamedDependency[ReadStore],
        reads: NamedDependency[ReadYourWrites],
        pages: NamedDependency[MarkedPages],
        position: PositionQuery = None,
        position_header: PositionHeader = None,
        at: AtQuery = None,
        at_position: AtPositionQuery = None,
        if_none_match: Annotated[
            str | None,
            HeaderParameter(
                name="If-None-Match",
                required=False,
                max_length=200,
                description="The `ETag` of the page as the client has it: 304 if unchanged.",
            ),
        ] = None,
    ) -> Response[bytes]:
        moment = _moment(at, at_position)
        watermark = await reads.watermark(position, position_header)
        ink = await anyio.to_thread.run_sync(
            lambda: access.marked_page(store, actor, upload_id, page, moment)
        )
        tag = entity_tag(ink)
        headers = {
            WATERMARK_HEADER: str(watermark),
            "ETag": tag,
            "Cache-Control": "private, no-cache",
            "X-Content-Type-Options": "nosniff",
        }
        if if_none_match is not None and tag in (t.strip() for t in if_none_match.split(",")):
            return Response(b"", status_code=304, headers=headers)
        png = await anyio.to_thread.run_sync(pages.draw, ink, limiter=pages.limiter)
        return Response(png, media_type=PNG, headers=headers)

    @get(
        "/students/{student_id:uuid}/paper",
        summary="The paper work filed against a student's work, with its marking status and "
        "score once handed back",
        operation_id="studentPaperWork",
        opt={"permission": Permission.PAPER_VIEW},
        responses=answering(answers.StudentPaperAnswer, "The student's uploads, oldest first"),
    )
    async def student_paper(
        self,
        student_id: FromPath[UUID],
        actor: NamedDependency[Actor],
        store: NamedDependency[ReadStore],
        reads: NamedDependency[ReadYourWrites],
        position: PositionQuery = None,
        position_header: PositionHeader = None,
    ) -> Response[dict[str, Any]]:
        return await _answer(
            reads,
            position,
            position_header,
            lambda: access.student_paper(store, actor, student_id),
        )


class PeopleController(Controller):
    path = "/api/v1/people"
    tags = ("privacy",)

    @get(
        "/{person_id:uuid}/export",
        summary="Everything kept about a person, as one JSON document: the events naming "
        "them, the read-model documents about them, and a manifest (subject access; the "
        "centre's CENTER_ADMIN, or a student's guardian)",
        operation_id="exportPerson",
        opt={"permission": Permission.STUDENT_OVERVIEW_VIEW},
        responses={
            200: ResponseSpec(
                data_container=export.ExportAnswer,
                generate_examples=False,
                description="The export, streamed as an attachment (`manifest` comes last). "
                "Personal texts are opened for the caller's centre: an erased person's read "
                "`[erased]`, other people's `[withheld]`",
            )
        },
    )
    async def person_export(
        self,
        person_id: FromPath[UUID],
        actor: NamedDependency[Actor],
        store: NamedDependency[ReadStore],
        reads: NamedDependency[ReadYourWrites],
        log: NamedDependency[export.EventLog | None],
        erasures: NamedDependency[ErasureCheck | None],
    ) -> Stream:
        role, erased, listing = await anyio.to_thread.run_sync(
            export.subject, store, actor, person_id
        )
        if log is None:
            raise NotCaughtUp("this query API reads no event store: the export is not served")
        if erasures is not None and not erased:
            erased = await anyio.to_thread.run_sync(erasures.erased, actor.centre_id, person_id)
        position = await anyio.to_thread.run_sync(log.head)
        watermark = await reads.watermark(position, None)
        return Stream(
            export.export(
                store,
                log,
                actor,
                person_id,
                role=role,
                listing=listing,
                erased=erased,
                position=position,
            ),
            media_type="application/json",
            headers={
                "Content-Disposition": f'attachment; filename="person-{person_id}.json"',
                WATERMARK_HEADER: str(watermark),
            },
        )


ANALYTICS_DEFAULT_DAYS = 30
ANALYTICS_MAX_DAYS = 366


class AnalyticsController(Controller):
    path = "/api/v1/analytics"
    tags = ("analytics",)

    @get(
        "/help-requests",
        summary="Help requests per tutor and priority: counts, response and resolution times",
        operation_id="helpRequestAnalytics",
        opt={"permission": Permission.HELP_ANALYTICS_VIEW},
        responses=answering(answers.HelpAnalyticsAnswer, "The figures of the period"),
    )
    async def help_requests(
        self,
        actor: NamedDependency[Actor],
        store: NamedDependency[ReadStore],
        reads: NamedDependency[ReadYourWrites],
        revealer: NamedDependency[Revealer | None],
        position: PositionQuery = None,
        position_header: PositionHeader = None,
        start: Annotated[
            datetime | None,
            QueryParameter(
                name="from",
                required=False,
                description="Raised at or after (default: 30 days before `to`).",
            ),
        ] = None,
        end: Annotated[
            datetime | None,
            QueryParameter(name="to", required=False, description="Raised before (default: now)."),
        ] = None,
        tutor_id: Annotated[UUID | None, QueryParameter(name="tutorId", required=False)] = None,
    ) -> Response[dict[str, Any]]:
        now = utcnow()
        end = _aware(end, "to") or now
        start = _aware(start, "from") or end - timedelta(days=ANALYTICS_DEFAULT_DAYS)
        if start >= end:
            raise InvalidQuery("'from' must be before 'to'", field="from")
        if end - start > timedelta(days=ANALYTICS_MAX_DAYS):
            raise InvalidQuery(f"ask for at most {ANALYTICS_MAX_DAYS} days at once", field="from")
        return await _answer(
            reads,
            position,
            position_header,
            lambda: access.help_request_analytics(
                store, actor, start, end, tutor_id, now, name_order(revealer, actor.centre_id)
            ),
        )


CONTRACT = Contract(
    problems=frozenset({401, 403, 422, 503}),
    with_body=frozenset(),
    success_headers=(WATERMARK,),
    descriptions={
        422: "A query parameter is invalid: `field` names it.",
        503: "The read models have not reached the position asked for within "
        "`TUTORPULSE_QUERY_WAIT_SECONDS`, a store cannot be reached, or the identity "
        "provider's keys are not at hand; `Retry-After` says when to try again.",
    },
)
"""Every query may answer these problems; one with ids in its path also 404."""


def _not_caught_up(request: Request[Any, Any, Any], exc: NotCaughtUp) -> Response[Any]:
    return problem(503, "Not caught up", str(exc), headers={"Retry-After": "1"})


def _blob_missing(request: Request[Any, Any, Any], exc: BlobNotFound) -> Response[Any]:
    return problem(404, "Not found", "the page's image is not in the file store")


def _blobs_unavailable(request: Request[Any, Any, Any], exc: BlobStoreUnavailable) -> Response[Any]:
    return problem(
        503,
        "Service unavailable",
        f"the file store cannot be read now; retry in {RETRY_AFTER_SECONDS} s",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


class _Lag:
    """``/ready``'s view of the projection lag: the watermark against the event store's head."""

    def __init__(
        self, store: ReadStore, head: Callable[[], int] | None, settings: FreshnessSettings
    ) -> None:
        self._store = store
        self._head = head
        self._reading: asyncio.Future[int] | None = None
        self._freshness = Freshness(settings)

    async def check(self) -> Details:
        watermark = await anyio.to_thread.run_sync(self._store.watermark)
        details: Details = {"watermark": watermark}
        if self._head is None:
            return details
        try:
            head = await self._read_head()
        except Exception as error:  # the event store is not the query API's to serve from
            return details | {"head": None, "headUnknown": describe(error)}
        details |= {"head": head, "lagEvents": max(0, head - watermark)}
        reason = self._freshness.observe(watermark, head)
        if reason is not None:
            raise NotReady(reason, details)
        return details

    async def head_if_known(self) -> int | None:
        """The event store's head, or None when there is none to read or it cannot be read
        now."""
        if self._head is None:
            return None
        try:
            return await self._read_head()
        except Exception:  # /ready reports it; a query only loses the shortcut
            return None

    async def _read_head(self) -> int:
        """The head, waiting at most ``HEAD_TIMEOUT_SECONDS``; one read at a time (a read stuck
        on a dead store is waited for again, never repeated)."""
        assert self._head is not None
        if self._reading is None or self._reading.done():
            self._reading = asyncio.ensure_future(anyio.to_thread.run_sync(self._head))
            self._reading.add_done_callback(lambda done: done.cancelled() or done.exception())
        done, _ = await asyncio.wait({self._reading}, timeout=HEAD_TIMEOUT_SECONDS)
        if not done:
            raise TimeoutError(f"no answer within {HEAD_TIMEOUT_SECONDS} s")
        return self._reading.result()


class _KeyTable:
    """``/ready``'s check of the key store's table (beside the events): one read at a time,
    waited for at most ``HEAD_TIMEOUT_SECONDS``, so a dead database is a fast 503."""

    def __init__(self, keys: KeyStore) -> None:
        self._keys = keys
        self._reading: asyncio.Future[Any] | None = None

    async def check(self) -> Details:
        reading = self._reading
        if reading is None or reading.done():
            reading = self._reading = asyncio.ensure_future(
                anyio.to_thread.run_sync(self._keys.probe)
            )
            reading.add_done_callback(lambda done: done.cancelled() or done.exception())
        done, _ = await asyncio.wait({reading}, timeout=HEAD_TIMEOUT_SECONDS)
        if not done:
            reason = f"the key store did not answer within {HEAD_TIMEOUT_SECONDS} s"
            raise NotReady(reason, {"keyStore": reason})
        error = reading.exception()
        if error is not None:
            raise NotReady(
                "the key store cannot be read: sealed texts cannot be opened",
                {"keyStore": describe(error)},
            )
        return {"keyStore": "ok"}


def create_app(
    store: ReadStore,
    *,
    head: Callable[[], int] | None = None,
    own_resources: bool = True,
    settings: QuerySettings | None = None,
    blobs: BlobStore | None = None,
    render: PageRenderer = render_marked_page,
    keys: KeyStore | None = None,
    log: export.EventLog | None = None,
) -> Litestar:
    """``head``: reads the event store's head, for ``/ready`` to report the projection lag
    (without it only the watermark is reported); ``own_resources``: close the read-model store
    (and the head's connection, and the blob store) when the app stops; ``settings``: by
    default read from the environment; ``blobs``: where scanned pages are kept (by default the
    store the settings name); ``render``: draws the ink on a page; ``keys``: opens the sealed
    texts of every answer and refuses erased people's tokens (without it answers carry them
    sealed), reported by ``/ready``; ``log``: the event store's log, for the subject-access
    export (without it the export is a 503). Both are closed with the app when it owns its
    resources."""
    settings = load(QuerySettings) if settings is None else settings
    blobs = open_blob_store(settings.blobs) if blobs is None else blobs
    lag = _Lag(store, head, settings.freshness)
    key_table = None if keys is None else _KeyTable(keys)
    erasures = None if keys is None else ErasureCheck.of(keys, settings.privacy)
    revealer = None if keys is None else Revealer(keys)

    async def ready() -> Details:
        if key_table is None:
            return await lag.check()
        # Both are read at once; the key store's verdict comes first (answers need it).
        keys_checked = asyncio.ensure_future(key_table.check())
        try:
            details = await lag.check()
        except BaseException:
            keys_checked.cancel()
            raise
        return details | await keys_checked

    def close() -> None:
        store.close()
        blobs.close()
        if head is not None and hasattr(head, "close"):
            head.close()
        if keys is not None:
            keys.close()
        if log is not None and hasattr(log, "close"):
            log.close()

    return api_app(
        SERVICE,
        title="tutorpulse query API",
        controllers=[
            TutorController,
            SessionReadController,
            StudentReadController,
            ClassReadController,
            ExerciseReadController,
            HomeworkReadController,
            CatchUpReadController,
            AnalyticsController,
            NotificationReadController,
            PaperReadController,
            PeopleController,
            blob_route(blobs, settings.blobs),
        ],
        readiness=ready,
        provides={
            "store": store,
            "reads": ReadYourWrites(store, lag, settings.wait_seconds),
            "blobs": blobs,
            "pages": MarkedPages(blobs, render),
            "log": log,
            "erasures": erasures,
            "revealer": revealer,
        },
        contract=CONTRACT,
        settings=settings.api,
        exception_handlers={
            access.NotVisible: simple(404, "Not found"),
            NotCaughtUp: _not_caught_up,
            InvalidQuery: simple(422, "Invalid query"),
            BlobNotFound: _blob_missing,
            BlobStoreUnavailable: _blobs_unavailable,
        },
        on_shutdown=close if own_resources else None,
        revealer=revealer,
        erasures=erasures,
    )


def app_from_environment() -> Litestar:
    """What uvicorn runs: the settings from the environment, once."""
    from services.settings import start
    from shared.eventstore import StoredLog
    from shared.privacy import open_key_store
    from shared.readmodels.store import open_read_store
    from shared.readmodels.store.postgres import PostgresReadStore

    settings = start(QuerySettings, SERVICE)
    log = StoredLog(settings.event_store)
    store = open_read_store(settings.read_store)
    if isinstance(store, PostgresReadStore):
        # Its reads wait for PostgreSQL as long as the event store's at most.
        store.answer_within(settings.event_store.postgres_answer_timeout)
    return create_app(
        store,
        head=log,
        settings=settings,
        keys=open_key_store(
            SERVICE, settings.event_store, settings.privacy, dev_mode=settings.api.tokens.dev_mode
        ),
        log=log,
    )
