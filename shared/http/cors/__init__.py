"""Cross-origin calls from the tutor's page (served by the live gateway, on its own port) to
the command and query APIs: which origins may call them, from a setting.

Unset, development mode allows the gateway's own origin (``http://127.0.0.1:<gateway port>``
and ``http://localhost:<gateway port>``), so the page of ``make run`` works as it is; outside
development mode nothing is allowed unless named. An empty list turns CORS off: browsers then
refuse every cross-origin call, which is what an API nobody calls from a page wants.
"""

from __future__ import annotations

from litestar.config.cors import CORSConfig

from shared.http.cors.settings import CorsSettings

ALLOWED_HEADERS = (
    "Authorization",
    "Content-Type",
    "Idempotency-Key",
    "X-Request-Id",
    "X-Tutorpulse-Position",
    "X-Acting-Centre",
)
"""What the page sends besides the simple headers."""
EXPOSED_HEADERS = ("X-Request-Id", "X-Tutorpulse-Position", "X-Tutorpulse-Watermark", "Retry-After")
"""What the page may read from an answer."""
PREFLIGHT_SECONDS = 600
"""How long a browser may keep a preflight's answer."""


def cors_config(settings: CorsSettings, *, dev_mode: bool) -> CORSConfig | None:
    """Litestar's CORS for the origins allowed; None (no CORS headers at all) for none."""
    origins = settings.allowed(dev_mode=dev_mode)
    if not origins:
        return None
    return CORSConfig(
        allow_origins=list(origins),
        allow_methods=["GET", "POST", "DELETE"],
        allow_headers=list(ALLOWED_HEADERS),
        expose_headers=list(EXPOSED_HEADERS),
        allow_credentials=False,
        max_age=PREFLIGHT_SECONDS,
    )
