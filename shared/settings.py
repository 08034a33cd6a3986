"""Reading settings from the environment the same way everywhere."""

from __future__ import annotations

YES = frozenset({"1", "y", "yes", "t", "true", "on"})
NO = frozenset({"0", "n", "no", "f", "false", "off"})


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
    raise ValueError(f"{name} must be yes or no (1/0, true/false, on/off), not {value!r}")
