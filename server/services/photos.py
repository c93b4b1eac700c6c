"""Photos from phones: validated, downscaled, stripped of metadata (EXIF, GPS), stored by content hash."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from server.i18n import N_
from server.services.errors import ServiceError

MAX_PHOTO_BYTES = 5 * 1024 * 1024
MAX_PHOTOS = 3
MAX_EDGE = 1600
ACCEPTED_FORMATS = {"JPEG", "PNG", "WEBP", "HEIF", "MPO"}
Image.MAX_IMAGE_PIXELS = 40_000_000  # refuse decompression bombs


@dataclass(frozen=True)
class StoredPhoto:
    sha256: str
    media_type: str
    width: int
    height: int
    size: int


def normalise_photo(raw: bytes) -> tuple[bytes, int, int]:
    """JPEG bytes of the photo, upright, at most MAX_EDGE px on its long side, with no metadata."""
    if len(raw) > MAX_PHOTO_BYTES:
        raise ServiceError(N_("Each photo may be at most 5 MB."), field="photos")
    try:
        with Image.open(io.BytesIO(raw)) as image:
            if image.format not in ACCEPTED_FORMATS:
                raise ServiceError(N_("Photos must be JPEG, PNG or WebP images."), field="photos")
            image = ImageOps.exif_transpose(image)
            image = image.convert("RGB")
            image.thumbnail((MAX_EDGE, MAX_EDGE))
            out = io.BytesIO()
            # A fresh encode from pixels only: no EXIF, GPS or maker notes survive.
            image.save(out, format="JPEG", quality=82, optimize=True)
            return out.getvalue(), image.width, image.height
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise ServiceError(N_("Photos must be JPEG, PNG or WebP images."), field="photos") from exc


def store_photo(raw: bytes, uploads_dir: Path) -> StoredPhoto:
    return save_photo(*normalise_photo(raw), uploads_dir)


def save_photo(data: bytes, width: int, height: int, uploads_dir: Path) -> StoredPhoto:
    """Write an already normalised photo (see normalise_photo) under its content hash."""
    digest = hashlib.sha256(data).hexdigest()
    path = photo_path(uploads_dir, digest)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    return StoredPhoto(digest, "image/jpeg", width, height, len(data))


def photo_path(uploads_dir: Path, sha256: str) -> Path:
    return uploads_dir / sha256[:2] / f"{sha256}.jpg"


def stored_photo(uploads_dir: Path, sha256: str) -> Path | None:
    """The stored file for a content hash from a URL, or None (malformed hash, missing file)."""
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        return None
    path = photo_path(uploads_dir, sha256)
    return path if path.is_file() else None
