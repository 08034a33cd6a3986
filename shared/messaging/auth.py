"""Who may do what on NATS: every service connects as its own user, allowed only its job.

* ``relay`` publishes events (``tp.evt.>``), sets up the streams (creates what is missing,
  raises replicas) and reads ``TP_EVENTS``'s last messages; it is the only user that may
  create or change a stream;
* ``projections`` consumes ``TP_EVENTS`` through its durable consumer, publishes change notices
  (``tp.delta.>``) and dead letters (``tp.dlq.>``), and may read both streams' info (it waits
  at start until the relay has created them);
* ``gateway`` only subscribes to change notices;
* ``scheduler`` consumes ``TP_EVENTS`` through its durable consumer (to set, move and cancel
  timers), sets and cancels timers in ``TP_TIMERS`` (publishes schedules on ``tp.timer.plan.>``,
  purges that stream's subjects, reads its schedules), consumes the fired timers through its
  durable consumer on ``TP_TIMERS``, and dead-letters a timer it cannot fire
  (``tp.dlq.scheduler.>``);
* ``notifier`` consumes ``TP_EVENTS`` through its durable consumer (to plan deliveries),
  publishes deliveries on ``tp.notify.>`` (``TP_NOTIFY``), consumes them through its durable
  consumer on ``TP_NOTIFY``, dead-letters a delivery that failed every try
  (``tp.dlq.notifier.>``), and, for its ``redeliver`` CLI, reads and deletes ``TP_DLQ`` messages;
* ``ops`` (operators' CLIs: ``python -m shared.messaging.tail``, the dead-letter CLI) reads
  both streams through ephemeral consumers and single-message gets, and deletes dead letters;
  it writes no message to any subject.

The command service does not use NATS. Each user receives replies (JetStream API answers,
fetched messages, publish acks) only on its own inbox prefix (``_INBOX.<user>.>``), which
``shared.messaging.connect`` sets, so no user can read another's replies.

Passwords come from the environment (``TUTORPULSE_NATS_USER``, ``TUTORPULSE_NATS_PASSWORD``);
``make run`` generates them for every run (``var/nats/``), and ``infra/nats/users.conf`` is the
same authorization block for a deployment, with passwords taken from the server's environment.

``python -m shared.messaging.server_config`` prints that block (``infra/nats/users.conf``).
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from shared.messaging.settings import Credentials, server_password_variable

EVENTS_STREAM = "TP_EVENTS"
DLQ_STREAM = "TP_DLQ"
TIMERS_STREAM = "TP_TIMERS"
NOTIFY_STREAM = "TP_NOTIFY"
PROJECTIONS_CONSUMER = "projections"
"""The projections' durable consumer (``services.projections.service.DURABLE``)."""
SCHEDULER_CONSUMER = "scheduler"
"""The scheduler's durable consumers (one on ``TP_EVENTS``, one on ``TP_TIMERS``)."""
NOTIFIER_CONSUMER = "notifier"
"""The notifier's durable consumers (one on ``TP_EVENTS``, one on ``TP_NOTIFY``)."""

RELAY, PROJECTIONS, GATEWAY, OPS, SCHEDULER = "relay", "projections", "gateway", "ops", "scheduler"
NOTIFIER = "notifier"
SERVICE_USERS = (RELAY, PROJECTIONS, GATEWAY, OPS, SCHEDULER, NOTIFIER)


@dataclass(frozen=True)
class Permissions:
    """Subjects a user may publish to and subscribe to (nothing else)."""

    publish: tuple[str, ...]
    subscribe: tuple[str, ...]


def inbox_prefix(user: str) -> str:
    """Where ``user`` receives replies: ``_INBOX.<user>`` (``_INBOX.<user>.<nuid>``)."""
    return f"_INBOX.{user}"


def _stream_setup() -> tuple[str, ...]:
    """``ensure_streams``: read the streams, create what is missing, raise their replicas."""
    return tuple(
        f"$JS.API.STREAM.{verb}.{stream}"
        for stream in (EVENTS_STREAM, DLQ_STREAM, TIMERS_STREAM, NOTIFY_STREAM)
        for verb in ("INFO", "CREATE", "UPDATE")
    )


