"""Paper work's settings: the key sheet codes are signed with, and the limits on scans.

The key is like the token secret (``shared.tenancy.tokens``): required outside development
mode; in development mode (``TUTORPULSE_DEV_MODE=1``) a public development key stands in, so
sheets printed on a development machine cannot be read as anyone's real work elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.events.paper import MAX_PAGES
from shared.settings import SettingsError, declared, setting
from shared.tenancy.settings import JwtSettings

DEV_PAPER_KEY = "tutorpulse-dev-paper-key-change-me-in-production"
"""Public (it is in the source): used only in development mode."""
MIN_KEY_BYTES = 32

_DEV_MODE = next(variable for path, variable in declared(JwtSettings) if path == "dev_mode")
"""Development mode is one variable with one meaning; paper reads it as the tokens do."""


@dataclass(frozen=True)
class PaperSettings:
    key: str | None = setting(
        "TUTORPULSE_PAPER_KEY",
        None,
        "the key printed worksheets' codes are signed with, at least 32 bytes (secret "
        "`tutorpulse-secrets`); required outside development mode",
        secret=True,
    )
    dev_mode: bool = setting(_DEV_MODE.name, _DEV_MODE.default, _DEV_MODE.description)
    max_file_bytes: int = setting(
        "TUTORPULSE_PAPER_MAX_FILE_BYTES",
        10 * 1024 * 1024,
        "the largest photo, PDF or voice comment accepted, in bytes (larger: 413)",
        minimum=1024,
        shown="`10485760` (10 MiB)",
    )
    max_files: int = setting(
        "TUTORPULSE_PAPER_MAX_FILES",
        10,
        "files in one upload of paper work",
        minimum=1,
        maximum=MAX_PAGES,
    )
    max_pixels: int = setting(
        "TUTORPULSE_PAPER_MAX_PIXELS",
        40_000_000,
        "the most pixels one page may have, photo or rasterised PDF page (more: 422)",
        minimum=1_000_000,
    )
    dpi: int = setting(
        "TUTORPULSE_PAPER_DPI",
        150,
        "the resolution PDF scans are rasterised at",
        minimum=72,
        maximum=600,
    )
    max_pages: int = MAX_PAGES
    """Pages in one upload (photos plus the pages of PDFs); not a setting: the events bound it."""

    def signing_key(self) -> bytes:
        """The key sheet codes are signed with: ``TUTORPULSE_PAPER_KEY``, or the public
        development key in development mode; :class:`SettingsError` when it is unset outside
        development mode, or too short."""
        key = self.key or ""
        if not key:
            if not self.dev_mode:
                raise SettingsError(
                    "TUTORPULSE_PAPER_KEY is not set: set it (at least 32 random bytes), or "
                    "TUTORPULSE_DEV_MODE=1 to use the public development key on a development "
                    "machine"
                )
            key = DEV_PAPER_KEY
        if len(key.encode()) < MIN_KEY_BYTES:
            raise SettingsError(
                f"TUTORPULSE_PAPER_KEY has {len(key.encode())} bytes; use at least "
                f"{MIN_KEY_BYTES} random bytes (e.g. `openssl rand -base64 48`)"
            )
        return key.encode()
