"""Settings: every environment variable tutorpulse reads, declared once and read once.

A group of settings is a frozen dataclass; each field that comes from the environment is made
by :func:`setting`, which names the variable and gives its default and a one-line meaning (the
field's annotation is its type). A service composes the groups it needs into its own settings
class (fields with ``default_factory=`` a group), builds it once at start-up with :func:`load`,
and passes it down: no other module reads the environment. ``docs/settings.md`` lists every
variable, and a test keeps that table and these declarations equal.

:func:`load` parses each value by the field's type (``str``, ``int``, ``float``, ``bool`` as a
yes/no word, ``Path``, ``tuple[str, ...]`` as a comma-separated list, a ``Literal`` as one of
its words, ``X | None``) or by the setting's own ``parse``, checks its bounds, and refuses a
bad value with a :class:`SettingsError` that names the variable. Unset or blank is the default.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import types
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

PREFIX = "TUTORPULSE_"
"""Every tutorpulse variable starts with it."""

YES = frozenset({"1", "y", "yes", "t", "true", "on"})
NO = frozenset({"0", "n", "no", "f", "false", "off"})

_VARIABLE = "tutorpulse.variable"
"""Where a field's :class:`Variable` is kept in its dataclass metadata."""

S = TypeVar("S")


class SettingsError(ValueError):
    """A variable's value cannot be used; the message names the variable."""


def flag(value: str | None, *, name: str, default: bool = False) -> bool:
    """A yes/no setting: ``1 y yes t true on`` or ``0 n no f false off`` (any case, spaces
    around ignored); unset or blank is ``default``. Anything else is a :class:`ValueError`
    that names the setting, so a typo stops the service at start instead of meaning "no"."""
    if value is None or not value.strip():
        return default
    word = value.strip().lower()
    if word in YES:
        return True
    if word in NO:
        return False
    raise SettingsError(f"{name} must be yes or no (1/0, true/false, on/off), not {value!r}")


@dataclass(frozen=True)
class Variable:
    """One environment variable: what :func:`setting` declared."""

    name: str
    description: str
    default: Any
    parse: Callable[[str], Any] | None = None
    """Turns the text into the value (raising ValueError); by the field's type when None."""
    minimum: float | None = None
    maximum: float | None = None
    positive: bool = False
    """The value must be above 0."""
    fallback: str | None = None
    """Another variable whose value is used when this one is unset."""
    secret: bool = False
    """Kept as written (not stripped), and never shown."""
    shown: str | None = None
    """How the default reads in the documentation, when the value itself does not say it."""

    @property
    def default_text(self) -> str:
        if self.shown is not None:
            return self.shown
        text = _text(self.default)
        if self.fallback is not None:
            return f"`{self.fallback}`, else {text}"
        return text


def _text(value: Any) -> str:
    if value is None or value == "":
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"`{value:g}`"
    if isinstance(value, tuple):
        return f"`{','.join(map(str, value))}`"
    return f"`{value}`"


def setting(
    name: str,
    default: Any,
    description: str,
    *,
    parse: Callable[[str], Any] | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    positive: bool = False,
    fallback: str | None = None,
    secret: bool = False,
    shown: str | None = None,
) -> Any:
    """A dataclass field read from the environment variable ``name`` (see the module's doc)."""
    if not name.startswith(PREFIX):
        raise ValueError(f"a tutorpulse variable starts with {PREFIX}: {name}")
    variable = Variable(
        name, description, default, parse, minimum, maximum, positive, fallback, secret, shown
    )
    return dataclasses.field(default=default, metadata={_VARIABLE: variable})


def load(cls: type[S], environ: Mapping[str, str] | None = None) -> S:
    """``cls`` with every declared variable read from ``environ`` (the process environment
    when None); raises :class:`SettingsError` naming the first variable it cannot use."""
    source = os.environ if environ is None else environ
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for item in dataclasses.fields(cls):  # type: ignore[arg-type]
        kind = hints[item.name]
        variable: Variable | None = item.metadata.get(_VARIABLE)
        if variable is not None:
            read = _read(variable, kind, source)
            if read is not _UNSET:
                values[item.name] = read
        elif dataclasses.is_dataclass(kind) and isinstance(kind, type):
            values[item.name] = load(kind, source)
    return cls(**values)


