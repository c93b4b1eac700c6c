"""More of what the outside client and the security probe found (issue 10), one test per finding: what a
third-party client reads in /sync/schema.json, a grid worker's web intake, the link in the resident's SMS,
and photos waiting to be decoded while someone signs in."""

from __future__ import annotations

import asyncio
import io
import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient
from PIL import Image
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.app import create_app
from server.models import Appeal, AppealStatus, Evaluation, OutboundMessage, SubmitterKind, VisitMethod
from server.services import accounts, appeals, notifications, photos
from server.settings import Settings
from sync import ops
from tests.helpers import Web
from tests.integration.sync_world import PASSWORD, World, make_world

SYNC_DOC = Path(__file__).resolve().parents[2] / "docs" / "sync.md"


# --- GET /sync/schema.json: what a client written from docs/sync.md relies on -------------------------------


def _documented(heading: str) -> dict[str, set[str]]:
    """The first table under `heading` in docs/sync.md: its key (`entity` or `entity.op`) -> the field names
    it lists (the backticked names outside parentheses, before a dash or a semicolon starts the notes)."""
    rows: dict[str, set[str]] = {}
    lines = SYNC_DOC.read_text().split(heading, 1)[1].splitlines()
    table = [line for line in lines[next(i for i, line in enumerate(lines) if line.startswith("|")):]]
    for line in table:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        if not cells[0].startswith("`"):
            continue  # the header and its rule
        key = cells[0].strip("`") if heading.endswith("Pull records") else f"{cells[0].strip('`')}.{cells[1].strip('`')}"
        text = cells[1] if heading.endswith("Pull records") else cells[2]
        while (shorter := re.sub(r"\([^()]*\)", "", text)) != text:
            text = shorter
        text = re.split(r" — |;", text)[0]
        rows[key] = set() if text.startswith("none") else set(re.findall(r"`([a-z_]+)`", text))
    return rows


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/")
        assert name in components, f"{schema['$ref']} does not resolve"
        schema = components[name]
    return schema


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [*([node["$ref"]] if "$ref" in node else []), *(r for value in node.values() for r in _refs(value))]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