def _stream_info() -> tuple[str, ...]:
    """Read both streams' configuration and state (never change them)."""
    return tuple(f"$JS.API.STREAM.INFO.{stream}" for stream in (EVENTS_STREAM, DLQ_STREAM))


def _read_streams() -> tuple[str, ...]:
    """Look at both streams without changing them: info, single messages, ephemeral consumers
    (``CONSUMER.CREATE.<stream>`` without a name can only create an ephemeral one), and the
    flow-control answers ordered consumers send."""
    subjects: list[str] = ["$JS.API.INFO", "$JS.API.STREAM.NAMES", "$JS.API.STREAM.LIST"]
    for stream in (EVENTS_STREAM, DLQ_STREAM):
        subjects += [
            f"$JS.API.STREAM.INFO.{stream}",
            f"$JS.API.STREAM.MSG.GET.{stream}",
            f"$JS.API.DIRECT.GET.{stream}",
            f"$JS.API.DIRECT.GET.{stream}.>",
            f"$JS.API.CONSUMER.CREATE.{stream}",
            f"$JS.API.CONSUMER.LIST.{stream}",
            f"$JS.API.CONSUMER.NAMES.{stream}",
            f"$JS.API.CONSUMER.INFO.{stream}.*",
            f"$JS.FC.{stream}.>",
        ]
    return tuple(subjects)


def _consume(stream: str, consumer: str) -> tuple[str, ...]:
    """Bind to (or create) one durable pull consumer, fetch from it and acknowledge."""
    return (
        f"$JS.API.CONSUMER.INFO.{stream}.{consumer}",
        f"$JS.API.CONSUMER.CREATE.{stream}.{consumer}",
        f"$JS.API.CONSUMER.CREATE.{stream}.{consumer}.>",
        f"$JS.API.CONSUMER.DURABLE.CREATE.{stream}.{consumer}",
        f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}",
        f"$JS.ACK.{stream}.{consumer}.>",
    )


PERMISSIONS: Mapping[str, Permissions] = {
    RELAY: Permissions(
        publish=(
            "tp.evt.>",
            *_stream_setup(),
            # after a failed batch: which of its events the stream already holds
            f"$JS.API.STREAM.MSG.GET.{EVENTS_STREAM}",
            f"$JS.API.DIRECT.GET.{EVENTS_STREAM}",
        ),
        subscribe=(f"{inbox_prefix(RELAY)}.>",),
    ),
    PROJECTIONS: Permissions(
        publish=(
            "tp.delta.>",
            "tp.dlq.>",
            *_stream_info(),
            *_consume(EVENTS_STREAM, PROJECTIONS_CONSUMER),
            # the watermark: the notification id of the message at the ack floor
            f"$JS.API.STREAM.MSG.GET.{EVENTS_STREAM}",
            f"$JS.API.DIRECT.GET.{EVENTS_STREAM}",
        ),
        subscribe=(f"{inbox_prefix(PROJECTIONS)}.>",),
    ),
    GATEWAY: Permissions(publish=(), subscribe=("tp.delta.>",)),
    SCHEDULER: Permissions(
        publish=(
            "tp.timer.plan.>",
            f"tp.dlq.{SCHEDULER_CONSUMER}.>",
            *(f"$JS.API.STREAM.INFO.{s}" for s in (EVENTS_STREAM, DLQ_STREAM, TIMERS_STREAM)),
            *_consume(EVENTS_STREAM, SCHEDULER_CONSUMER),
            *_consume(TIMERS_STREAM, SCHEDULER_CONSUMER),
            # cancelling a timer: purge its schedule's subject
            f"$JS.API.STREAM.PURGE.{TIMERS_STREAM}",
            # a centre's new reminder lead time: read its sessions' schedules to move them
            f"$JS.API.STREAM.MSG.GET.{TIMERS_STREAM}",
            f"$JS.API.DIRECT.GET.{TIMERS_STREAM}",
            f"$JS.API.DIRECT.GET.{TIMERS_STREAM}.>",
        ),
        subscribe=(f"{inbox_prefix(SCHEDULER)}.>",),
    ),
    NOTIFIER: Permissions(
        publish=(
            "tp.notify.>",
            f"tp.dlq.{NOTIFIER_CONSUMER}.>",
            *(f"$JS.API.STREAM.INFO.{s}" for s in (EVENTS_STREAM, DLQ_STREAM, NOTIFY_STREAM)),
            *_consume(EVENTS_STREAM, NOTIFIER_CONSUMER),
            *_consume(NOTIFY_STREAM, NOTIFIER_CONSUMER),
            # its redeliver CLI: read its dead letters one by one, delete those sent again
            f"$JS.API.STREAM.MSG.GET.{DLQ_STREAM}",
            f"$JS.API.STREAM.MSG.DELETE.{DLQ_STREAM}",
        ),
        subscribe=(f"{inbox_prefix(NOTIFIER)}.>",),
    ),
    OPS: Permissions(
        publish=(*_read_streams(), f"$JS.API.STREAM.MSG.DELETE.{DLQ_STREAM}"),
        subscribe=(f"{inbox_prefix(OPS)}.>",),
    ),
}


