"""docs/settings.md and the settings declarations say the same, and nothing else reads the
environment."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from services import settings as catalogue
from shared.settings import SettingsError, declared, load, unknown_variables

ROOT = Path(__file__).resolve().parents[2]
VARIABLE = re.compile(r"TUTORPULSE_[A-Z0-9_]+")
PASSES_ITS_ENVIRONMENT_ON = {
    Path("services/cluster.py"),
    Path("services/cluster_ha.py"),
    Path("services/command/__main__.py"),
}
"""``make run`` and ``make cluster`` start the services with their own environment plus
theirs; the command service's start names its metrics directory in its workers' environment."""


def documented_table() -> list[str]:
    lines = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.startswith("|")]


def test_the_documented_table_is_the_declared_one() -> None:
    documented, declared_table = documented_table(), list(catalogue.table())
    documented_names = set(VARIABLE.findall("\n".join(documented)))
    declared_names = set(catalogue.variables())
    assert documented_names - declared_names == set(), "documented, but no program reads them"
    assert declared_names - documented_names == set(), "read, but not in docs/settings.md"
    assert documented == declared_table, "regenerate the table: python -m services.settings"


def test_every_program_reads_its_variables_through_the_declarations_only() -> None:
    readers: list[str] = []
    for path in sorted(
        [*ROOT.joinpath("services").rglob("*.py"), *ROOT.joinpath("shared").rglob("*.py")]
    ):
        relative = path.relative_to(ROOT)
        if path.name == "settings.py" or relative in PASSES_ITS_ENVIRONMENT_ON:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            reads_environment = (
                isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "environb")
            ) or (isinstance(node, ast.Name) and node.id in ("environ", "getenv"))
            names_a_variable = (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and VARIABLE.fullmatch(node.value) is not None
            )
            if reads_environment or names_a_variable:
                readers.append(f"{relative}:{getattr(node, 'lineno', '?')}")
    assert readers == [], "declare the variable in a settings module and pass the value down"


def test_each_variable_is_declared_with_one_meaning() -> None:
    meanings: dict[str, set[tuple[str, str]]] = {}
    for settings in (*catalogue.GROUPS, *catalogue.PROGRAMS.values()):
        for _, variable in declared(settings):
            meanings.setdefault(variable.name, set()).add(
                (variable.default_text, variable.description)
            )
    assert {name: found for name, found in meanings.items() if len(found) > 1} == {}


@pytest.mark.parametrize("program", sorted(catalogue.PROGRAMS))
def test_every_program_starts_on_its_defaults(program: str) -> None:
    """No variable set (development mode aside): each program has settings it can start on."""
    assert load(catalogue.PROGRAMS[program], {"TUTORPULSE_DEV_MODE": "1"}) is not None


def test_a_bad_value_is_refused_by_the_variables_name() -> None:
    with pytest.raises(SettingsError, match="TUTORPULSE_COMMAND_PORT must be at most 65535"):
        load(catalogue.PROGRAMS["command"], {"TUTORPULSE_COMMAND_PORT": "70000"})
    with pytest.raises(SettingsError, match="TUTORPULSE_QUERY_WAIT_SECONDS must be a number"):
        load(catalogue.PROGRAMS["query"], {"TUTORPULSE_QUERY_WAIT_SECONDS": "soon"})


def test_a_misspelt_variable_is_pointed_at_the_one_meant() -> None:
    unknown = unknown_variables(
        {"TUTORPULSE_COMAND_PORT": "8010", "TUTORPULSE_STORE": "sqlite", "PATH": "/bin"},
        catalogue.variables(),
    )
    assert unknown == {"TUTORPULSE_COMAND_PORT": "TUTORPULSE_COMMAND_PORT"}