async def test_the_schema_document_describes_every_operation_and_pull_record(client: AsyncTestClient) -> None:
    """Anyone may read it; it lists every registered operation with who may send it and the exact fields
    (names, required ones, options) the server decodes, and every pull record's data; every reference in
    it resolves; and the names are those docs/sync.md gives."""
    response = await client.get("/sync/schema.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    document = response.json()
    components = document["components"]
    assert all(ref.removeprefix("#/components/") in components for ref in _refs(document))

    listed = {f"{o['entity']}.{o['op']}": o for o in document["operations"]}
    assert set(listed) == {f"{entity}.{op}" for entity, op in ops.OPERATIONS}
    documented = _documented("### Operations")
    assert set(documented) == set(listed)
    for key, entry in listed.items():
        operation = ops.OPERATIONS[tuple(key.split("."))]  # type: ignore[index]
        assert entry["senders"] == sorted(operation.senders) and entry["summary"].strip()
        fields = _resolve(entry["fields"], components)
        struct_fields = msgspec.structs.fields(operation.schema)
        assert set(fields.get("properties", {})) == {f.encode_name for f in struct_fields} == documented[key], key
        assert set(fields.get("required", [])) == {f.encode_name for f in struct_fields if f.required}, key

    pulled = {p["entity"]: p for p in document["pull"]}
    assert set(pulled) == {entity for entity, source in ops.PULL_SOURCES.items() if source.schema is not None}
    documented = _documented("### Pull records")
    assert set(documented) == set(pulled)
    for entity, entry in pulled.items():
        assert set(_resolve(entry["data"], components)["properties"]) == documented[entity], entity

    # The field app's operations, as a client writes them: the options are the server's enums, and an
    # edit may carry exactly the details the server lets a worker correct, nothing else.
    appeal_create = _resolve(listed["appeal.create"]["fields"], components)
    assert set(_resolve(appeal_create["properties"]["submitter_kind"], components)["enum"]) == {k.value for k in SubmitterKind}
    assert appeal_create["properties"]["photos"]["maxItems"] == photos.MAX_PHOTOS
    return_visit = _resolve(listed["appeal.return_visit"]["fields"], components)
    assert return_visit["required"] == ["method"]
    assert set(_resolve(return_visit["properties"]["method"], components)["enum"]) == {m.value for m in VisitMethod}
    assert {v for option in return_visit["properties"]["evaluation"]["anyOf"] for v in _resolve(option, components).get("enum", [])} == {
        e.value for e in Evaluation
    }
    update = _resolve(listed["appeal.update"]["fields"], components)
    assert set(update["properties"]) == set(appeals.EDITABLE_DETAILS)
    assert update["required"] == [] and update["additionalProperties"] is False
    visit = _resolve(listed["visit.create"]["fields"], components)
    inside = _resolve(visit["properties"]["appeals"]["items"], components)
    assert set(inside["properties"]) == set(appeal_create["properties"]) | {"id"} and "id" in inside["required"]


# --- A grid worker's web intake: the field app's rule, not a second way in ----------------------------------


@pytest.fixture
async def world(settings: Settings) -> World:
    return await make_world(settings)


def _intake(world: World, place_id: object) -> dict[str, str]:
    return {
        "channel": "visit", "submitter_kind": "resident", "category": "facilities", "description": "楼道灯坏了三天，晚上很黑",
        "place": str(place_id), "submitter_name": "", "submitter_phone": "", "location_detail": "3号楼2单元",
    }


async def test_a_grid_worker_records_appeals_in_the_field_app(client: AsyncTestClient, web: Web, world: World, db: AsyncSession) -> None:
    """/appeals/new sends a grid worker to the field app's form (the one that works offline); a form posted
    to it anyway is held to the field app's rule: a place of another grid is refused, with what was typed
    kept, and nothing is recorded; a place of their own grid is taken."""
    await client.get("/lang/en")
    await web.login("grid", PASSWORD)
    page = await client.get("/appeals/new")
    assert page.status_code in {302, 303} and page.headers["location"] == "/field/appeal"

    refused = await web.post_form("/appeals/new", _intake(world, world.building.id))
    assert refused.status_code == 400
    assert "This place is not in your grid." in refused.text
    assert "楼道灯坏了三天，晚上很黑" in refused.text and 'value="3号楼2单元"' in refused.text
    assert await db.scalar(select(Appeal.id)) is None

    taken = await web.post_form("/appeals/new", _intake(world, world.compound.id))
    assert taken.status_code == 303
    appeal = await db.scalar(select(Appeal))
    assert appeal is not None and appeal.place_id == world.compound.id and appeal.status is AppealStatus.RECEIVED
    assert taken.headers["location"] == f"/appeals/{appeal.reference}"


# --- The resident's SMS: a link they can open ---------------------------------------------------------------


async def test_the_residents_sms_links_to_the_public_tracking_page(settings: Settings, db: AsyncSession, world: World) -> None:
    """With SHANZHI_PUBLIC_URL set, the SMS with the case number and 查询码 carries the tracking page's
    absolute address (not the host the form was sent to, nor a bare path)."""
    saved = notifications.channels()
    app = create_app(replace(settings, public_url="https://shanzhi.jiefanglu.example.cn", notify_webhook_url="http://127.0.0.1:9/hook"))
    try:
        async with AsyncTestClient(app=app, base_url="http://10.0.0.5:8000") as client:
            client.follow_redirects = False
            web = Web(client)
            token = await web.csrf("/suggest")
            sent = await client.post(
                "/suggest",
                data={"audience": "resident", "category": "environment", "description": "楼道里堆满了杂物，影响通行。",
                      "submitter_phone": "139 0000 0002", "_csrf_token": token},
                files=[("photos", ("", b"", "application/octet-stream"))],
            )
            assert sent.status_code == 303, sent.text
    finally:
        notifications.configure_channels(saved)
    [sms] = list(await db.scalars(select(OutboundMessage).where(OutboundMessage.kind == "query_code")))
    appeal = await db.scalar(select(Appeal))
    assert appeal is not None
    for locale in ("zh_CN", "en"):
        text = notifications.render_text(sms.message, sms.params, locale)
        assert "https://shanzhi.jiefanglu.example.cn/track" in text, text
        assert appeal.reference in text and str(appeal.query_code) in text and "10.0.0.5" not in text


# --- Photos waiting their turn hold no thread ---------------------------------------------------------------


async def test_photos_waiting_to_be_decoded_do_not_hold_up_a_sign_in(settings: Settings) -> None:
    """More uploads at once than the default thread pool has threads: the decodes beyond the first two wait
    on the event loop, so a password check (argon2, in the same pool) starts at once and is done before
    any photo, instead of queueing behind them."""
    out = io.BytesIO()
    Image.effect_noise((3200, 2400), 40).convert("RGB").save(out, format="JPEG", quality=80)
    raw = out.getvalue()
    pool = min(32, (os.cpu_count() or 1) + 4)  # asyncio's default thread pool
    uploads = [asyncio.create_task(photos.process_photos([raw])) for _ in range(pool + 2)]
    await asyncio.sleep(0)  # every upload has started and asked for its turn
    accounts.use_hashing("cheapest")  # a check that takes a moment: what matters is when it gets a thread
    try:
        sign_in = asyncio.create_task(accounts.hash_password("sign-in-password"))
        done, _pending = await asyncio.wait([sign_in, *uploads], return_when=asyncio.FIRST_COMPLETED)
        assert done == {sign_in}, f"{sum(u in done for u in uploads)} photo(s) were done first"
    finally:
        accounts.use_hashing(settings.password_hashing)
        processed = await asyncio.gather(*uploads)
    assert all(max(p.width, p.height) == photos.MAX_EDGE for [p] in processed)
