"""The scheduler records events as the command service does: through a key store beside the
events, so a timer's event with a personal text is stored sealed. And no process records
events without one: every place in ``services`` that builds a :class:`TutoringCentres` gives it
a key store."""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.command.application import TutoringCentres
from services.command.commands.notes import WriteNote
from services.scheduler.__main__ import build_server, open_centres
from services.scheduler.clock import clock_from
from services.scheduler.service import Scheduler
from services.scheduler.settings import SchedulerSettings
from shared import events
from shared.privacy import PrivacyConfigurationError, is_sealed
from shared.settings import load
from tests.builders import register_centre

ROOT = Path(__file__).resolve().parents[2]


def settings_for(tmp_path: Path, **variables: str) -> SchedulerSettings:
    return load(
        SchedulerSettings, {"TUTORPULSE_SQLITE_PATH": str(tmp_path / "events.db"), **variables}
    )


@pytest.fixture
def centres(tmp_path: Path) -> Iterator[TutoringCentres]:
    opened = open_centres(
        settings_for(
            tmp_path,
            TUTORPULSE_PRIVACY_MASTER_KEYS=os.environ["TUTORPULSE_PRIVACY_MASTER_KEYS"],
        )
    )
    yield opened
    opened.close()


def test_what_the_scheduler_records_is_sealed(centres: TutoringCentres) -> None:
    alpha = register_centre(centres, "alpha")
    centres.handle(
        alpha["tutor"], WriteNote(student_id=alpha["ann"].user_id, content="Ann's cough")
    )
    stored = [events.decode(n.state) for n in centres.recorder.select_notifications(1, 10_000)]
    names = [e.name for e in stored if isinstance(e, events.PersonRegistered)]
    (note,) = [e for e in stored if isinstance(e, events.TutorNoteWritten)]
    assert names and all(is_sealed(name) for name in names)
    assert is_sealed(note.content)
    assert centres.privacy is not None
    assert centres.privacy.revealer.text(note.content, "alpha") == "Ann's cough"
    assert "Ann" in {centres.privacy.revealer.text(name, "alpha") for name in names}


def test_the_scheduler_does_not_start_without_a_master_key(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, TUTORPULSE_PRIVACY_MASTER_KEYS="", TUTORPULSE_DEV_MODE="")
    with pytest.raises(PrivacyConfigurationError, match="TUTORPULSE_PRIVACY_MASTER_KEYS"):
        open_centres(settings)
    development = settings_for(tmp_path, TUTORPULSE_PRIVACY_MASTER_KEYS="", TUTORPULSE_DEV_MODE="1")
    open_centres(development).close()  # the public development key, as the other services


def test_the_scheduler_s_server_refuses_centres_without_a_key_store(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    plain = TutoringCentres(settings.event_store)
    try:
        scheduler = Scheduler(settings, plain, clock_from(settings.clock))
        with pytest.raises(ValueError, match="key store"):
            build_server(scheduler, settings, {"reason": ""})
    finally:
        plain.close()


def _builds_centres(function: ast.AST) -> list[ast.Call]:
    return [
        node
        for node in ast.walk(function)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "TutoringCentres"
    ]


def _given_a_key_store(function: ast.AST, built: ast.Call) -> bool:
    """``privacy=`` at the construction, or the function protects it (``.protect(...)``) or
    hands it to the command app (``create_app``, which protects what it is given)."""
    if any(keyword.arg == "privacy" for keyword in built.keywords):
        return True
    for node in ast.walk(function):
        if isinstance(node, ast.Call):
            callee = node.func
            if isinstance(callee, ast.Attribute) and callee.attr == "protect":
                return True
            if isinstance(callee, ast.Name) and callee.id == "create_app":
                return True
    return False


def test_every_service_recording_events_gives_its_centres_a_key_store() -> None:
    builders: dict[str, bool] = {}
    for path in sorted((ROOT / "services").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for built in _builds_centres(function):
                where = f"{path.relative_to(ROOT)}:{function.name}"
                builders[where] = _given_a_key_store(function, built)
    assert "services/scheduler/__main__.py:open_centres" in builders  # the scan finds them
    unsealed = [where for where, sealed in builders.items() if not sealed]
    assert unsealed == [], "records events in plain text: give it PersonalData (privacy=)"
