"""Photos are safe to accept from anyone: a huge picture in a small file is refused from its header,
nothing of the original's metadata survives (EXIF, GPS, a comment segment), and decoding never runs
on the event loop."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import struct
import time

import pytest
from PIL import Image

from server.db import make_alchemy_config
from server.services import photos
from server.services.errors import ServiceError
from server.settings import Settings
from server.worker import run_jobs_once


def png(size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("L", size, 255).save(out, format="PNG", optimize=True)
    return out.getvalue()


def jpeg_with_comment(comment: bytes) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (640, 480), (30, 120, 200)).save(out, format="JPEG")
    data = out.getvalue()
    segment = b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment  # a COM segment after SOI
    return data[:2] + segment + data[2:]


def test_a_huge_picture_in_a_small_file_is_refused_before_decoding() -> None:
    """The security probe's 8900 x 8900 one-colour PNG: a few hundred KB, 79 megapixels."""
    bomb = png((8900, 8900))
    assert len(bomb) < 1_000_000
    with pytest.raises(ServiceError) as refused:
        photos.check_photos([bomb])
    assert refused.value.message == "This photo is too large to process; please send a smaller one."
    with pytest.raises(ServiceError):
        asyncio.run(photos.process_photos([bomb]))


def test_a_comment_segment_does_not_survive() -> None:
    raw = jpeg_with_comment(b"<script>alert(1)</script>")
    assert Image.open(io.BytesIO(raw)).info.get("comment") == b"<script>alert(1)</script>"
    processed = photos.normalise_photo(raw)
    assert processed.data is not None
    assert b"<script>" not in processed.data
    assert b"\xff\xfe" not in processed.data[: processed.data.index(b"\xff\xda")]  # no COM before the image data
    assert "comment" not in Image.open(io.BytesIO(processed.data)).info


async def test_decoding_runs_off_the_event_loop() -> None:
    """While three large photos are processed, the loop keeps serving (a health check would answer)."""
    out = io.BytesIO()
    Image.effect_noise((3200, 2400), 40).convert("RGB").save(out, format="JPEG", quality=80)
    raws = [out.getvalue()] * 3
    assert len(raws[0]) < photos.MAX_PHOTO_BYTES
    ticks = 0
    done = asyncio.Event()

    async def other_requests() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0.005)

    async def upload() -> list[photos.ProcessedPhoto]:
        try:
            return await photos.process_photos(raws)
        finally:
            done.set()

    _, processed = await asyncio.gather(other_requests(), upload())
    assert [max(p.width, p.height) for p in processed] == [photos.MAX_EDGE] * 3
    assert ticks >= 5, "the event loop stood still while the photos were decoded"


async def test_staged_photos_nobody_used_are_deleted_after_a_week(settings: Settings) -> None:
    """A phone uploaded photos for records it then discarded: the worker's run deletes them once they
    are older than the retention period, and keeps recent ones (a sync may still come)."""
    staging = settings.uploads_dir / "incoming"
    names = {}
    for label, colour in (("old", (200, 30, 30)), ("recent", (30, 200, 30))):
        out = io.BytesIO()
        Image.new("RGB", (320, 240), colour).save(out, format="JPEG")
        raw = out.getvalue()
        sha = hashlib.sha256(raw).hexdigest()
        assert await photos.stage_photo(staging, sha, raw)
        names[label] = sha
    week_and_a_day = 8 * 24 * 3600
    for path in (staging / names["old"][:2]).glob(f"{names['old']}.*"):
        os.utime(path, (time.time() - week_and_a_day,) * 2)
    config = make_alchemy_config(settings)
    try:
        await run_jobs_once(config, settings)
    finally:
        await config.get_engine().dispose()
    assert photos.staged_photo(staging, names["old"]) is None
    assert photos.staged_photo(staging, names["recent"]) is not None
