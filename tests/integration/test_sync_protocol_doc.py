"""What docs/sync.md promises a client written from it, checked against the real app and database: the
whole-batch answers, `forbidden` and the `appeals.<i>.<field>` names inside a visit, `recorded_at` ahead
of the server, the sizes a batch and a photo may have; and the rule that `sync/` uses no area's services."""

from __future__ import annotations

import ast
import hashlib
import io
import json
import random
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient
from PIL import Image
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.models import Appeal, Visit
from server.settings import Settings
from sync.protocol import MAX_BATCH
from tests.helpers import Web
from tests.integration.sync_world import (
    PASSWORD,
    Device,
    World,
    appeal_fields,
    make_world,
)
from tests.integration.sync_world import push_results as _push

SYNC_DIR = Path(__file__).resolve().parents[2] / "sync"


@pytest.fixture
async def world(settings: Settings) -> World:
    return await make_world(settings)



def _visit(device: Device, world: World, *appeals: dict, **extra: object) -> dict:
    fields = {
        "subject_kind": "household", "subject_name": "东舍坊小区3号楼2单元", "purpose": "first",
        "place_id": str(world.compound.id), "policies": [], "appeals": list(appeals), **extra,
    }
    return device.mutation("visit", "create", fields)


def _appeal(world: World, **extra: object) -> dict:
    return {"id": str(uuid.uuid4()), **appeal_fields("楼道灯坏了三天，晚上很黑", place=world.compound), **extra}


# --- Whole-request answers ---------------------------------------------------------------------------------


async def test_more_than_500_mutations_is_413_batch_too_large_said_in_chinese(client: AsyncTestClient, web: Web, world: World, db: AsyncSession) -> None:
    await web.login("grid", PASSWORD)
    phone = Device()
    batch = [phone.mutation("appeal", "create", appeal_fields(place=world.shop)) for _ in range(MAX_BATCH + 1)]
    response = await client.post("/sync/push", json=phone.batch(*batch), headers=phone.headers)
    assert response.status_code == 413
    body = response.json()
    assert body["code"] == "batch_too_large"
    assert "500" in body["message"] and not re.search(r"[A-Za-z]", body["message"]), body["message"]
    assert await db.scalar(select(Appeal.id)) is None  # nothing applied
    await client.get("/lang/en")
    english = (await client.post("/sync/push", json=phone.batch(*batch), headers=phone.headers)).json()["message"]
    assert "500" in english and "batch" in english


async def test_a_batch_of_the_wrong_shape_names_where_in_the_users_language(client: AsyncTestClient, web: Web, world: World) -> None:
    await web.login("grid", PASSWORD)
    phone = Device()
    broken = phone.mutation("appeal", "create", appeal_fields(place=world.shop))
    del broken["hlc"]
    response = await client.post("/sync/push", json=phone.batch(broken), headers=phone.headers)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "malformed"
    assert "$.mutations[0].hlc" in body["message"]
    assert not re.search(r"[A-Za-z]{3,}", body["message"].replace("$.mutations[0].hlc", "")), body["message"]


async def test_a_batch_and_a_photo_larger_than_a_text_form_still_go_through(client: AsyncTestClient, web: Web, world: World, db: AsyncSession) -> None:
    """Bodies that are not forms are held to their own limits (10 MB a batch, 6 MB a photo), not to a form's."""
    await web.login("grid", PASSWORD)
    phone = Device()
    batch = [phone.mutation("appeal", "create", appeal_fields("楼道灯坏了需要维修" * 200, place=world.shop)) for _ in range(60)]
    assert len(json.dumps(phone.batch(*batch), ensure_ascii=False).encode()) > 300 * 1024
    assert [r["status"] for r in await _push(client, phone, *batch)] == ["applied"] * 60
    noise = random.Random(10).randbytes(640 * 480 * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", (640, 480), noise).save(out, "JPEG", quality=95)
    photo = out.getvalue()
    assert len(photo) > 300 * 1024
    digest = hashlib.sha256(photo).hexdigest()
    uploaded = await client.put(f"/sync/photos/{digest}", content=photo, headers={**phone.headers, "Content-Type": "image/jpeg"})
    assert uploaded.status_code == 201, uploaded.text


# --- Per-mutation answers ----------------------------------------------------------------------------------


async def test_a_visit_at_another_grids_place_is_forbidden(client: AsyncTestClient, web: Web, world: World, db: AsyncSession) -> None:
    await web.login("grid", PASSWORD)
    phone = Device()
    [result] = await _push(client, phone, _visit(phone, world, place_id=str(world.building.id)))
    assert result["status"] == "rejected" and result["code"] == "forbidden"
    assert list(result["errors"]) == ["place_id"]
    assert await db.scalar(select(Visit.id)) is None


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [("place_id", "building", "forbidden"), ("submitter_kind", "alien", "invalid")],
)
async def test_an_appeal_inside_a_visit_is_named_by_its_index(
    field: str, value: str, code: str, client: AsyncTestClient, web: Web, world: World, db: AsyncSession
) -> None:
    await web.login("grid", PASSWORD)
    phone = Device()
    bad = _appeal(world, **{field: str(world.building.id) if value == "building" else value})
    [result] = await _push(client, phone, _visit(phone, world, _appeal(world), bad))
    assert result["status"] == "rejected" and result["code"] == code
    assert f"appeals.1.{field}" in result["errors"]
    assert await db.scalar(select(Visit.id)) is None and await db.scalar(select(Appeal.id)) is None


@pytest.mark.parametrize("appeals", ["not a list", ["not an object"]], ids=["not-a-list", "not-objects"])
async def test_appeals_that_are_not_a_list_of_objects_are_invalid(appeals: object, client: AsyncTestClient, web: Web, world: World) -> None:
    await web.login("grid", PASSWORD)
    phone = Device()
    visit = _visit(phone, world)
    visit["fields"]["appeals"] = appeals
    [result] = await _push(client, phone, visit)
    assert result["status"] == "rejected" and result["code"] == "invalid"
    assert set(result["errors"]) <= {"appeals", "appeals.0"} and result["errors"]


async def test_a_recorded_at_ahead_of_the_server_is_taken_as_the_servers_time(client: AsyncTestClient, web: Web, world: World, db: AsyncSession) -> None:
    """A phone clock a little fast dates nothing in the future (the visit and its appeal's deadlines)."""
    await web.login("grid", PASSWORD)
    phone = Device()
    visit = _visit(phone, world, _appeal(world))
    visit["recorded_at"] = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    assert [r["status"] for r in await _push(client, phone, visit)] == ["applied"]
    after = datetime.now(UTC)
    recorded = await db.scalar(select(Visit.visited_at))
    received = await db.scalar(select(Appeal.received_at))
    assert recorded is not None and received is not None
    assert recorded <= after and received <= after


# --- The engine's boundary ---------------------------------------------------------------------------------


def test_sync_imports_no_area_service() -> None:
    """`sync/` is the engine: areas register operations with it, it imports none of them (nor Litestar).
    The shared error type (server.services.errors) is the one module of server.services it uses."""
    found = []
    for path in sorted(SYNC_DIR.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            found += [(path.name, name) for name in names]
    assert found, "no import seen: the walk is broken"
    areas = [(file, name) for file, name in found if _within(name, "server.services") and not _within(name, "server.services.errors")]
    assert areas == []
    assert [(file, name) for file, name in found if _within(name, "litestar")] == []


def _within(name: str, module: str) -> bool:
    return name == module or name.startswith(module + ".")
