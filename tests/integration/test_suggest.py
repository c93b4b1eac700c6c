"""The public suggestion box (A1) as a resident's or an enterprise's browser uses it: no account, photos, errors."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator, Sequence
from typing import Any
from pathlib import Path

import pytest
from httpx import Response
from litestar.testing import AsyncTestClient
from PIL import ExifTags, Image
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.app import create_app
from server.models import Appeal, AppealChannel, AppealEvent, AppealPhoto, Notification, Place, SubmitterKind
from server.services.demo import DemoReport
from server.services.photos import MAX_EDGE, photo_path
from server.settings import Settings
from tests.conftest import settings_with
from tests.helpers import Web

TRACK_RE = re.compile(r"^/track/([A-Za-z0-9_-]{20,})\?new=1$")
GOOD = {"audience": "resident", "category": "environment", "description": "楼道里堆满了杂物，影响通行。"}
Photo = tuple[str, bytes, str]


def jpeg(size: tuple[int, int] = (800, 600), *, gps: bool = False) -> bytes:
    image = Image.new("RGB", size, (180, 40, 40))
    exif = Image.Exif()
    if gps:
        exif[ExifTags.Base.Make] = "TestPhone"
        gps_ifd = exif.get_ifd(ExifTags.IFD.GPSInfo)
        gps_ifd[ExifTags.GPS.GPSLatitudeRef] = "N"
        gps_ifd[ExifTags.GPS.GPSLatitude] = (36.0, 40.0, 12.0)
        gps_ifd[ExifTags.GPS.GPSLongitudeRef] = "E"
        gps_ifd[ExifTags.GPS.GPSLongitude] = (117.0, 1.0, 30.0)
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif)
    return out.getvalue()


async def post_suggestion(web: Web, path: str, fields: dict[str, str], photos: Sequence[Photo] = ()) -> Response:
    """Send the form as a browser does: multipart, with an empty file part when no photo was chosen."""
    token = await web.csrf("/suggest")
    files = [("photos", photo) for photo in photos] or [("photos", ("", b"", "application/octet-stream"))]
    return await web.client.post(path, data={**fields, "_csrf_token": token}, files=files)


async def counts(db: AsyncSession) -> dict[str, int]:
    await db.commit()  # a fresh snapshot: see what the app committed
    return {
        model.__name__: await db.scalar(select(func.count()).select_from(model)) or 0
        for model in (Appeal, AppealEvent, AppealPhoto, Notification)
    }


NOTHING = {"Appeal": 0, "AppealEvent": 0, "AppealPhoto": 0, "Notification": 0}


def stored_files(settings: Settings) -> list[Path]:
    return [p for p in settings.uploads_dir.rglob("*") if p.is_file()] if settings.uploads_dir.exists() else []


async def place_named(db: AsyncSession, name: str) -> Place:
    place = await db.scalar(select(Place).where(Place.name == name))
    assert place is not None
    return place


@pytest.fixture
async def compound(db: AsyncSession, demo_data: DemoReport) -> Place:
    return await place_named(db, "东舍坊小区")


def field_error(html: str, name: str) -> str:
    match = re.search(rf'<span class="field-error" id="{name}-error">([^<]*)</span>', html)
    assert match, f"no error shown for {name}"
    return match.group(1)


def typed_value(html: str, name: str) -> str:
    match = re.search(rf'<input[^>]*name="{name}"[^>]*value="([^"]*)"', html)
    assert match, f"no input {name}"
    return match.group(1)


def textarea(html: str, name: str) -> str:
    match = re.search(rf'<textarea[^>]*name="{name}"[^>]*>([^<]*)</textarea>', html)
    assert match, f"no textarea {name}"
    return match.group(1)


async def test_the_form_offers_both_audiences_and_all_categories(client: AsyncTestClient, english: None) -> None:
    """Without JavaScript the select shows both groups; the privacy line says who sees personal data."""
    page = await client.get("/suggest")
    assert page.status_code == 200
    assert '<optgroup label="For residents">' in page.text
    assert '<optgroup label="For enterprises">' in page.text
    assert 'value="environment"' in page.text and 'value="parking"' in page.text
    assert 'name="audience" value="resident" checked' in page.text
    # The gallery is allowed (no `capture`, which forces the camera on Android); photos shrink on the phone.
    assert 'type="file" accept="image/*" multiple data-downscale' in page.text and " capture" not in page.text
    assert "seen only by subdistrict staff" in page.text
    assert "Leave empty to stay anonymous." in page.text


async def test_a_qr_link_prefills_the_place_and_the_audience(client: AsyncTestClient, db: AsyncSession, demo_data: DemoReport) -> None:
    building = await place_named(db, "鲁粮集团办公楼")
    page = await client.get(f"/suggest/{building.code.lower()}")  # codes are typed by hand too
    assert page.status_code == 200
    assert "鲁粮集团办公楼" in page.text
    assert 'name="audience" value="enterprise" checked' in page.text
    assert f'action="/suggest/{building.code}"' in page.text


async def test_a_resident_submits_anonymously_through_a_qr_code(
    web: Web, db: AsyncSession, compound: Place, settings: Settings
) -> None:
    before = await counts(db)  # the demo data set has cases of its own
    response = await post_suggestion(web, f"/suggest/{compound.code}", {**GOOD, "location_detail": "3号楼2单元"})
    assert response.status_code == 303, response.text
    match = TRACK_RE.match(response.headers["location"])
    assert match
    assert (await counts(db))["Appeal"] == before["Appeal"] + 1
    appeal = await db.scalar(select(Appeal).where(Appeal.tracking_code == match.group(1)))
    assert appeal is not None
    assert (appeal.channel, appeal.submitter_kind) == (AppealChannel.QR, SubmitterKind.RESIDENT)
    assert (appeal.place_id, appeal.category, appeal.submitter_name, appeal.submitter_phone) == (compound.id, "environment", None, None)
    assert appeal.location_detail == "3号楼2单元"
    page = await web.client.get(response.headers["location"])
    assert page.status_code == 200
    assert appeal.reference in page.text
    assert f"http://testserver.local/track/{appeal.tracking_code}" in page.text


async def test_an_enterprise_submits_with_name_and_phone_through_the_box(web: Web, db: AsyncSession, english: None) -> None:
    fields = {
        "audience": "enterprise", "category": "parking", "description": "园区门口停车位不够，员工每天找不到车位。",
        "submitter_name": "张经理", "submitter_phone": "138 0000 1234", "location_detail": "B座东门",
    }
    response = await post_suggestion(web, "/suggest", fields)
    assert response.status_code == 303, response.text
    appeal = await db.scalar(select(Appeal))
    assert appeal is not None
    assert (appeal.channel, appeal.submitter_kind, appeal.place_id) == (AppealChannel.SUGGESTION_BOX, SubmitterKind.ENTERPRISE, None)
    assert (appeal.submitter_name, appeal.submitter_phone) == ("张经理", "138 0000 1234")
    page = await web.client.get(response.headers["location"])
    # The confirmation shows what a person can keep: the case number and the 查询码, in large type.
    assert f'<dd id="case-number">{appeal.reference}</dd>' in page.text
    assert f'<dd id="query-code">{appeal.query_code}</dd>' in page.text
    assert "We also send both numbers to the phone number you left." in page.text
    for private in ("张经理", "138 0000 1234", "B座东门"):
        assert private not in page.text


async def test_a_photo_is_downscaled_and_loses_its_location(web: Web, db: AsyncSession, settings: Settings) -> None:
    original = jpeg((3200, 2400), gps=True)
    with Image.open(io.BytesIO(original)) as check:  # the upload really carries GPS data
        assert check.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    response = await post_suggestion(web, "/suggest", GOOD, [("IMG_0001.jpg", original, "image/jpeg")])
    assert response.status_code == 303, response.text
    photo = await db.scalar(select(AppealPhoto))
    assert photo is not None
    assert max(photo.width, photo.height) == MAX_EDGE
    stored = photo_path(settings.uploads_dir, photo.sha256).read_bytes()
    with Image.open(io.BytesIO(stored)) as image:
        assert image.format == "JPEG"
        assert max(image.size) <= MAX_EDGE
        assert len(image.getexif()) == 0
        assert "exif" not in image.info
    assert b"TestPhone" not in stored


@pytest.mark.parametrize(
    ("photos", "message"),
    [
        ([("notes.jpg", b"this is not a picture at all", "image/jpeg")], "Photos must be JPEG, PNG or WebP images."),
        ([("big.jpg", jpeg() + b"\0" * (5 * 1024 * 1024), "image/jpeg")], "Each photo may be at most 5 MB."),
        ([(f"p{i}.jpg", jpeg(), "image/jpeg") for i in range(4)], "At most 3 photos."),
    ],
    ids=["not-an-image", "over-5-MB", "four-photos"],
)
async def test_bad_photos_are_refused_keeping_the_text(
    photos: list[Photo], message: str, web: Web, db: AsyncSession, settings: Settings, english: None
) -> None:
    fields = {**GOOD, "submitter_name": "王阿姨"}
    response = await post_suggestion(web, "/suggest", fields, photos)
    assert response.status_code == 400
    assert field_error(response.text, "photos") == message
    assert 'name="kept_photos"' not in response.text  # refused photos are not kept
    assert textarea(response.text, "description") == GOOD["description"]
    assert typed_value(response.text, "submitter_name") == "王阿姨"
    assert await counts(db) == NOTHING
    assert stored_files(settings) == []


@pytest.mark.parametrize(
    ("description", "message"),
    [
        ("", "Please describe the problem in at least 5 characters."),
        ("有问题", "Please describe the problem in at least 5 characters."),
        ("很" * 2001, "Please keep the description under 2000 characters."),
    ],
    ids=["empty", "too-short", "too-long"],
)
async def test_bad_descriptions_are_refused(description: str, message: str, web: Web, db: AsyncSession, english: None) -> None:
    response = await post_suggestion(web, "/suggest", {**GOOD, "description": description, "submitter_phone": "12345678"})
    assert response.status_code == 400
    assert field_error(response.text, "description") == message
    assert typed_value(response.text, "submitter_phone") == "12345678"
    assert 'value="environment" selected' in response.text
    assert await counts(db) == NOTHING


async def test_every_problem_is_shown_at_once(web: Web, db: AsyncSession, english: None) -> None:
    fields = {"audience": "resident", "category": "parking", "description": "短", "submitter_phone": "not a phone"}
    response = await post_suggestion(web, "/suggest", fields, [("x.jpg", b"nope", "image/jpeg")])
    assert response.status_code == 400
    assert field_error(response.text, "category") == "Please choose a category."
    assert field_error(response.text, "description").startswith("Please describe the problem")
    assert field_error(response.text, "submitter_phone") == "Please enter a valid phone number, or leave it empty."
    assert field_error(response.text, "photos") == "Photos must be JPEG, PNG or WebP images."
    assert await counts(db) == NOTHING


async def test_a_category_of_the_other_audience_is_refused(web: Web, db: AsyncSession, english: None) -> None:
    """An enterprise category (parking) chosen while writing as a resident."""
    response = await post_suggestion(web, "/suggest", {**GOOD, "category": "parking"})
    assert response.status_code == 400
    assert field_error(response.text, "category") == "Please choose a category."
    assert 'value="resident" checked' in response.text
    assert await counts(db) == NOTHING


async def test_a_missing_audience_is_refused(web: Web, db: AsyncSession, english: None) -> None:
    response = await post_suggestion(web, "/suggest", {**GOOD, "audience": "martian"})
    assert response.status_code == 400
    assert field_error(response.text, "audience") == "Please choose whether you write as a resident or an enterprise."
    assert await counts(db) == NOTHING


async def test_an_unknown_place_code_is_a_clear_404(web: Web, db: AsyncSession, demo_data: DemoReport, english: None) -> None:
    before = await counts(db)  # the demo data set has cases of its own
    page = await web.client.get("/suggest/ZZZZZZ")
    assert page.status_code == 404
    assert "Unknown place code" in page.text
    assert 'href="/suggest"' in page.text
    response = await post_suggestion(web, "/suggest/ZZZZZZ", GOOD)
    assert response.status_code == 404
    assert await counts(db) == before


async def test_a_submission_without_the_csrf_token_is_refused(client: AsyncTestClient, db: AsyncSession) -> None:
    await client.get("/suggest")  # the CSRF cookie is set, but the form field is missing
    # No photo attached: Litestar's CSRF check leaves refused uploads for the garbage collector.
    response = await client.post("/suggest", data=GOOD, files=[("photos", ("", b"", "application/octet-stream"))])
    assert response.status_code == 403
    assert await counts(db) == NOTHING


async def test_a_body_too_large_for_three_photos_gets_a_clear_page(client: AsyncTestClient, db: AsyncSession, english: None) -> None:
    web = Web(client)
    photos = [(f"p{i}.jpg", b"\xff" * (6 * 1024 * 1024), "image/jpeg") for i in range(3)]
    response = await post_suggestion(web, "/suggest", GOOD, photos)
    assert response.status_code == 413
    assert "The photos are too large" in response.text
    assert 'href="/suggest"' in response.text
    assert await counts(db) == NOTHING


async def test_three_photos_of_almost_5_MB_fit_in_one_submission(web: Web, db: AsyncSession) -> None:
    padded = jpeg() + b"\0" * (5 * 1024 * 1024 - 20_000)  # trailing bytes after the JPEG end are ignored
    response = await post_suggestion(web, "/suggest", GOOD, [(f"p{i}.jpg", padded, "image/jpeg") for i in range(3)])
    assert response.status_code == 303, response.text[:500]
    assert (await counts(db))["AppealPhoto"] == 3


@pytest.fixture
async def strict_client(settings: Settings) -> AsyncIterator[AsyncTestClient]:
    app = create_app(settings_with(settings, suggest_rate_limit=2))
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as test_client:
        test_client.follow_redirects = False
        await test_client.get("/lang/en")
        yield test_client


async def test_submissions_are_rate_limited_per_client(strict_client: AsyncTestClient, db: AsyncSession) -> None:
    web = Web(strict_client)
    bad = await post_suggestion(web, "/suggest", {**GOOD, "description": ""})
    assert bad.status_code == 400  # mistakes do not count
    for n in range(2):
        assert (await post_suggestion(web, "/suggest", {**GOOD, "description": f"{GOOD['description']}（{n}）"})).status_code == 303
    refused = await post_suggestion(web, "/suggest", {**GOOD, "submitter_name": "李大爷"})
    assert refused.status_code == 429
    assert "You have sent several suggestions in the last hour." in refused.text
    assert textarea(refused.text, "description") == GOOD["description"]
    assert typed_value(refused.text, "submitter_name") == "李大爷"
    assert (await counts(db))["Appeal"] == 2


@pytest.fixture
async def event_app(settings: Settings) -> AsyncIterator[Any]:
    """A 民生面对面 event: everyone on one Wi-Fi address (limits made small to keep the test short)."""
    yield create_app(settings_with(settings, suggest_rate_limit=2, suggest_address_limit=5))


async def test_a_room_of_residents_on_one_address_is_not_refused_but_a_flood_is(event_app: Any, db: AsyncSession) -> None:
    """Each phone is its own browser: five residents behind one address all get through; the
    address ceiling stops the sixth (a flood rotating cookies), and one phone still has its own limit."""
    statuses = []
    for n in range(6):
        async with AsyncTestClient(app=event_app, base_url="http://testserver.local") as phone:
            phone.follow_redirects = False
            response = await post_suggestion(Web(phone), "/suggest", {**GOOD, "description": f"第{n}位居民：楼道灯坏了，晚上很黑。"})
            statuses.append(response.status_code)
    assert statuses == [303] * 5 + [429]
    assert (await counts(db))["Appeal"] == 5


async def test_the_same_text_sent_twice_from_one_phone_makes_one_case(strict_client: AsyncTestClient, db: AsyncSession) -> None:
    """A double tap, or a resend after a weak signal: the second send opens the case the first made."""
    web = Web(strict_client)
    first = await post_suggestion(web, "/suggest", GOOD)
    again = await post_suggestion(web, "/suggest", {**GOOD, "description": "  " + GOOD["description"] + " "})
    assert first.status_code == again.status_code == 303
    assert again.headers["location"] == first.headers["location"]
    assert (await counts(db))["Appeal"] == 1


async def test_good_photos_are_kept_across_a_refused_form(web: Web, db: AsyncSession, settings: Settings, english: None) -> None:
    """The text is too short, the photo is fine: the answer keeps the photo (the resident need not
    choose it again), and the corrected form sends it with the case."""
    response = await post_suggestion(web, "/suggest", {**GOOD, "description": "灯"}, [("lamp.jpg", jpeg((2400, 1800)), "image/jpeg")])
    assert response.status_code == 400
    kept = re.findall(r'name="kept_photos" value="([0-9a-f]{64})"', response.text)
    assert len(kept) == 1
    assert "1 photo from before is kept and will be sent with the form." in response.text
    assert await counts(db) == NOTHING
    fixed = {**GOOD, "kept_photos": kept[0]}
    response = await post_suggestion(web, "/suggest", fixed)
    assert response.status_code == 303, response.text[:300]
    appeal = await db.scalar(select(Appeal))
    assert appeal is not None
    photo = await db.scalar(select(AppealPhoto).where(AppealPhoto.appeal_id == appeal.id))
    assert photo is not None and max(photo.width, photo.height) == 1600
    assert not list((settings.uploads_dir / "incoming").rglob("*.jpg"))  # the staged copy is gone


async def test_a_kept_photo_name_that_was_never_sent_adds_nothing(web: Web, db: AsyncSession) -> None:
    response = await post_suggestion(web, "/suggest", {**GOOD, "kept_photos": "0" * 64})
    assert response.status_code == 303
    assert (await counts(db))["AppealPhoto"] == 0
