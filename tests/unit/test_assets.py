"""Versioned static assets: content-hash URLs, the worker version, and what the worker precaches."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from server.assets import AssetManifest


@pytest.fixture
def root(tmp_path: Path) -> Path:
    files = {
        "service-worker.js": 'const VERSION = "__SW_VERSION__"; const URLS = __PRECACHE_URLS__; const OFF = "__OFFLINE_URL__";',
        "manifest.webmanifest": "{}",
        "css/app.css": "body { color: red; }",
        "js/app.js": "console.log(1);",
        "vendor/htmx.min.js": "/* htmx */",
        "vendor/README.md": "where the vendored files come from",
        "vendor/LICENSE-htmx": "BSD",
        "icons/icon-192.png": "not really a png",
        "img/photo.jpg": "a photo",
    }
    for rel, content in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    return tmp_path


def test_url_carries_the_content_hash(root: Path) -> None:
    """Asset URLs change with the file's content, so browsers never keep a stale copy."""
    digest = hashlib.sha256(b"body { color: red; }").hexdigest()[:12]
    assert AssetManifest(root=root).url("css/app.css") == f"/static/css/app.css?v={digest}"


def test_url_changes_when_the_file_changes(root: Path) -> None:
    before = AssetManifest(root=root).url("css/app.css")
    (root / "css/app.css").write_text("body { color: blue; }", encoding="utf-8")
    assert AssetManifest(root=root).url("css/app.css") != before


def test_version_changes_with_any_file_or_the_release(root: Path) -> None:
    """Any changed asset or a new release label makes a new service worker version."""
    version = AssetManifest(root=root).version
    assert AssetManifest(root=root).version == version
    assert AssetManifest(root=root, release="2026.12").version != version
    (root / "img/photo.jpg").write_text("another photo", encoding="utf-8")
    changed = AssetManifest(root=root).version
    assert changed != version
    (root / "service-worker.js").write_text('const VERSION = "__SW_VERSION__"; // v2', encoding="utf-8")
    assert AssetManifest(root=root).version != changed


def test_precache_lists_only_the_public_shell(root: Path) -> None:
    """Every visitor's worker precaches the public shell; the field app and print files wait for a
    signed-in page of their audience; icons, docs and licences are never precached."""
    assets = AssetManifest(root=root)
    paths = sorted(url.split("?")[0] for url in assets.precache_urls())
    assert paths == ["/static/css/app.css", "/static/js/app.js", "/static/vendor/htmx.min.js"]
    assert all("?v=" in url for url in assets.precache_urls())


def test_the_field_app_is_cached_for_grid_workers_only() -> None:
    assets = AssetManifest()
    field = assets.url("js/field.js")
    assert field not in assets.precache_urls()
    audiences = assets.audience_urls()
    assert field in audiences["grid_worker"] and assets.url("js/outbox.js") in audiences["grid_worker"]
    assert field not in audiences["signed_in"]
    assert f'const OUTBOX_URL = "{assets.url("js/outbox.js")}"' in assets.service_worker_source("/offline")


def test_root_files_and_docs_are_not_static_assets(root: Path) -> None:
    """The worker and manifest have their own routes; README and LICENSE files are not served."""
    assets = AssetManifest(root=root)
    for rel in ("service-worker.js", "manifest.webmanifest", "vendor/README.md", "vendor/LICENSE-htmx"):
        with pytest.raises(LookupError):
            assets.url(rel)
    assert assets.url("img/photo.jpg").startswith("/static/img/photo.jpg?v=")


def test_missing_file_raises_lookup_error(root: Path) -> None:
    """A template naming a file that does not exist fails loudly."""
    with pytest.raises(LookupError, match="css/missing.css"):
        AssetManifest(root=root).url("css/missing.css")


def test_service_worker_source_is_filled_in(root: Path) -> None:
    """The served worker carries the version, the precache list and the offline URL."""
    assets = AssetManifest(root=root)
    source = assets.service_worker_source("/offline")
    assert f'const VERSION = "{assets.version}"' in source
    assert f"const URLS = {json.dumps(assets.precache_urls())};" in source
    assert 'const OFF = "/offline"' in source
    assert "__" not in source
