"""JSON merge patches (RFC 7386): how the live gateway sends a view's changes."""

from __future__ import annotations

from typing import Any


def merge_patch(before: Any, after: Any) -> Any:
    """The merge patch that turns ``before`` into ``after``. A value that is the very object
    it was is not compared."""
    if not isinstance(before, dict) or not isinstance(after, dict):
        return after
    patch: dict[str, Any] = {key: None for key in before if key not in after}
    for key, value in after.items():
        old = before.get(key, _ABSENT)
        if old is value:
            continue
        if old is _ABSENT:
            patch[key] = value
        elif old != value:
            if isinstance(value, dict) and isinstance(old, dict):
                patch[key] = merge_patch(old, value)
            else:
                patch[key] = value
    return patch


_ABSENT: Any = object()


def apply_merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result
