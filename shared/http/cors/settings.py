"""Which origins' pages may call the command and query APIs (``shared.http.cors``)."""

from __future__ import annotations

from dataclasses import dataclass

from shared.settings import setting


def _origins(text: str) -> tuple[str, ...]:
    origins = tuple(item.strip().rstrip("/") for item in text.split(",") if item.strip())
    for origin in origins:
        scheme, _, rest = origin.partition("://")
        if scheme not in ("http", "https") or not rest or "/" in rest or origin == "*":
            raise ValueError(f"an origin is scheme://host[:port], not {origin!r}")
    return origins


@dataclass(frozen=True)
class CorsSettings:
    origins: tuple[str, ...] | None = setting(
        "TUTORPULSE_CORS_ORIGINS",
        None,
        "origins whose pages may call the command and query APIs (comma-separated "
        "`scheme://host[:port]`, no wildcard); unset: in development mode the live gateway's "
        "own origin (its web page), otherwise none",
        parse=_origins,
        shown="the gateway's origin in development mode, else none",
    )
    gateway_port: int = setting(
        "TUTORPULSE_GATEWAY_PORT", 8013, "the live gateway's port", minimum=0, maximum=65535
    )

    def allowed(self, *, dev_mode: bool) -> tuple[str, ...]:
        """The origins allowed, given whether the service runs in development mode."""
        if self.origins is not None:
            return self.origins
        if not dev_mode:
            return ()
        return tuple(f"http://{host}:{self.gateway_port}" for host in ("127.0.0.1", "localhost"))
