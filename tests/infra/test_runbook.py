"""docs/operations.md is a runbook whose commands work as written: every ``python -m`` module it
names answers ``--help``, the command lines it gives for the dead-letter and ops CLIs parse,
its contents link to headings that exist, and every alert has its section (the anchor the
rules link to)."""

from __future__ import annotations

import logging
import re
import runpy
import shlex
import sys
from uuid import uuid4

import msgspec
import pytest
import structlog

from services.ops.restore import parser as ops_parser
from services.projections.dead_letters import parser as dead_letters_parser
from shared import events
from shared.events import base as event_base
from shared.events.base import Event
from tests.support.alerts import ALERTS, component_rules, runbook


def modules() -> list[str]:
    return sorted(set(re.findall(r"python -m ([a-z_][a-z0-9_.]*)", runbook())))


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation gone, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors() -> set[str]:
    return {slug(line.lstrip("#")) for line in runbook().splitlines() if line.startswith("#")}


def command_lines(program: str) -> list[list[str]]:
    """The arguments after ``python -m <program>`` on each line naming it, comments dropped."""
    found: list[list[str]] = []
    for line in runbook().splitlines():
        for match in re.finditer(rf"python -m {re.escape(program)}((?: [^`#|…]*)?)", line):
            # a shell substitution stands for one word: $(date -u +%Y…) in a file name
            found.append(shlex.split(re.sub(r"\$\([^)]*\)", "WHEN", match.group(1))))
    return found


@pytest.mark.parametrize("module", modules())
@pytest.mark.filterwarnings("ignore:.*found in sys.modules after import:RuntimeWarning")
def test_every_module_the_runbook_names_answers_help(
    module: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``python -m <module> --help``, run in this process: argparse answers before the program
    reads its settings, sets up its logging (which would hold on to this test's captured
    output) or connects anywhere."""
    monkeypatch.setattr(sys, "argv", [module, "--help"])
    before, handlers = structlog.get_config(), list(logging.getLogger().handlers)
    try:
        with pytest.raises(SystemExit) as exited:
            runpy.run_module(module, run_name="__main__", alter_sys=True)
        assert exited.value.code in (0, None)
        assert "usage:" in capsys.readouterr().out
        assert structlog.get_config() == before, f"{module} --help set up logging"
        assert logging.getLogger().handlers == handlers, f"{module} --help set up logging"
    finally:
        structlog.configure(**before)
        logging.getLogger().handlers[:] = handlers


def test_the_runbook_names_the_operator_commands() -> None:
    assert {
        "services.migrate",
        "services.ops",
        "services.projections.rebuild",
        "services.projections.dead_letters",
        "services.notifier.redeliver",
    } <= set(modules())


def test_the_dead_letter_and_ops_command_lines_parse() -> None:
    lines = command_lines("services.projections.dead_letters")
    assert {line[0] for line in lines if line} >= {"list", "show", "replay", "discard"}
    for arguments in lines:
        if arguments:
            dead_letters_parser().parse_args(arguments)
    ops_lines = [line for line in command_lines("services.ops") if line]
    assert {line[0] for line in ops_lines} == {"backup", "after-restore", "verify"}
    for arguments in ops_lines:
        ops_parser().parse_args(arguments)


def test_the_contents_link_to_headings_that_exist() -> None:
    text = runbook()
    contents = text[text.index("**Contents**") : text.index("## Signals every service gives")]
    links = re.findall(r"\]\(#([^)]+)\)", contents)
    assert links, "the page starts with its contents"
    assert sorted(set(links) - anchors()) == []


def rule_file_alerts() -> dict[str, str]:
    """Each alert of the PrometheusRules under infra/k8s/components/monitoring, with the
    runbook address it gives (empty when it gives none)."""
    return {alert: url for alert, (url, _) in rule_file().items()}


def rule_file() -> dict[str, tuple[str, str]]:
    """Each alert of the rule files: its runbook address and its expression."""
    found: dict[str, tuple[str, str]] = {}
    for rule in component_rules():
        if "alert" in rule:
            annotations = rule.get("annotations") or {}
            url = str(annotations.get("runbook_url", ""))
            found[rule["alert"]] = (url, str(rule["expr"]))
    return found


def test_every_alert_has_its_section() -> None:
    alerts = set(ALERTS) | set(rule_file_alerts())
    assert sorted(alert.lower() for alert in alerts if alert.lower() not in anchors()) == []
    for alert in alerts:
        section = runbook().split(f"### {alert}\n", 1)[1].split("\n##", 1)[0]
        for part in ("**Fires when**", "**Means**", "**Likely causes**", "**Check**", "**Do**"):
            assert part in section, f"{alert}: no {part}"


def test_each_alert_section_names_the_metrics_its_rule_reads() -> None:
    """The section says what the rule measures: every tutorpulse metric of its expression."""
    for alert, (_, expression) in rule_file().items():
        section = runbook().split(f"### {alert}\n", 1)[1].split("\n##", 1)[0]
        metrics = set(re.findall(r"tutorpulse_[a-z_]+", expression))
        assert sorted(m for m in metrics if m not in section) == [], alert


def test_the_rules_link_to_their_sections() -> None:
    for alert, url in rule_file_alerts().items():
        if url:
            assert url.endswith(f"docs/operations.md#{alert.lower()}"), (alert, url)


def test_an_older_release_reads_an_added_field_but_not_a_renamed_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As "Upgrading, with a schema change" says: a pod of the previous release, whose type is
    still at schema 1, ignores a field a newer shape added, and fails on one it renamed (its
    projection then dead-letters the event): why readers roll first."""
    # The probe's type is registered for this test only (the tests of every event type must
    # not meet it).
    monkeypatch.setattr(event_base, "_REGISTRY", dict(event_base._REGISTRY))

    class _RunbookProbe(Event, frozen=True, kw_only=True):
        name: str

    envelope = {
        "type": "_RunbookProbe",
        "centreId": "alpha",
        "aggregateId": str(uuid4()),
        "aggregateVersion": 1,
        "occurredAt": "2026-11-25T00:00:00Z",
        "actorId": str(uuid4()),
        "actorRole": "TEACHER",
        "schemaVersion": 2,
    }
    added = events.decode(msgspec.json.encode({**envelope, "name": "Ann", "nickname": "A"}))
    assert isinstance(added, _RunbookProbe) and added.name == "Ann"
    with pytest.raises(msgspec.ValidationError):
        events.decode(msgspec.json.encode({**envelope, "fullName": "Ann"}))
