"""The installable app shell: manifest, icons, service worker, static files and the offline page."""

from __future__ import annotations

import json
import re
import struct

from litestar.testing import AsyncTestClient

from server.assets import AssetManifest
from server.models import Role
from server.settings import Settings
from tests.conftest import TEST_PASSWORD
from tests.helpers import Web

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
YEAR = 365 * 24 * 3600
LINK_RE = re.compile(r'(?:href|src)="(/static/[^"]+|/manifest\.webmanifest)"')


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk, which must come first."""
    assert data[:8] == PNG_SIGNATURE, "not a PNG"
    length, chunk_type = struct.unpack(">I4s", data[8:16])
    assert chunk_type == b"IHDR" and length == 13
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def max_age(cache_control: str) -> int:
    match = re.search(r"max-age=(\d+)", cache_control)
    assert match, f"no max-age in {cache_control!r}"
    return int(match.group(1))


async def test_manifest_describes_an_installable_app(client: AsyncTestClient) -> None:
    """The manifest has what browsers need to offer "add to home screen"."""
    response = await client.get("/manifest.webmanifest")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/manifest+json")
    manifest = json.loads(response.text)
    assert manifest["name"] == "善治解放路"
    assert manifest["short_name"]
    assert manifest["start_url"].startswith("/")
    assert manifest["display"] == "standalone"
    assert manifest["scope"] == "/"
    assert re.fullmatch(r"#[0-9a-fA-F]{6}", manifest["theme_color"])
    sizes = {icon["sizes"] for icon in manifest["icons"]}
    assert {"192x192", "512x512"} <= sizes
    assert [icon["purpose"] for icon in manifest["icons"]].count("maskable") == 1


async def test_manifest_icons_are_served_at_their_declared_size(client: AsyncTestClient) -> None:
    """Every icon the manifest names exists, is a PNG, and has the size it claims."""
    manifest = json.loads((await client.get("/manifest.webmanifest")).text)
    for icon in manifest["icons"]:
        response = await client.get(icon["src"])
        assert response.status_code == 200, icon["src"]
        assert response.headers["content-type"] == "image/png", icon["src"]
        width, height = png_size(response.content)
        assert f"{width}x{height}" == icon["sizes"], icon["src"]


async def test_service_worker_is_fresh_and_versioned(client: AsyncTestClient, settings: Settings) -> None:
    """The worker is revalidated on every load and carries the current asset version."""
    response = await client.get("/service-worker.js")
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] in {"text/javascript", "application/javascript"}
    assert "no-cache" in response.headers["cache-control"]
    version = AssetManifest(release=settings.release).version
    assert f'const VERSION = "{version}"' in response.text
    assert "__SW_VERSION__" not in response.text
    assert "__PRECACHE_URLS__" not in response.text
    assert "__OFFLINE_URL__" not in response.text


async def test_every_precached_url_is_served(client: AsyncTestClient) -> None:
    """Installing the worker fails if any precached URL is missing; all of them are served."""
    source = (await client.get("/service-worker.js")).text
    match = re.search(r"const PRECACHE_URLS = (\[.*?\]);", source, re.S)
    assert match
    urls = json.loads(match.group(1))
    assert any(url.startswith("/static/css/") for url in urls)
    assert any(url.startswith("/static/js/") for url in urls)
    offline = re.search(r'const OFFLINE_URL = "([^"]+)"', source)
    assert offline
    for url in [*urls, offline.group(1)]:
        response = await client.get(url)
        assert response.status_code == 200, url


async def test_static_assets_are_cached_long(client: AsyncTestClient) -> None:
    """Versioned static files may be kept by the browser for a year."""
    for path in ("/static/css/app.css", "/static/js/app.js", "/static/vendor/htmx.min.js", "/static/icons/icon-192.png"):
        response = await client.get(path)
        assert response.status_code == 200, path
        assert max_age(response.headers["cache-control"]) >= YEAR, path


async def test_offline_page_never_shows_the_user(client: AsyncTestClient, web: Web, people: dict[Role, str]) -> None:
    """The offline page is cached on a shared phone: it must not carry anyone's name."""
    await web.login(people[Role.GRID_WORKER], TEST_PASSWORD)
    assert "测试grid_worker" in (await client.get("/grid")).text
    response = await client.get("/offline")
    assert response.status_code == 200
    assert "当前没有网络" in response.text
    assert "测试grid_worker" not in response.text
    assert 'action="/logout"' not in response.text


async def test_every_page_links_only_to_served_assets(client: AsyncTestClient, web: Web, people: dict[Role, str]) -> None:
    """The manifest link and every static_url on the pages resolve."""
    pages = [await client.get("/login"), await client.get("/offline"), await client.get("/no-such-page")]
    await web.login(people[Role.ADMIN], TEST_PASSWORD)
    pages += [await client.get("/admin"), await client.get("/places")]
    links: set[str] = set()
    for page in pages:
        assert '<link rel="manifest" href="/manifest.webmanifest">' in page.text
        links.update(LINK_RE.findall(page.text))
    assert any(link.startswith("/static/") for link in links)
    for link in sorted(links):
        response = await client.get(link.replace("&amp;", "&"))
        assert response.status_code == 200, link


async def test_text_responses_are_compressed_for_a_phone_on_a_weak_signal(client: AsyncTestClient) -> None:
    """Pages, scripts and styles travel brotli-compressed to a browser that accepts it, gzip to one
    that accepts only gzip, and whole to one that accepts neither; the page reads the same."""
    plain = await client.get("/suggest", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    for encoding in ("br", "gzip"):
        packed = await client.get("/suggest", headers={"Accept-Encoding": encoding})
        assert packed.headers["content-encoding"] == encoding
        assert "Accept-Encoding" in packed.headers.get("vary", "")
        assert packed.text.count("<form") == plain.text.count("<form") >= 1
        assert packed.num_bytes_downloaded < len(plain.content) / 2, (encoding, packed.num_bytes_downloaded)
    page = (await client.get("/suggest")).text
    scripts = [path for path in LINK_RE.findall(page) if path.split("?")[0].endswith((".js", ".css"))]
    assert len(scripts) >= 2
    for path in scripts:
        asset = await client.get(path, headers={"Accept-Encoding": "br, gzip"})
        assert asset.headers.get("content-encoding") in {"br", "gzip"}, path


async def test_an_unchanged_page_is_revalidated_for_a_few_hundred_bytes(client: AsyncTestClient) -> None:
    """The service worker sends back the tag of the copy it saved: an unchanged page answers 304 with
    no body; a page that changed answers 200 with its new tag. Pages stay out of the browser's cache."""
    first = await client.get("/suggest")
    etag = first.headers["etag"]
    assert etag.startswith('W/"') and first.headers["cache-control"] == "no-store"
    again = await client.get("/suggest", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    other = await client.get("/track", headers={"If-None-Match": etag})  # another page: another body
    assert other.status_code == 200 and other.headers["etag"] != etag
    assert "etag" not in (await client.get("/manifest.webmanifest")).headers  # pages only
