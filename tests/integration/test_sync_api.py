"""The sync API as a phone uses it (docs/sync.md): push exactly once, rejections that can be fixed, conflicts
kept, devices bound to their user, pull with cursors. Real app, real database."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from litestar.testing import AsyncTestClient
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.models import (
    Appeal,
    AppealChannel,
    AppealEvent,
    AppealStatus,
    ReturnVisit,
    SyncConflict,
    SyncDevice,
    Visit,
)
from server.services.appeal_workflow import Action
from server.services.appeals import ActionInput, Actor, act
from server.services.deadlines import TimeLimits
from server.settings import Settings
from sync.hlc import Clock, wall_clock_ms
from tests.helpers import Web
from tests.integration.sync_world import (
    PASSWORD,
    Device,
    World,
    appeal_fields,
    make_world,
)
from tests.integration.sync_world import push_results as _push


@pytest.fixture
async def world(settings: Settings) -> World:
    return await make_world(settings)



def _visit(device: Device, world: World, n: int = 3, **extra: object) -> dict:
    appeals = [
        {"id": str(__import__("uuid").uuid4()), **appeal_fields(f"第{i}件：楼道灯坏了需要维修", place=world.compound)}
        for i in range(1, n + 1)
    ]
    fields = {
        "subject_kind": "household", "subject_name": "东舍坊小区3号楼2单元", "purpose": "first",
        "place_id": str(world.compound.id), "notes": "老人独居", "policies": ["高龄津贴"], "appeals": appeals, **extra,
    }
    return device.mutation("visit", "create", fields)


async def test_a_visit_with_three_appeals_is_applied_once_whatever_the_retries(
    client: AsyncTestClient, web: Web, world: World, db: AsyncSession
) -> None:
    await web.login("grid", PASSWORD)
    phone = Device()
    recorded = datetime.now(UTC) - timedelta(hours=3)
    visit = _visit(phone, world)
    visit["recorded_at"] = recorded.isoformat()
    first = await _push(client, phone, visit)
    assert [r["status"] for r in first] == ["applied"]
    # The answer was lost (server died after commit): the phone sends the same batch again.
    again = await _push(client, phone, visit)
    assert again[0]["status"] == "duplicate" and again[0]["original"] == "applied"

    visit_id = UUID(visit["entity_id"])
    assert await db.scalar(select(func.count()).select_from(Visit)) == 1
    stored = list(await db.scalars(select(Appeal).where(Appeal.visit_id == visit_id)))
    assert len(stored) == 3
    assert {a.channel for a in stored} == {AppealChannel.VISIT}
    assert {str(a.id) for a in stored} == {a["id"] for a in visit["fields"]["appeals"]}
    # Deadlines run from when the resident asked, not from when the phone found a signal.
    assert all(abs((a.received_at - recorded).total_seconds()) < 1 for a in stored)
    events = await db.scalar(select(func.count()).select_from(AppealEvent).where(AppealEvent.action == "submit"))
    assert events == 3


async def test_a_rejected_mutation_says_why_in_chinese_and_can_be_fixed_and_resent(
    client: AsyncTestClient, web: Web, world: World, db: AsyncSession
) -> None:
    await web.login("grid", PASSWORD)
    phone = Device()
    bad = phone.mutation("appeal", "create", appeal_fields("灯坏了", place=world.shop))
    good = phone.mutation("appeal", "create", appeal_fields("沿街商铺门口井盖松动", place=world.shop))
    results = await _push(client, phone, bad, good)
    assert [r["status"] for r in results] == ["rejected", "applied"]
    assert results[0]["code"] == "invalid"
    assert "至少" in results[0]["errors"]["description"]
    assert await db.get(Appeal, UUID(bad["entity_id"])) is None
    bad["fields"]["description"] = "灯坏了三天，晚上看不见路"
    fixed = await _push(client, phone, bad)
    assert fixed[0]["status"] == "applied"
    assert (await db.get(Appeal, UUID(bad["entity_id"]))) is not None


async def test_a_visit_is_all_or_nothing(client: AsyncTestClient, web: Web, world: World, db: AsyncSession) -> None:
    await web.login("grid", PASSWORD)
    phone = Device()
    visit = _visit(phone, world)
    visit["fields"]["appeals"][1]["description"] = "短"
    result = (await _push(client, phone, visit))[0]
    assert result["status"] == "rejected"
    assert "appeals.1.description" in result["errors"]
    assert await db.scalar(select(func.count()).select_from(Visit)) == 0
    assert await db.scalar(select(func.count()).select_from(Appeal)) == 0


async def test_places_outside_the_grid_are_refused(client: AsyncTestClient, web: Web, world: World) -> None:
    await web.login("grid", PASSWORD)
    phone = Device()
    result = (await _push(client, phone, phone.mutation("appeal", "create", appeal_fields(place=world.building))))[0]
    assert result["status"] == "rejected" and result["code"] == "forbidden"


async def test_a_device_belongs_to_one_user(client: AsyncTestClient, web: Web, world: World) -> None:
    await web.login("grid", PASSWORD)
    phone = Device()
    assert (await _push(client, phone, phone.mutation("appeal", "create", appeal_fields(place=world.shop))))[0]["status"] == "applied"
    await web.logout()
    await web.login("grid2", PASSWORD)
    response = await client.post(
        "/sync/push", json=phone.batch(phone.mutation("appeal", "create", appeal_fields(place=world.shop))), headers=phone.headers
    )
    assert response.status_code == 403
    assert response.json()["code"] == "device_bound_to_other_user"


async def test_push_needs_a_signed_in_grid_worker_and_a_device_header(client: AsyncTestClient, web: Web, world: World) -> None:
    phone = Device()
    body = phone.batch(phone.mutation("appeal", "create", appeal_fields(place=world.shop)))
    anonymous = await client.post("/sync/push", json=body, headers=phone.headers)
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "not_signed_in"
    await web.login("staff", PASSWORD)
    assert (await client.post("/sync/push", json=body, headers=phone.headers)).status_code == 403
    await web.logout()
    await web.login("grid", PASSWORD)
    assert (await client.post("/sync/push", json=body)).status_code == 400
    bad_seq = phone.batch(phone.mutation("appeal", "create", appeal_fields()), phone.mutation("appeal", "create", appeal_fields()))
    bad_seq["mutations"].reverse()
    refused = await client.post("/sync/push", json=bad_seq, headers=phone.headers)
    assert refused.status_code == 400 and refused.json()["code"] == "malformed"


async def _resolved_case(client: AsyncTestClient, world: World, db: AsyncSession, settings: Settings, phone: Device) -> Appeal:
    created = phone.mutation("appeal", "create", appeal_fields("小区路灯不亮，请尽快维修", place=world.compound))
    assert (await _push(client, phone, created))[0]["status"] == "applied"
    appeal = await db.get(Appeal, UUID(created["entity_id"]))
    assert appeal is not None
    staff = Actor(principal="staff", label="李主任", user_id=world.users["staff"])
    limits = TimeLimits.from_settings(settings)
    await act(db, appeal, Action.ACCEPT, staff, limits=limits)
    await act(db, appeal, Action.RESOLVE, staff, ActionInput(note="已更换灯泡"), limits=limits)
    await db.commit()
    return appeal


async def test_a_return_visit_on_a_case_staff_reopened_is_kept_as_a_conflict(
    client: AsyncTestClient, web: Web, world: World, db: AsyncSession, settings: Settings
) -> None:
    await web.login("grid", PASSWORD)
    phone = Device()
    appeal = await _resolved_case(client, world, db, settings, phone)
    version = appeal.version
    # Offline, the worker makes the return visit; meanwhile staff reopen the case.
    visit = phone.mutation("appeal", "return_visit", {"method": "in_person", "evaluation": "satisfied", "note": "居民很满意"},
                           entity_id=appeal.id, base_version=version)
    staff = Actor(principal="staff", label="李主任", user_id=world.users["staff"])
    await act(db, appeal, Action.REOPEN, staff, ActionInput(note="居民又来电话"), limits=TimeLimits.from_settings(settings))
    await db.commit()
    result = (await _push(client, phone, visit))[0]
    assert result["status"] == "conflict"
    assert result["conflict"]["kind"] == "transition" and result["conflict"]["message"]
    conflict = await db.scalar(select(SyncConflict).execution_options(populate_existing=True))
    assert conflict is not None and conflict.user_id == world.users["grid"] and conflict.detail["fields"]["evaluation"] == "satisfied"
    assert await db.scalar(select(func.count()).select_from(ReturnVisit)) == 0
    assert (await db.get(Appeal, appeal.id, populate_existing=True)).status is AppealStatus.IN_PROGRESS  # type: ignore[union-attr]
    # Sent again: the conflict is not recorded twice.
    assert (await _push(client, phone, visit))[0]["status"] == "duplicate"
    assert await db.scalar(select(func.count()).select_from(SyncConflict)) == 1


async def test_a_return_visit_records_the_evaluation(
    client: AsyncTestClient, web: Web, world: World, db: AsyncSession, settings: Settings
) -> None:
    await web.login("grid", PASSWORD)
    phone = Device()
    appeal = await _resolved_case(client, world, db, settings, phone)
    result = (await _push(client, phone, phone.mutation(
        "appeal", "return_visit", {"method": "phone", "evaluation": "basically_satisfied", "note": "电话回访"},
        entity_id=appeal.id, base_version=appeal.version,
    )))[0]
    assert result["status"] == "applied"
    stored = await db.get(Appeal, appeal.id, populate_existing=True)
    assert stored is not None and stored.status is AppealStatus.EVALUATED and stored.evaluation.value == "basically_satisfied"  # type: ignore[union-attr]


async def test_two_workers_editing_the_same_field_offline_conflict_and_the_later_clock_wins(
    client: AsyncTestClient, web: Web, world: World, db: AsyncSession
) -> None:
    await web.login("grid", PASSWORD)
    # Worker B edited a minute before worker A (B's stamp is older), but syncs after.
    phone_a = Device()
    phone_b = Device(clock=Clock("phone-b", now_ms=lambda: wall_clock_ms() - 60_000))
    created = phone_a.mutation("appeal", "create", appeal_fields("小区3号楼门禁坏了", place=world.compound))
    assert (await _push(client, phone_a, created))[0]["status"] == "applied"
    appeal_id = UUID(created["entity_id"])
    edit_b = phone_b.mutation("appeal", "update", {"description": "门禁坏了，张网格补充：已报物业"}, entity_id=appeal_id, base_version=1)
    edit_a = phone_a.mutation("appeal", "update", {"description": "门禁坏了，王网格补充：需更换读卡器"}, entity_id=appeal_id, base_version=1)
    assert (await _push(client, phone_a, edit_a))[0]["status"] == "applied"
    await web.logout()
    await web.login("grid2", PASSWORD)
    result = (await _push(client, phone_b, edit_b))[0]
    assert result["status"] == "conflict"
    assert result["conflict"]["fields"] == ["description"] and result["conflict"]["applied"] is False
    assert (await db.get(Appeal, appeal_id, populate_existing=True)).description == "门禁坏了，王网格补充：需更换读卡器"  # type: ignore[union-attr]
    # Both sides see it in their pull.
    pulled_b = (await client.get("/sync/pull", headers=phone_b.headers)).json()
    assert [r["data"]["mine"] for r in pulled_b["records"] if r["entity"] == "conflict"] == [True]
    await web.logout()
    await web.login("grid", PASSWORD)
    pulled_a = (await client.get("/sync/pull", headers=phone_a.headers)).json()
    assert [r["data"]["mine"] for r in pulled_a["records"] if r["entity"] == "conflict"] == [False]


async def test_pull_gives_the_grid_then_only_changes_and_refuses_a_forged_cursor(
    client: AsyncTestClient, web: Web, world: World, db: AsyncSession
) -> None:
    await web.login("grid", PASSWORD)
    phone = Device()
    first = (await client.get("/sync/pull", headers=phone.headers)).json()
    assert first["reset"] is True and first["more"] is False
    names = {r["data"]["name"] for r in first["records"] if r["entity"] == "place"}
    assert names == {"东舍坊第一网格", "东舍坊小区", "解放路沿街商铺"}  # not the other grid's building
    created = phone.mutation("appeal", "create", appeal_fields("商铺门口垃圾无人清运", place=world.shop))
    assert (await _push(client, phone, created))[0]["status"] == "applied"
    later = (await client.get("/sync/pull", params={"cursor": first["cursor"]}, headers=phone.headers)).json()
    assert later["reset"] is False
    assert [r["id"] for r in later["records"] if r["entity"] == "appeal"] == [created["entity_id"]]
    again = [r for r in later["records"] if r["entity"] == "place"]
    if db.bind.dialect.name == "sqlite":
        assert not again  # commit-ordered numbers: the watermark passed every place
    else:
        # PostgreSQL's watermark is the oldest transaction in flight on the whole server (another database's
        # too, e.g. the other test worker's): places written after it began may come again, unchanged
        # (docs/sync.md, "Pull"). Never a changed one, never one outside the grid.
        assert [r for r in again if r not in first["records"]] == []
    forged = first["cursor"][:-2] + ("AA" if not first["cursor"].endswith("AA") else "BB")
    gone = await client.get("/sync/pull", params={"cursor": forged}, headers=phone.headers)
    assert gone.status_code == 410 and gone.json()["code"] == "resync"
    device = await db.get(SyncDevice, phone.id)
    assert device is not None and device.last_pull_at is not None and device.last_push_at is not None


async def test_pull_pages_until_done(client: AsyncTestClient, web: Web, world: World) -> None:
    await web.login("grid", PASSWORD)
    phone = Device()
    created = [phone.mutation("appeal", "create", appeal_fields(f"第{i}盏路灯不亮了", place=world.shop)) for i in range(5)]
    assert {r["status"] for r in await _push(client, phone, *created)} == {"applied"}
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/sync/pull", params=params, headers=phone.headers)).json()
        seen += [r["id"] for r in page["records"] if r["entity"] == "appeal"]
        cursor = page["cursor"]
        if not page["more"]:
            break
    assert sorted(set(seen)) == sorted(m["entity_id"] for m in created)


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(out, format="JPEG")
    return out.getvalue()


async def test_photos_are_uploaded_by_hash_before_the_mutation_that_names_them(
    client: AsyncTestClient, web: Web, world: World, db: AsyncSession, settings: Settings
) -> None:
    await web.login("grid", PASSWORD)
    phone = Device()
    photo = _jpeg()
    digest = hashlib.sha256(photo).hexdigest()
    created = phone.mutation("appeal", "create", appeal_fields("井盖缺失很危险，见照片", place=world.shop, photos=[digest]))
    missing = (await _push(client, phone, created))[0]
    assert missing["status"] == "rejected" and missing["code"] == "photo_missing"
    headers = {**phone.headers, "Content-Type": "image/jpeg"}
    assert (await client.put(f"/sync/photos/{digest}", content=photo, headers=headers)).status_code == 201
    assert (await client.put(f"/sync/photos/{digest}", content=photo, headers=headers)).status_code == 200
    damaged = await client.put(f"/sync/photos/{'0' * 64}", content=photo, headers=headers)
    assert damaged.status_code == 400
    staged = settings.uploads_dir / "incoming" / digest[:2]
    assert {p.name for p in staged.iterdir()} == {f"{digest}.jpg", f"{digest}.json"}  # processed once, on upload
    assert (await _push(client, phone, created))[0]["status"] == "applied"
    from server.models import AppealPhoto

    stored = await db.scalar(select(AppealPhoto).where(AppealPhoto.appeal_id == UUID(created["entity_id"])))
    assert stored is not None
    assert (settings.uploads_dir / stored.sha256[:2] / f"{stored.sha256}.jpg").is_file()
    assert not any(staged.iterdir()), "a staged photo that a committed push used is deleted"
    # Sent again (the answer was lost): still one photo, and nothing needs the staged copy.
    assert (await _push(client, phone, created))[0]["status"] == "duplicate"


async def test_staff_see_the_visit_that_collected_a_case(client: AsyncTestClient, web: Web, world: World, db: AsyncSession) -> None:
    await web.login("grid", PASSWORD)
    phone = Device()
    visit = _visit(phone, world, n=1)
    assert (await _push(client, phone, visit))[0]["status"] == "applied"
    await web.logout()
    await web.login("staff", PASSWORD)
    appeal = await db.scalar(select(Appeal).where(Appeal.visit_id == UUID(visit["entity_id"])))
    assert appeal is not None
    page = await client.get(f"/appeals/{appeal.reference}")
    assert page.status_code == 200
    assert "东舍坊小区3号楼2单元" in page.text and "王网格" in page.text and "高龄津贴" in page.text
    ledger = await client.get("/appeals")
    assert appeal.reference in ledger.text


async def test_a_reused_record_id_is_refused_alone_and_the_rest_of_the_batch_applies(
    client: AsyncTestClient, web: Web, world: World, db: AsyncSession
) -> None:
    """A client bug (two creations with one record id) makes the fast path give up; the batch is then
    applied one mutation at a time, and only the clash is refused."""
    await web.login("grid", PASSWORD)
    phone = Device()
    first = phone.mutation("appeal", "create", appeal_fields("沿街商铺门前路面塌陷", place=world.shop))
    assert (await _push(client, phone, first))[0]["status"] == "applied"
    clash = phone.mutation("appeal", "create", appeal_fields("另一件事，却用了同一个编号", place=world.shop), entity_id=UUID(first["entity_id"]))
    fine = phone.mutation("appeal", "create", appeal_fields("小区东门路灯不亮", place=world.compound))
    results = await _push(client, phone, clash, fine)
    assert [r["status"] for r in results] == ["rejected", "applied"]
    assert results[0]["message"]
    assert await db.scalar(select(func.count()).select_from(Appeal)) == 2
    stored = await db.get(Appeal, UUID(first["entity_id"]), populate_existing=True)
    assert stored is not None and stored.description == "沿街商铺门前路面塌陷"


async def test_staff_hear_of_a_sync_in_their_language_with_links_to_the_cases(
    client: AsyncTestClient, web: Web, world: World, db: AsyncSession
) -> None:
    """One notice per sync, in Chinese in the Chinese UI, linking every case it brought."""
    await web.login("grid", PASSWORD)
    phone = Device()
    created = [phone.mutation("appeal", "create", appeal_fields(f"第{i}处井盖松动，需要加固", place=world.shop)) for i in range(2)]
    assert [r["status"] for r in await _push(client, phone, *created)] == ["applied", "applied"]
    await web.logout()
    await web.login("staff", PASSWORD)
    page = (await client.get("/inbox")).text
    references = sorted((await db.scalars(select(Appeal.reference).where(Appeal.id.in_([UUID(m["entity_id"]) for m in created])))).all())
    assert "王网格 从现场同步了新诉求：2 件" in page
    for reference in references:
        assert f'<a href="/appeals/{reference}">{reference}</a>' in page
    assert "synced" not in page
