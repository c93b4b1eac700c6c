"""Versioned static assets: a content hash per file for cache-busting URLs and the service worker's precache."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from server import PACKAGE_DIR, PROJECT_DIR

PWA_DIR = PROJECT_DIR / "pwa"
STATIC_PREFIX = "/static"
# Served at the root by their own routes, or not served at all.
NOT_STATIC = {"service-worker.js", "manifest.webmanifest"}
NOT_SERVED_SUFFIXES = {".md"}
# Precached by audience: a resident's first visit downloads only the public shell; a signed-in page
# asks the worker for the files of every signed-in user ("signed_in": print styles) and of its
# role (the field app for grid workers); any other file is cached the first time a page uses it.
SHELL = ("css/app.css", "js/app.js", "vendor/htmx.min.js", "icons/favicon.svg")
AUDIENCES: dict[str, tuple[str, ...]] = {
    "grid_worker": ("js/outbox.js", "js/field.js"),
    "building_head": ("js/outbox.js", "js/signals.js"),
    "volunteer": ("js/outbox.js", "js/signals.js"),
    "station_operator": ("js/outbox.js", "js/station.js"),
    "signed_in": ("css/print.css", "js/print.js"),
}
# Roles whose pages write through the one outbox (offline writes, docs/sync.md): their pages load it.
OUTBOX_ROLES = frozenset({"grid_worker", "building_head", "volunteer", "station_operator"})
OUTBOX = "js/outbox.js"  # imported by the worker itself (Background Sync flushes the field outbox)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


@dataclass(frozen=True)
class AssetManifest:
    root: Path = PWA_DIR
    release: str = ""

    @cached_property
    def hashes(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for path in sorted(self.root.rglob("*")):
            rel = path.relative_to(self.root).as_posix()
            if not path.is_file() or rel in NOT_STATIC or path.suffix in NOT_SERVED_SUFFIXES or path.name.startswith("LICENSE"):
                continue
            found[rel] = _digest(path.read_bytes())
        return found

    def url(self, rel: str) -> str:
        try:
            return f"{STATIC_PREFIX}/{rel}?v={self.hashes[rel]}"
        except KeyError:
            msg = f"No static asset {rel!r} under {self.root}"
            raise LookupError(msg) from None

    def precache_urls(self) -> list[str]:
        """The public shell, precached by every visitor's worker."""
        return [self.url(rel) for rel in SHELL if rel in self.hashes]

    def audience_urls(self) -> dict[str, list[str]]:
        """What a signed-in page of each audience asks the worker to cache at once."""
        return {audience: [self.url(rel) for rel in rels if rel in self.hashes] for audience, rels in AUDIENCES.items()}

    @cached_property
    def version(self) -> str:
        """Changes whenever a static file, the worker itself, the offline page or the release label changes."""
        parts = [self.release.encode(), json.dumps(self.hashes, sort_keys=True).encode()]
        parts.append((self.root / "service-worker.js").read_bytes())
        for template in ("offline.html", "base.html"):
            parts.append((PACKAGE_DIR / "templates" / template).read_bytes())
        return _digest(b"\0".join(parts))

    def service_worker_source(self, offline_url: str) -> str:
        source = (self.root / "service-worker.js").read_text(encoding="utf-8")
        return (
            source.replace("__SW_VERSION__", self.version)
            .replace("__PRECACHE_URLS__", json.dumps(self.precache_urls()))
            .replace("__AUDIENCE_URLS__", json.dumps(self.audience_urls()))
            .replace("__OUTBOX_URL__", self.url(OUTBOX) if OUTBOX in self.hashes else "")
            .replace("__OFFLINE_URL__", offline_url)
        )