def declared(cls: type[Any]) -> Iterator[tuple[str, Variable]]:
    """Every variable a settings class reads, with the dotted path of its field, nested groups
    included (a variable a setting falls back to is listed with it)."""
    hints = typing.get_type_hints(cls)
    for item in dataclasses.fields(cls):
        variable: Variable | None = item.metadata.get(_VARIABLE)
        kind = hints[item.name]
        if variable is not None:
            yield item.name, variable
        elif dataclasses.is_dataclass(kind) and isinstance(kind, type):
            for path, inner in declared(kind):
                yield f"{item.name}.{path}", inner


def variable_name(cls: type[Any], field: str) -> str:
    """The environment variable of ``cls``'s field ``field`` (dotted through groups), for code
    that passes settings on to another process."""
    for path, variable in declared(cls):
        if path == field:
            return variable.name
    raise KeyError(f"{cls.__name__} declares no setting {field!r}")


def unknown_variables(environ: Mapping[str, str], known: Iterable[str]) -> dict[str, str | None]:
    """The ``TUTORPULSE_*`` variables in ``environ`` that nothing declares (a typo, most
    likely), each with the declared name it is closest to, if any."""
    names = set(known)
    return {
        name: next(iter(difflib.get_close_matches(name, names, n=1, cutoff=0.8)), None)
        for name in sorted(environ)
        if name.startswith(PREFIX) and name not in names
    }


# --- reading one variable ------------------------------------------------------------------

_UNSET = object()


def _read(variable: Variable, kind: Any, source: Mapping[str, str]) -> Any:
    name, raw = variable.name, source.get(variable.name)
    if (raw is None or not raw.strip()) and variable.fallback is not None:
        name, raw = variable.fallback, source.get(variable.fallback)
    if raw is None or not raw.strip():
        return _UNSET
    text = raw if variable.secret else raw.strip()
    try:
        value = variable.parse(text) if variable.parse is not None else _parse(kind, text, name)
    except SettingsError:
        raise
    except ValueError as error:
        if variable.parse is not None:
            raise SettingsError(f"{name}: {error}") from None
        raise SettingsError(f"{name} must be {_expected(kind, error)}, not {raw!r}") from None
    _check_bounds(variable, name, value, raw)
    return value


def _parse(kind: Any, text: str, name: str) -> Any:
    optional = _without_none(kind)
    if optional is not None:
        return _parse(optional, text, name)
    if kind is bool:
        return flag(text, name=name)
    if kind is int:
        return int(text)
    if kind is float:
        number = float(text)
        if not math.isfinite(number):
            raise ValueError("not a finite number")
        return number
    if kind is str:
        return text
    if kind is Path:
        return Path(text)
    if typing.get_origin(kind) is tuple:
        return tuple(part.strip() for part in text.split(",") if part.strip())
    if typing.get_origin(kind) is Literal:
        word = text.lower()
        if word not in typing.get_args(kind):
            raise ValueError(word)
        return word
    raise TypeError(f"settings of type {kind!r} need a parse function")


def _without_none(kind: Any) -> Any:
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        others = [arg for arg in typing.get_args(kind) if arg is not type(None)]
        if len(others) == 1 and len(typing.get_args(kind)) == 2:
            return others[0]
    return None


def _expected(kind: Any, error: ValueError) -> str:
    kind = _without_none(kind) or kind
    if kind is int:
        return "a whole number"
    if kind is float:
        return "a number"
    if typing.get_origin(kind) is Literal:
        return " or ".join(repr(word) for word in typing.get_args(kind))
    return str(error) or "valid"


def _check_bounds(variable: Variable, name: str, value: Any, raw: str) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return
    if variable.positive and not value > 0:
        raise SettingsError(f"{name} must be positive, not {raw!r}")
    if variable.minimum is not None and value < variable.minimum:
        raise SettingsError(f"{name} must be at least {variable.minimum:g}, not {raw!r}")
    if variable.maximum is not None and value > variable.maximum:
        raise SettingsError(f"{name} must be at most {variable.maximum:g}, not {raw!r}")


def warn_unknown(known: Iterable[str], environ: Mapping[str, str] | None = None) -> None:
    """Log a warning for each ``TUTORPULSE_*`` variable in the environment that nothing reads."""
    import structlog

    source = os.environ if environ is None else environ
    for name, near in unknown_variables(source, known).items():
        structlog.get_logger(__name__).warning(
            "settings.unknown_variable",
            variable=name,
            did_you_mean=near,
            hint="no tutorpulse program reads it (docs/settings.md lists every variable)",
        )