# --- credentials ---------------------------------------------------------------------------


def generate_credentials(users: Iterable[str] = SERVICE_USERS) -> dict[str, Credentials]:
    """A fresh random password (256 bits) for every user."""
    return {user: Credentials(user, secrets.token_urlsafe(32)) for user in users}


def write_credentials_file(path: Path, credentials: Credentials) -> None:
    """A JSON file only its owner can read (what ``make run`` leaves for operators' CLIs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_private(path, json.dumps({"user": credentials.user, "password": credentials.password}))


def read_credentials_file(path: Path) -> Credentials:
    document = json.loads(path.read_text())
    return Credentials(str(document["user"]), str(document["password"]))


def _write_private(path: Path, text: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)


# --- nats-server configuration -------------------------------------------------------------


def authorization_block(
    passwords: Mapping[str, str], permissions: Mapping[str, Permissions] = PERMISSIONS
) -> str:
    """The nats-server ``authorization`` block for ``permissions``' users.

    ``passwords`` maps each user to its password, or to ``$NAME`` to make the server read it
    from its environment variable ``NAME``.
    """
    lines = ["authorization {", "  users = ["]
    for user, allowed in permissions.items():
        password = passwords[user]
        quoted = password if password.startswith("$") else json.dumps(password)
        publish = {"allow": list(allowed.publish)} if allowed.publish else {"deny": [">"]}
        subscribe = {"allow": list(allowed.subscribe)} if allowed.subscribe else {"deny": [">"]}
        lines += [
            f"    {{user: {json.dumps(user)}, password: {quoted}, permissions: {{",
            f"      publish: {json.dumps(publish)},",
            f"      subscribe: {json.dumps(subscribe)}",
            "    }},",
        ]
    lines += ["  ]", "}", ""]
    return "\n".join(lines)


def deployment_template() -> str:
    """``infra/nats/users.conf``: the authorization block with passwords from the server's
    environment (each ``TUTORPULSE_NATS_<USER>_PASSWORD``, from the same secret as the
    services' ``TUTORPULSE_NATS_PASSWORD``)."""
    header = (
        "# Generated by `python -m shared.messaging.server_config` (shared/messaging/auth.py);\n"
        "# include it in the platform's nats-server configuration. Passwords come from the\n"
        "# server's environment, set from the secret `tutorpulse-nats`.\n"
    )

    return header + authorization_block(
        {user: f"${server_password_variable(user)}" for user in PERMISSIONS}
    )


def write_server_config(
    path: Path,
    base: Path,
    credentials: Mapping[str, Credentials],
    permissions: Mapping[str, Permissions] = PERMISSIONS,
) -> Path:
    """``base``'s settings plus the users of ``credentials``, in a file only its owner reads."""
    path.parent.mkdir(parents=True, exist_ok=True)
    block = authorization_block(
        {user: c.password for user, c in credentials.items()},
        {user: permissions[user] for user in credentials},
    )
    _write_private(path, base.read_text() + "\n" + block)
    return path
