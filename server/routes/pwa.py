"""The PWA shell: web app manifest, the service worker at the root scope, the offline page, static files."""

from __future__ import annotations

import json

from litestar.di import NamedDependency
from litestar import Request, Response, get
from litestar.datastructures import CacheControlHeader
from litestar.response import Template
from litestar.static_files import create_static_files_router

from server.assets import PWA_DIR, STATIC_PREFIX, AssetManifest
from server.i18n import gettext as _
from server.security import public
from server.web import THEME_COLOR, render

OFFLINE_URL = "/offline"


@get("/manifest.webmanifest", opt=public(), media_type="application/manifest+json")
async def manifest(request: Request, assets: NamedDependency[AssetManifest]) -> Response[str]:
    body = {
        "name": _("Shanzhi Jiefanglu"),
        "short_name": _("Shanzhi"),
        "description": _("Open government and grid services of Jiefanglu Subdistrict"),
        "lang": "zh-CN",
        "id": "/",
        "start_url": "/?source=pwa",
        "scope": "/",
        "display": "standalone",
        "orientation": "portrait",
        "theme_color": THEME_COLOR,
        "background_color": "#f5f4f2",
        "icons": [
            {"src": assets.url("icons/icon-192.png"), "sizes": "192x192", "type": "image/png", "purpose": "any"},
            {"src": assets.url("icons/icon-512.png"), "sizes": "512x512", "type": "image/png", "purpose": "any"},
            {
                "src": assets.url("icons/icon-maskable-512.png"),
                "sizes": "512x512",
                "type": "image/png",
                "purpose": "maskable",
            },
        ],
    }
    return Response(
        json.dumps(body, ensure_ascii=False),
        media_type="application/manifest+json",
        headers={"Cache-Control": "no-cache"},
    )


@get("/service-worker.js", opt=public(), media_type="text/javascript")
async def service_worker(assets: NamedDependency[AssetManifest]) -> Response[str]:
    # no-cache: the browser must see a new version as soon as it is deployed.
    return Response(
        assets.service_worker_source(OFFLINE_URL),
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/"},
    )


@get(OFFLINE_URL, opt=public())
async def offline_page(request: Request) -> Template:
    # Rendered without the user: this copy is cached on the device and shown to whoever is offline.
    return render(request, "offline.html", user=None)


static_files = create_static_files_router(
    path=STATIC_PREFIX,
    directories=[PWA_DIR],
    opt=public(),
    # URLs carry the file's content hash (?v=...), so a year-long cache is safe.
    cache_control=CacheControlHeader(max_age=365 * 24 * 3600, public=True),
    name="static",
    include_in_schema=False,
)

route_handlers = [manifest, service_worker, offline_page, static_files]
