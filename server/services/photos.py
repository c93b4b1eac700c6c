"""Photos from phones: checked, downscaled, stripped of every metadata segment (EXIF, GPS, comments),
stored by content hash. Decoding is CPU work: it runs off the event loop, at most two at a time, and
only after the image's header said it is small enough to decode (invariant 9 of ARCHITECTURE.md).

A photo is processed once: when a form arrives with it, or when a phone uploads it for a later sync
(`stage_photo`); the sync push then only links the processed file into place."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from server.i18n import N_
from server.offloop import Slots
from server.services.errors import ServiceError

MAX_PHOTO_BYTES = 5 * 1024 * 1024
MAX_PHOTOS = 3
MAX_EDGE = 1600
# The largest picture we decode: 50 megapixels (a 8000 x 6000 camera photo fits). A small file can
# claim a huge size (an 8900 x 8900 one-colour PNG is 330 KB and 240 MB once decoded): such a
# header is refused before any pixel is decoded.
MAX_PIXELS = 50_000_000
ACCEPTED_FORMATS = {"JPEG", "PNG", "WEBP", "HEIF", "MPO"}
Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # Pillow's own guard, behind ours
DECODES_AT_ONCE = 2  # per event loop (one per server process)
# Taken on the loop, before a thread is asked for: a decode waiting its turn holds no thread of the
# default pool, which password hashing and the other off-loop work share (server/offloop.py).
DECODE_SLOTS = Slots(DECODES_AT_ONCE)
STAGED_RETENTION_SECONDS = 7 * 24 * 3600  # an uploaded photo no sync used is deleted after this


@dataclass(frozen=True)
class ProcessedPhoto:
    """A normalised JPEG: `data` in memory, or `path` on disk (a staged upload)."""

    sha256: str
    width: int
    height: int
    size: int
    data: bytes | None = None
    path: Path | None = None


@dataclass(frozen=True)
class StoredPhoto:
    sha256: str
    media_type: str
    width: int
    height: int
    size: int


def _not_an_image() -> ServiceError:
    return ServiceError(N_("Photos must be JPEG, PNG or WebP images."), field="photos")


def check_photo(raw: bytes) -> None:
    """Cheap checks that read only the header: size in bytes, format, and pixel count. ServiceError if refused."""
    if len(raw) > MAX_PHOTO_BYTES:
        raise ServiceError(N_("Each photo may be at most 5 MB."), field="photos")
    too_large = ServiceError(N_("This photo is too large to process; please send a smaller one."), field="photos")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # refused below, with our message
            with Image.open(io.BytesIO(raw)) as image:  # lazy: reads the header, decodes nothing
                if image.format not in ACCEPTED_FORMATS:
                    raise _not_an_image()
                width, height = image.size
    except Image.DecompressionBombError as exc:
        raise too_large from exc
    except (UnidentifiedImageError, OSError) as exc:
        raise _not_an_image() from exc
    if width * height > MAX_PIXELS:
        raise too_large


def normalise_photo(raw: bytes) -> ProcessedPhoto:
    """The photo as a JPEG, upright, at most MAX_EDGE px on its long side, with no metadata at all.
    CPU work: call it through `process_photos` (off the event loop), never on it."""
    check_photo(raw)
    try:
        with Image.open(io.BytesIO(raw)) as image:
            image.draft("RGB", (MAX_EDGE, MAX_EDGE))  # JPEG: decode at a reduced scale when it can
            image = ImageOps.exif_transpose(image)
            image = image.convert("RGB")
            image.thumbnail((MAX_EDGE, MAX_EDGE))
            # A fresh encode from pixels only; `info` would carry a JPEG comment (COM segment),
            # EXIF, ICC or XMP into the new file, so it goes.
            image.info = {}
            out = io.BytesIO()
            image.save(out, format="JPEG", quality=82, optimize=True)
            data = out.getvalue()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, ValueError) as exc:
        raise _not_an_image() from exc
    return ProcessedPhoto(hashlib.sha256(data).hexdigest(), image.width, image.height, len(data), data=data)


def check_photos(raws: Sequence[bytes]) -> None:
    """The count and every header (cheap: nothing is decoded); ServiceError for the first problem."""
    if len(raws) > MAX_PHOTOS:
        raise ServiceError(N_("At most %(n)d photos."), field="photos", n=MAX_PHOTOS)
    for raw in raws:
        check_photo(raw)


async def process_photos(raws: Sequence[bytes]) -> list[ProcessedPhoto]:
    """Check every photo's header first (so a refused one costs nothing), then decode them off the loop,
    at most DECODES_AT_ONCE at a time. The first refused photo raises ServiceError."""
    check_photos(raws)
    processed = []
    for raw in raws:
        processed.append(await DECODE_SLOTS.run(normalise_photo, raw))
    return processed


def save_photo(photo: ProcessedPhoto, uploads_dir: Path) -> StoredPhoto:
    """Put a processed photo under its content hash (a staged file is linked, not copied, when it can be)."""
    path = photo_path(uploads_dir, photo.sha256)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        if photo.path is not None:
            try:
                os.link(photo.path, tmp)
            except OSError:
                shutil.copyfile(photo.path, tmp)
        else:
            assert photo.data is not None
            tmp.write_bytes(photo.data)
        tmp.replace(path)
    return StoredPhoto(photo.sha256, "image/jpeg", photo.width, photo.height, photo.size)


def photo_path(uploads_dir: Path, sha256: str) -> Path:
    return uploads_dir / sha256[:2] / f"{sha256}.jpg"


def is_sha256(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def stored_photo(uploads_dir: Path, sha256: str) -> Path | None:
    """The stored file for a content hash from a URL, or None (malformed hash, missing file)."""
    if not is_sha256(sha256):
        return None
    path = photo_path(uploads_dir, sha256)
    return path if path.is_file() else None


# --- Staged uploads (sync): processed when uploaded, used by a later push ---------------------------------


def _staged(staging_dir: Path, original_sha256: str) -> tuple[Path, Path]:
    folder = staging_dir / original_sha256[:2]
    return folder / f"{original_sha256}.jpg", folder / f"{original_sha256}.json"


def staged_photo(staging_dir: Path, original_sha256: str) -> ProcessedPhoto | None:
    """The processed photo a phone uploaded under the hash of what it sent, or None."""
    if not is_sha256(original_sha256):
        return None
    image, meta = _staged(staging_dir, original_sha256)
    try:
        info = json.loads(meta.read_text())
    except (OSError, ValueError):
        return None
    if not image.is_file():
        return None
    return ProcessedPhoto(info["sha256"], info["width"], info["height"], info["size"], path=image)


async def stage_photo(staging_dir: Path, original_sha256: str, body: bytes) -> bool:
    """Keep an uploaded photo, processed, until a mutation names it. True when newly stored, False
    when it was already there. ServiceError when the body is not the photo the hash names, or not an
    acceptable image."""
    if not is_sha256(original_sha256):
        raise ServiceError(N_("This value is not valid."), field="photos")
    if len(body) > MAX_PHOTO_BYTES:
        raise ServiceError(N_("Each photo may be at most 5 MB."), field="photos")
    if hashlib.sha256(body).hexdigest() != original_sha256:
        raise ServiceError(N_("The photo arrived damaged; it will be sent again."), field="photos")
    if staged_photo(staging_dir, original_sha256) is not None:
        return False
    [photo] = await process_photos([body])
    image, meta = _staged(staging_dir, original_sha256)
    image.parent.mkdir(parents=True, exist_ok=True)
    suffix = f".{os.getpid()}.tmp"
    assert photo.data is not None
    image.with_suffix(suffix).write_bytes(photo.data)
    image.with_suffix(suffix).replace(image)
    meta.with_suffix(suffix).write_text(json.dumps({"sha256": photo.sha256, "width": photo.width, "height": photo.height, "size": photo.size}))
    meta.with_suffix(suffix).replace(meta)  # written last: a photo counts as staged once its meta is there
    return True


def discard_staged(staging_dir: Path, original_sha256s: Sequence[str]) -> None:
    """Delete staged photos a committed push used (their processed copies live under uploads/ now)."""
    for sha in original_sha256s:
        if is_sha256(sha):
            for path in _staged(staging_dir, sha):
                path.unlink(missing_ok=True)


def purge_staged(staging_dir: Path, *, now: float | None = None, retention: float = STAGED_RETENTION_SECONDS) -> int:
    """Delete staged photos (and stray temporary files) older than the retention period; returns how many."""
    if not staging_dir.is_dir():
        return 0
    limit = (time.time() if now is None else now) - retention
    removed = 0
    for path in staging_dir.glob("*/*"):
        try:
            if path.stat().st_mtime < limit:
                path.unlink()
                removed += path.suffix == ".json"
        except FileNotFoundError:
            continue
    return removed
