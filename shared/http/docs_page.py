"""The API's documentation page (``/schema``), served with everything it needs.

Swagger UI's files come from the swagger-ui-py package and are served by the service itself under
``/schema/assets``, so the page works without internet access and loads nothing from a CDN.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from litestar import Router
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.static_files import create_static_files_router

ASSETS_PATH = "/schema/assets"
_ASSETS = Path(str(files("swagger_ui") / "static"))


def docs_page() -> SwaggerRenderPlugin:
    """Swagger UI at ``/schema`` (and ``/schema/swagger``), from the service's own assets."""
    return SwaggerRenderPlugin(
        js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
        css_url=f"{ASSETS_PATH}/swagger-ui.css",
        standalone_preset_js_url=f"{ASSETS_PATH}/swagger-ui-standalone-preset.js",
        favicon=f"<link rel='icon' type='image/png' href='{ASSETS_PATH}/favicon-32x32.png'>",
    )


def docs_assets() -> Router:
    return create_static_files_router(
        path=ASSETS_PATH, directories=[_ASSETS], include_in_schema=False, name="docs_assets"
    )
