"""The scheduler's settings (``python -m services.scheduler``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from shared.eventstore.settings import EventStoreSettings
from shared.http.settings import ReadinessSettings
from shared.messaging.settings import NatsSettings
from shared.observability.settings import LogSettings
from shared.privacy.settings import PrivacySettings
from shared.settings import setting
from shared.tenancy.settings import dev_mode_setting


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset")
    return moment


@dataclass(frozen=True)
class TimerSettings:
    """When the timers fall, relative to what they are about."""

    complete_after_minutes: int = setting(
        "TUTORPULSE_SCHEDULER_COMPLETE_AFTER_MINUTES",
        30,
        "a session still LIVE this many minutes after its end is completed by the system",
        minimum=1,
        maximum=24 * 60,
    )
    attendance_after_minutes: int = setting(
        "TUTORPULSE_SCHEDULER_ATTENDANCE_AFTER_MINUTES",
        15,
        "minutes after a session ended that its tutor is reminded of students left unmarked",
        minimum=1,
        maximum=24 * 60,
    )
    due_reminder_hours: float = setting(
        "TUTORPULSE_SCHEDULER_DUE_REMINDER_HOURS",
        24.0,
        "hours before homework or a catch-up is due that the student and parents are reminded",
        positive=True,
        maximum=24 * 14,
    )


@dataclass(frozen=True)
class ClockSettings:
    """The scheduler's clock: the wall clock, or (demos, tests) a faster one."""

    rate: float = setting(
        "TUTORPULSE_SCHEDULER_CLOCK_RATE",
        1.0,
        "how many times faster than the wall clock the scheduler's time runs (1 in production; "
        "60 runs an hour of a centre's day in a minute, counted from the epoch below)",
        positive=True,
        maximum=1_000_000,
    )
    epoch: datetime | None = setting(
        "TUTORPULSE_SCHEDULER_CLOCK_EPOCH",
        None,
        "the moment (RFC 3339) from which a faster clock runs; every replica needs the same "
        "(unset: when the process started)",
        parse=_moment,
    )


@dataclass(frozen=True)
class ConsumerSettings:
    """How the scheduler's two durable consumers behave."""

    poison_after: int = setting(
        "TUTORPULSE_SCHEDULER_POISON_AFTER",
        5,
        "failed attempts at an event or a timer before it goes to the dead letters (`TP_DLQ`)",
        minimum=1,
        maximum=100,
    )
    ack_wait: float = setting(
        "TUTORPULSE_SCHEDULER_ACK_WAIT",
        5.0,
        "seconds a replica may hold an event or a timer unanswered before another gets it "
        "(after a kill -9)",
        minimum=0.5,
        maximum=300,
    )
    fire_batch: int = 16
    """Timers one replica fires at once."""
    max_backoff: float = 5.0
    """The longest wait before a failed event or timer is tried again."""


@dataclass(frozen=True)
class SchedulerSettings:
    host: str = setting(
        "TUTORPULSE_SCHEDULER_HOST",
        "127.0.0.1",
        "the scheduler's address for `/health`, `/ready`, `/metrics` and `/asyncapi.json`",
    )
    port: int = setting(
        "TUTORPULSE_SCHEDULER_PORT", 8015, "the scheduler's port", minimum=0, maximum=65535
    )
    timers: TimerSettings = field(default_factory=TimerSettings)
    clock: ClockSettings = field(default_factory=ClockSettings)
    consumers: ConsumerSettings = field(default_factory=ConsumerSettings)
    event_store: EventStoreSettings = field(default_factory=EventStoreSettings)
    privacy: PrivacySettings = field(default_factory=PrivacySettings)
    """The key store (a table of the event store's database) that seals the personal texts of
    the events its timers record, as the command service seals them."""
    dev_mode: bool = dev_mode_setting()
    """``TUTORPULSE_DEV_MODE`` (declared by the JWT settings): the public development master
    key is accepted, as the other services accept it."""
    nats: NatsSettings = field(default_factory=NatsSettings)
    readiness: ReadinessSettings = field(default_factory=ReadinessSettings)
    logging: LogSettings = field(default_factory=LogSettings)
