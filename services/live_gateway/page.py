"""The tutor's page: My Day and the Control Center in a browser (``docs/web.md``).

Static files shipped in the package (``web/``: plain ES modules, no build step), served at
``/web/`` with a Content-Security-Policy that lets them talk only to this gateway and to the
command and query APIs, and ``/web/config.json`` telling the page where those APIs are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Response, Router, get
from litestar.datastructures import CacheControlHeader
from litestar.response import Redirect
from litestar.static_files import create_static_files_router

from services.live_gateway.settings import WebSettings

WEB = Path(__file__).parent / "web"
"""The page's files."""


def content_security_policy(web: WebSettings) -> str:
    """Scripts and styles only from this origin (no inline script, no eval), connections only
    to this gateway (its websocket) and the two APIs, no frames, no forms posted anywhere."""
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            f"connect-src 'self' {web.command} {web.query}",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        )
    )


def security_headers(web: WebSettings) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(web),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
    }


def page_router(web: WebSettings, *, dev_mode: bool) -> list[Router | Any]:
    """``/`` (to the page), ``/web/`` (the page) and ``/web/config.json``."""
    headers = security_headers(web)
    config = {
        "commandUrl": web.command,
        "queryUrl": web.query,
        "loginUrl": web.login_url,
        "devMode": dev_mode,
    }

    async def with_headers(response: Response[Any]) -> Response[Any]:
        response.headers.update(headers)
        return response

    @get("/", include_in_schema=False)
    async def to_the_page() -> Redirect:
        return Redirect("/web/")

    @get(
        "/web/config.json",
        include_in_schema=False,
        cache_control=CacheControlHeader(no_store=True),
    )
    async def page_config() -> Response[dict[str, Any]]:
        return Response(config, headers=headers)

    files = create_static_files_router(
        "/web",
        [WEB],
        html_mode=True,
        name="web",
        after_request=with_headers,
        cache_control=CacheControlHeader(no_cache=True),
    )
    return [to_the_page, page_config, files]
