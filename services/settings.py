"""Every program's settings in one place: which variables each reads (``docs/settings.md`` is
this catalogue as a table, and a test keeps the two equal), and how a program starts with them.

    python -m services.settings        # print the table of docs/settings.md
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from services.command.settings import CommandSettings, SeedSettings
from services.live_gateway.settings import GatewaySettings, LiveClientSettings
from services.migrate.settings import MigrateSettings
from services.notifier.settings import NotifierServiceSettings, RedeliverSettings
from services.ops.settings import OpsSettings
from services.projections.settings import (
    DeadLetterSettings,
    ProjectionServiceSettings,
    RebuildSettings,
)
from services.query.settings import QuerySettings
from services.relay.settings import RelayServiceSettings
from services.scheduler.settings import SchedulerSettings
from shared.blobs.settings import BlobSettings
from shared.eventstore.settings import EventStoreSettings
from shared.http.settings import RateLimitSettings, ReadinessSettings
from shared.messaging.auth import PERMISSIONS
from shared.messaging.settings import (
    NatsSettings,
    StreamSettings,
    TailSettings,
    server_password_variable,
)
from shared.observability import LogSettings, configure_logging
from shared.paper.settings import PaperSettings
from shared.privacy.settings import PrivacySettings
from shared.readmodels.store.settings import ReadStoreSettings
from shared.settings import SettingsError, Variable, declared, load, setting, warn_unknown
from shared.tenancy.settings import JwtSettings


@dataclass(frozen=True)
class ClusterSettings:
    """``make run`` (``services/cluster.py``); it passes everything else on to the services."""

    nats_port: int = setting(
        "TUTORPULSE_NATS_PORT",
        4222,
        "the port `make run` starts nats-server on",
        minimum=1,
        maximum=65535,
    )


@dataclass(frozen=True)
class HaClusterSettings:
    """``make cluster`` (``services/cluster_ha.py``); it passes everything else on to the
    services."""

    base_port: int = setting(
        "TUTORPULSE_CLUSTER_BASE_PORT",
        8100,
        "the first of the 39 consecutive ports `make cluster` listens on: two replicas of each "
        "service from it, PostgreSQL at +20, the NATS servers' client ports at +30, routes at "
        "+33 and monitoring at +36",
        minimum=1024,
        maximum=65000,
    )


PROGRAMS: dict[str, type[Any]] = {
    "command": CommandSettings,
    "relay": RelayServiceSettings,
    "projections": ProjectionServiceSettings,
    "query": QuerySettings,
    "live_gateway": GatewaySettings,
    "scheduler": SchedulerSettings,
    "notifier": NotifierServiceSettings,
    "seed": SeedSettings,
    "migrate": MigrateSettings,
    "rebuild": RebuildSettings,
    "dead-letters": DeadLetterSettings,
    "ops": OpsSettings,
    "redeliver": RedeliverSettings,
    "tail": TailSettings,
    "live client": LiveClientSettings,
    "tp-token": JwtSettings,
    "make run": ClusterSettings,
    "make cluster": HaClusterSettings,
}
"""Each program (the services, then the commands) and its settings class."""


GROUPS: tuple[type[Any], ...] = (
    EventStoreSettings,
    ReadStoreSettings,
    NatsSettings,
    StreamSettings,
    JwtSettings,
    BlobSettings,
    ReadinessSettings,
    RateLimitSettings,
    PaperSettings,
    PrivacySettings,
    LogSettings,
)
"""The groups several programs share, in the order the table lists them (before each
program's own variables)."""


def variables() -> dict[str, Variable]:
    """Every variable any program reads, by name: the shared groups', then each program's own."""
    found: dict[str, Variable] = {}
    for settings in (*GROUPS, *PROGRAMS.values()):
        for _, variable in declared(settings):
            found.setdefault(variable.name, variable)
    return found


def programs_reading(name: str) -> list[str]:
    """The programs that read ``name``: declare it, or fall back to it."""
    return [
        program
        for program, settings in PROGRAMS.items()
        if any(name in (variable.name, variable.fallback) for _, variable in declared(settings))
    ]


def table() -> Iterator[str]:
    """docs/settings.md's table, a line at a time."""
    yield "| variable | default | read by | meaning |"
    yield "|---|---|---|---|"
    for name, variable in variables().items():
        cells = (
            f"`{name}`",
            variable.default_text,
            ", ".join(programs_reading(name)),
            variable.description,
        )
        yield "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


class Logged(Protocol):
    @property
    def logging(self) -> LogSettings: ...


L = TypeVar("L", bound=Logged)
S = TypeVar("S")


def load_or_exit(
    settings_class: type[S], program: str, environ: Mapping[str, str] | None = None
) -> S:
    """A program's settings from the environment (or ``environ``); a value that cannot be used
    stops the program with a message naming the variable."""
    try:
        return load(settings_class, environ)
    except SettingsError as error:
        raise SystemExit(f"{program}: {error}") from None


def start(settings_class: type[L], program: str) -> L:
    """A program's settings, read from the environment once at its start
    (:func:`load_or_exit`); then logging is configured and a ``TUTORPULSE_*`` variable nothing
    reads (a typo?) is logged as a warning."""
    settings = load_or_exit(settings_class, program)
    configure_logging(program, settings.logging)
    warn_unknown([*variables(), *(server_password_variable(user) for user in PERMISSIONS)])
    return settings


if __name__ == "__main__":
    print("\n".join(table()))
