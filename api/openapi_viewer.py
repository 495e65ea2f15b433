"""Swagger UI at /schema/swagger, its files served by the app itself (no CDN at run time, as the console).

The files come from the pinned `swagger-ui-bundle` package (Swagger UI 4.15.5, Apache-2.0, by SmartBear;
packaged by the spec-first project: https://github.com/spec-first/swagger_ui_bundle). litestar's viewers
load theirs from jsDelivr and its favicon from GitHub, so those URLs are replaced and the favicon left out.
Redoc is not offered: it has no pinned package to serve it from.
"""

from __future__ import annotations

from pathlib import Path

import swagger_ui_bundle
from litestar.datastructures import CacheControlHeader
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.router import Router
from litestar.static_files import create_static_files_router

ASSETS = "/schema/assets"


def swagger_viewer() -> SwaggerRenderPlugin:
    return SwaggerRenderPlugin(
        js_url=f"{ASSETS}/swagger-ui-bundle.js",
        css_url=f"{ASSETS}/swagger-ui.css",
        standalone_preset_js_url=f"{ASSETS}/swagger-ui-standalone-preset.js",
        favicon="",
    )


def viewer_assets() -> Router:
    return create_static_files_router(
        ASSETS,
        directories=[Path(swagger_ui_bundle.swagger_ui_path)],
        cache_control=CacheControlHeader(max_age=3600),
        include_in_schema=False,
    )
