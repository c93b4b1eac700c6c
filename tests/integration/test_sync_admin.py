"""Staff page of devices and sync conflicts (issue 4 item 5): what it lists, and resolving each kind of conflict
through HTTP with its effect on the case, its timeline and the record of who resolved it, when and how."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.models import (
    Appeal,
    AppealEvent,
    AppealStatus,
    Evaluation,
    ReturnVisit,
    Role,
    SyncConflict,
    SyncDevice,
    SyncFieldStamp,
    User,
    VisitMethod,
)
from server.models.field import ConflictKind, ConflictResolution
from server.services import accounts, conflicts
from server.services.appeal_workflow import Action
from server.services.appeals import ActionInput
from server.settings import Settings
from tests.helpers import Web
from tests.integration.staff_cases import (
    PHONE,
    Staffing,
    in_session,
    make_staffing,
    sign_in,
)
from tests.integration.sync_world import push_results as _push

WORKER = "grid-worker"  # the `people` fixture: display name 测试grid_worker
DEVICE_TEXT = "楼道灯坏了，三楼和四楼都不亮，晚上很危险"
PUSHED_AT = datetime.now(UTC) - timedelta(hours=2)
PULLED_AT = datetime.now(UTC) - timedelta(minutes=30)


@dataclass
class Field:
    """Arrange devices and conflicts as the sync engine records them (docs/sync.md, "Conflict rules")."""

    settings: Settings
    staffing: Staffing

    async def user_id(self, username: str) -> UUID:
        async def work(session: AsyncSession) -> UUID:
            user = await accounts.get_user_by_username(session, username)
            assert user is not None
            return user.id

        return await in_session(self.settings, work)

    async def device(self, username: str = WORKER, **changes: Any) -> UUID:
        user_id = await self.user_id(username)
        device_id = uuid4()

        async def work(session: AsyncSession) -> None:
            values: dict[str, Any] = {
                "user_agent": "Mozilla/5.0 (Linux; Android 14) Chrome/131 Mobile", "first_seen_at": PUSHED_AT - timedelta(days=3),
                "last_push_at": PUSHED_AT, "last_pull_at": PULLED_AT, "last_seq": 41, "mutation_count": 41, "rejected_count": 2,
            }
            session.add(SyncDevice(id=device_id, user_id=user_id, **{**values, **changes}))

        await in_session(self.settings, work)
        return device_id

    async def conflict(self, reference: str, device_id: UUID, kind: ConflictKind, op: str, detail: dict[str, Any], other: str | None = "staff") -> UUID:
        worker = await self.user_id(WORKER)
        other_id = await self.user_id(other) if other else None

        async def work(session: AsyncSession) -> UUID:
            appeal = await session.scalar(select(Appeal).where(Appeal.reference == reference))
            assert appeal is not None
            conflict = SyncConflict(
                mutation_id=uuid4(), device_id=device_id, user_id=worker, other_user_id=other_id, entity="appeal",
                entity_id=appeal.id, op=op, kind=kind, detail=detail, fields=sorted(detail["fields"]), applied=False,
                recorded_at=PUSHED_AT,
            )
            session.add(conflict)
            await session.flush()
            return conflict.id

        return await in_session(self.settings, work)

    async def stale_edit(self, reference: str, device_id: UUID, **device_values: str) -> UUID:
        """Staff changed these fields after the phone last pulled; the phone's older edit lost (kind `field`)."""
        case = await self.staffing.case(reference)
        detail = {"fields": {name: {"device": value, "server": getattr(case, name), "applied": False} for name, value in device_values.items()}, "base_version": 1}
        return await self.conflict(reference, device_id, ConflictKind.FIELD, "update", detail)

    async def late_return_visit(self, reference: str, device_id: UUID, status_then: str = "in_progress") -> UUID:
        """The worker's 回访 arrived after staff reopened the case (kind `transition`)."""
        detail = {"fields": {"method": "in_person", "evaluation": "satisfied", "note": "居民说灯已经修好了"}, "status": status_then}
        return await self.conflict(reference, device_id, ConflictKind.TRANSITION, "return_visit", detail)

    async def get(self, conflict_id: UUID) -> SyncConflict:
        async def work(session: AsyncSession) -> SyncConflict:
            conflict = await session.get(SyncConflict, conflict_id)
            assert conflict is not None
            return conflict

        return await in_session(self.settings, work)

    async def stamps(self, reference: str) -> dict[str, SyncFieldStamp]:
        async def work(session: AsyncSession) -> dict[str, SyncFieldStamp]:
            appeal = await session.scalar(select(Appeal).where(Appeal.reference == reference))
            assert appeal is not None
            rows = await session.scalars(select(SyncFieldStamp).where(SyncFieldStamp.entity_id == appeal.id))
            return {row.field: row for row in rows}

        return await in_session(self.settings, work)

    async def resolved_for_worker(self) -> str:
        """A case assigned to the grid worker (so their 回访 is in scope), handled by 区城管 and resolved."""
        worker = await self.user_id(WORKER)
        reference = await self.staffing.submit()
        await self.staffing.act(reference, Action.TRANSFER, "staff", ActionInput(department_id=self.staffing.departments["cgj"], assignee_id=worker))
        await self.staffing.act(reference, Action.ACCEPT, "dept-cgj")
        await self.staffing.act(reference, Action.RESOLVE, "dept-cgj", ActionInput(note="已更换楼道灯"))
        return reference


@pytest.fixture
async def field(settings: Settings, people: dict[Role, str]) -> Field:
    return Field(settings, await make_staffing(settings))


async def resolve(web: Web, conflict_id: UUID, choice: str, note: str = "") -> Any:
    return await web.post_form(f"/sync/conflicts/{conflict_id}/resolve", {"choice": choice, "note": note})


# --- The list -----------------------------------------------------------------------------------------


async def test_staff_see_devices_last_sync_and_open_conflicts(client: AsyncTestClient, web: Web, field: Field) -> None:
    reference = await field.staffing.submit()
    device = await field.device()
    quiet = await field.device("staff", last_push_at=None, last_pull_at=None, last_seq=0, mutation_count=0, rejected_count=0)
    await field.stale_edit(reference, device, description=DEVICE_TEXT)

    await sign_in(client, web, "staff")
    page = await client.get("/sync/devices")
    assert page.status_code == 200
    text = page.text
    tz = field.staffing.limits.tz
    assert "测试grid_worker" in text
    assert PULLED_AT.astimezone(tz).strftime("%Y-%m-%d %H:%M") in text  # last sync = the later of push and pull
    assert PUSHED_AT.astimezone(tz).strftime("%Y-%m-%d %H:%M") in text
    assert "Android 14" in text and str(device)[:8] in text and str(quiet)[:8] in text
    assert "Never" in text  # the device that never synced
    # The conflict: the case, the worker, the other side, what the device sent against what the server has.
    assert f'href="/appeals/{reference}"' in text
    assert "Sent by 测试grid_worker" in text and "Collided with 测试staff" in text
    assert DEVICE_TEXT in text and "楼道灯坏了一个多月" in text
    assert f'action="/sync/conflicts/' in text and 'class="table table-stack"' in text

    rows = await in_session(field.settings, conflicts.list_devices)
    by_id = {row.device.id: row for row in rows}
    assert by_id[device].open_conflicts == 1 and by_id[quiet].open_conflicts == 0
    assert by_id[device].user_name == "测试grid_worker" and by_id[device].last_sync_at == PULLED_AT
    assert rows[0].device.id == device  # the most recently synced first


async def test_conflicts_of_a_worker_include_those_their_write_was_involved_in(field: Field) -> None:
    reference = await field.staffing.submit()
    device = await field.device()
    mine = await field.stale_edit(reference, device, description=DEVICE_TEXT)
    staff_id, worker_id = await field.user_id("staff"), await field.user_id(WORKER)

    async def work(session: AsyncSession) -> tuple[list[UUID], list[UUID], list[UUID], list[UUID]]:
        return (
            [c.id for c in await conflicts.conflicts_for_worker(session, worker_id)],
            [c.id for c in await conflicts.conflicts_for_worker(session, staff_id)],  # the other side
            [c.id for c in await conflicts.open_conflicts(session, user_id=worker_id)],
            [c.id for c in await conflicts.open_conflicts(session, user_id=staff_id)],
        )

    assert await in_session(field.settings, work) == ([mine], [mine], [mine], [])


# --- Resolving a stale edit (kind `field`) -------------------------------------------------------------


async def test_take_the_devices_value(client: AsyncTestClient, web: Web, field: Field) -> None:
    reference = await field.staffing.submit()
    device = await field.device()
    conflict_id = await field.stale_edit(reference, device, description=DEVICE_TEXT, submitter_phone="13911112222")
    before = await field.staffing.case(reference)

    await sign_in(client, web, "staff")
    response = await resolve(web, conflict_id, "take_device", "与网格员电话核实过")
    assert response.status_code == 303
    assert response.headers["location"].startswith(f"/sync/devices?resolved={conflict_id}")

    case = await field.staffing.case(reference)
    assert (case.description, case.submitter_phone, case.version) == (DEVICE_TEXT, "13911112222", before.version + 1)
    stamps = await field.stamps(reference)
    assert set(stamps) == {"description", "submitter_phone"}
    for stamp in stamps.values():
        assert stamp.hlc.endswith("-server") and stamp.version == case.version and stamp.user_id == await field.user_id("staff")
    # The timeline says what changed and why, internally, as the same "edit" step a field edit makes
    # (one write path for details); the phone number is not written out.
    events = await field.staffing.events(reference)
    note = events[-1]
    assert (note.action, note.public, note.actor_label) == ("edit", False, "测试staff")
    assert note.data == {"sync_conflict": str(conflict_id), "resolution": "take_device", "fields": ["description", "submitter_phone"]}
    assert DEVICE_TEXT in (note.note or "") and "与网格员电话核实过" in (note.note or "") and "13911112222" not in (note.note or "")

    conflict = await field.get(conflict_id)
    assert conflict.resolution is ConflictResolution.TAKE_DEVICE and conflict.applied
    assert conflict.resolved_by_id == await field.user_id("staff") and conflict.resolved_at is not None
    assert conflict.resolution_note == "与网格员电话核实过"

    page = await client.get(response.headers["location"])
    assert "Conflict resolved: Take the device&#39;s value." in page.text or "Conflict resolved: Take the device's value." in page.text
    assert "No open conflicts." in page.text
    assert f'id="resolved-{conflict_id}"' in page.text and "Resolved by 测试staff" in page.text
    case_page = await client.get(f"/appeals/{reference}")
    assert DEVICE_TEXT in case_page.text


async def test_keep_the_current_value_changes_nothing_on_the_case(client: AsyncTestClient, web: Web, field: Field) -> None:
    reference = await field.staffing.submit()
    conflict_id = await field.stale_edit(reference, await field.device(), description=DEVICE_TEXT)
    before = await field.staffing.state(reference)

    await sign_in(client, web, "admin")
    response = await resolve(web, conflict_id, "keep_current")
    assert response.status_code == 303
    assert await field.staffing.state(reference) == before
    assert (await field.staffing.case(reference)).description != DEVICE_TEXT
    assert await field.stamps(reference) == {}
    conflict = await field.get(conflict_id)
    assert (conflict.resolution, conflict.resolution_note, conflict.applied) == (ConflictResolution.KEEP_CURRENT, None, False)
    assert conflict.resolved_by_id == await field.user_id("admin")


async def test_resolving_twice_is_refused_and_changes_nothing(client: AsyncTestClient, web: Web, field: Field) -> None:
    reference = await field.staffing.submit()
    conflict_id = await field.stale_edit(reference, await field.device(), description=DEVICE_TEXT)
    await sign_in(client, web, "staff")
    assert (await resolve(web, conflict_id, "keep_current", "第一次")).status_code == 303
    first = await field.get(conflict_id)
    before = await field.staffing.state(reference)

    again = await resolve(web, conflict_id, "take_device", "第二次")
    assert again.status_code == 409
    assert "This conflict has already been resolved." in again.text
    assert await field.staffing.state(reference) == before
    after = await field.get(conflict_id)
    assert (after.resolution, after.resolution_note, after.resolved_at) == (first.resolution, "第一次", first.resolved_at)


async def test_a_choice_of_the_other_kind_is_refused_keeping_what_was_typed(client: AsyncTestClient, web: Web, field: Field) -> None:
    reference = await field.staffing.submit()
    conflict_id = await field.stale_edit(reference, await field.device(), description=DEVICE_TEXT)
    await sign_in(client, web, "staff")
    response = await resolve(web, conflict_id, "reapplied", "我写的说明")
    assert response.status_code == 400
    assert "Choose how to resolve this conflict." in response.text
    assert "我写的说明</textarea>" in response.text
    assert (await field.get(conflict_id)).resolved_at is None


# --- Resolving a workflow step that arrived too late (kind `transition`) -----------------------------------


async def test_reapply_a_return_visit_runs_the_online_service_once_it_is_legal(client: AsyncTestClient, web: Web, field: Field) -> None:
    reference = await field.resolved_for_worker()
    await field.staffing.act(reference, Action.REOPEN, "staff", ActionInput(note="居民反映还有一盏没修"))
    conflict_id = await field.late_return_visit(reference, await field.device())
    before = await field.staffing.state(reference)

    await sign_in(client, web, "staff")
    # Still reopened: the same refusal as online, and nothing changes.
    refused = await resolve(web, conflict_id, "reapplied")
    assert refused.status_code == 409
    assert "This action is not possible at the current status: In progress." in refused.text
    assert await field.staffing.state(reference) == before
    assert (await field.get(conflict_id)).resolved_at is None

    await field.staffing.act(reference, Action.RESOLVE, "dept-cgj", ActionInput(note="另一盏也换好了"))
    response = await resolve(web, conflict_id, "reapplied", "居民确认已修好")
    assert response.status_code == 303
    case = await field.staffing.case(reference)
    assert (case.status, case.evaluation) == (AppealStatus.EVALUATED, Evaluation.SATISFIED)

    async def visits(session: AsyncSession) -> list[ReturnVisit]:
        return list(await session.scalars(select(ReturnVisit).where(ReturnVisit.appeal_id == case.id)))

    [visit] = await in_session(field.settings, visits)
    assert (visit.visitor_id, visit.method, visit.note) == (await field.user_id(WORKER), VisitMethod.IN_PERSON, "居民说灯已经修好了")
    event = (await field.staffing.events(reference))[-1]
    assert (event.action, event.actor_label, event.to_status) == ("return_visit", "测试grid_worker", AppealStatus.EVALUATED)
    assert event.data is not None and event.data["sync_conflict"] == str(conflict_id) and event.data["reapplied_by"] == "测试staff"
    conflict = await field.get(conflict_id)
    assert (conflict.resolution, conflict.resolution_note, conflict.applied) == (ConflictResolution.REAPPLIED, "居民确认已修好", True)


async def test_dismiss_needs_a_note_and_leaves_the_case_alone(client: AsyncTestClient, web: Web, field: Field) -> None:
    reference = await field.resolved_for_worker()
    await field.staffing.act(reference, Action.REOPEN, "staff", ActionInput(note="居民反映还有一盏没修"))
    conflict_id = await field.late_return_visit(reference, await field.device())
    before = await field.staffing.state(reference)

    await sign_in(client, web, "staff")
    response = await resolve(web, conflict_id, "dismissed", "   ")
    assert response.status_code == 400
    assert "Please give the reason for dismissing it." in response.text
    assert 'value="dismissed" checked' in response.text
    assert (await field.get(conflict_id)).resolved_at is None

    response = await resolve(web, conflict_id, "dismissed", "案件已重新办理，回访作废")
    assert response.status_code == 303
    assert await field.staffing.state(reference) == before
    conflict = await field.get(conflict_id)
    assert (conflict.resolution, conflict.resolution_note) == (ConflictResolution.DISMISSED, "案件已重新办理，回访作废")


# --- Who may see and do what ---------------------------------------------------------------------------


async def test_supervisors_read_without_resolving_and_without_phone_numbers(client: AsyncTestClient, web: Web, field: Field) -> None:
    reference = await field.staffing.submit()
    conflict_id = await field.stale_edit(reference, await field.device(), submitter_phone="13911112222")
    await sign_in(client, web, "supervisor")
    page = await client.get("/sync/devices")
    assert page.status_code == 200
    assert f'href="/appeals/{reference}"' in page.text
    assert "/resolve" not in page.text
    assert "13911112222" not in page.text and PHONE not in page.text
    response = await resolve(web, conflict_id, "keep_current")
    assert response.status_code == 403
    assert (await field.get(conflict_id)).resolved_at is None


@pytest.mark.parametrize("username", [None, "grid-worker", "department", "building-head"])
async def test_nothing_of_the_page_is_shown_outside_staff(client: AsyncTestClient, web: Web, field: Field, username: str | None) -> None:
    reference = await field.staffing.submit()
    conflict_id = await field.stale_edit(reference, await field.device(), description=DEVICE_TEXT)
    if username:
        await sign_in(client, web, username)
    page = await client.get("/sync/devices")
    assert page.status_code in {401, 403, 303}
    assert DEVICE_TEXT not in page.text and "测试grid_worker" not in page.text and reference not in page.text
    response = await resolve(web, conflict_id, "take_device")
    assert response.status_code in {401, 403}
    assert (await field.get(conflict_id)).resolved_at is None
    assert (await field.staffing.case(reference)).description != DEVICE_TEXT


async def test_the_menu_links_the_page_for_staff_only(client: AsyncTestClient, web: Web, field: Field) -> None:
    await sign_in(client, web, "staff")
    assert 'href="/sync/devices"' in (await client.get("/sync/devices")).text
    await web.logout()
    await sign_in(client, web, "grid-worker")
    assert 'href="/sync/devices"' not in (await client.get("/grid")).text


async def test_counts_come_from_one_statement_per_table(field: Field) -> None:
    """list_devices is set-wise: the number of statements does not grow with the devices."""
    from sqlalchemy import event

    reference = await field.staffing.submit()
    for _ in range(5):
        await field.stale_edit(reference, await field.device(), description=DEVICE_TEXT)

    async def work(session: AsyncSession) -> int:
        statements: list[str] = []
        engine = session.bind.sync_engine  # type: ignore[union-attr]

        def count(*args: Any) -> None:
            statements.append(args[2])

        event.listen(engine, "before_cursor_execute", count)
        try:
            rows = await conflicts.list_devices(session)
            views = await conflicts.describe(session, await conflicts.open_conflicts(session))
        finally:
            event.remove(engine, "before_cursor_execute", count)
        assert len(rows) == 5 and all(row.open_conflicts == 1 for row in rows) and len(views) == 5
        return len(statements)

    assert await in_session(field.settings, work) <= 4


# --- End to end: conflicts made by real pushes through the app ----------------------------------------------


async def _as(web: Web, username: str) -> None:
    from tests.integration.sync_world import PASSWORD

    await web.logout()
    assert (await web.login(username, PASSWORD)).status_code == 303


async def test_a_pushed_stale_edit_resolved_by_staff_reaches_both_phones(client: AsyncTestClient, web: Web, settings: Settings, db: AsyncSession) -> None:
    from sync.hlc import Clock as HybridClock
    from sync.hlc import wall_clock_ms
    from tests.integration.sync_world import PASSWORD, Device, appeal_fields, make_world

    world = await make_world(settings)
    assert (await web.login("grid", PASSWORD)).status_code == 303
    phone_a = Device()
    phone_b = Device(clock=HybridClock("phone-b", now_ms=lambda: wall_clock_ms() - 60_000))  # B edited a minute earlier
    created = phone_a.mutation("appeal", "create", appeal_fields("小区3号楼门禁坏了", place=world.compound))
    assert (await _push(client, phone_a, created))[0]["status"] == "applied"
    appeal_id = UUID(created["entity_id"])
    edit_b = phone_b.mutation("appeal", "update", {"description": "门禁坏了，张网格补充：已报物业"}, entity_id=appeal_id, base_version=1)
    edit_a = phone_a.mutation("appeal", "update", {"description": "门禁坏了，王网格补充：需更换读卡器"}, entity_id=appeal_id, base_version=1)
    assert (await _push(client, phone_a, edit_a))[0]["status"] == "applied"
    await _as(web, "grid2")
    result = (await _push(client, phone_b, edit_b))[0]
    assert result["status"] == "conflict" and result["conflict"]["applied"] is False
    conflict_id = UUID(result["conflict"]["id"])

    # Offline meanwhile, phone A edits again against the version it knows.
    late_a = phone_a.mutation("appeal", "update", {"description": "门禁坏了，王网格：再改一次"}, entity_id=appeal_id, base_version=2)

    await _as(web, "staff")
    page = await client.get("/sync/devices")
    assert page.status_code == 200
    assert "王网格" in page.text and "张网格" in page.text and "门禁坏了，张网格补充：已报物业" in page.text
    response = await web.post_form(f"/sync/conflicts/{conflict_id}/resolve", {"choice": "take_device", "note": "物业已确认"})
    assert response.status_code == 303
    case = await db.get(Appeal, appeal_id, populate_existing=True)
    assert case is not None and case.description == "门禁坏了，张网格补充：已报物业"

    stamp = await db.scalar(select(SyncFieldStamp).where(SyncFieldStamp.entity_id == appeal_id).execution_options(populate_existing=True))
    assert stamp is not None and stamp.hlc.endswith("-server") and stamp.version == case.version
    # A's edit, made before staff chose, syncs after: staff's later stamp wins, and the clash is recorded again.
    await _as(web, "grid")
    late = (await _push(client, phone_a, late_a))[0]
    assert late["status"] == "conflict" and late["conflict"]["applied"] is False
    assert (await db.get(Appeal, appeal_id, populate_existing=True)).description == "门禁坏了，张网格补充：已报物业"  # type: ignore[union-attr]
    # Both workers see the outcome in their pull.
    for username, phone in (("grid", phone_a), ("grid2", phone_b)):
        await _as(web, username)
        records = (await client.get("/sync/pull", headers=phone.headers)).json()["records"]
        resolved = [r["data"] for r in records if r["entity"] == "conflict" and r["id"] == str(conflict_id)]
        assert resolved and resolved[0]["resolution"] == "take_device" and resolved[0]["resolution_note"] == "物业已确认", username


async def test_a_pushed_return_visit_on_a_reopened_case_is_reapplied_by_staff(client: AsyncTestClient, web: Web, settings: Settings, db: AsyncSession) -> None:
    from server.services.appeals import Actor, act
    from server.services.deadlines import TimeLimits
    from tests.integration.sync_world import PASSWORD, Device, appeal_fields, make_world

    world = await make_world(settings)
    limits = TimeLimits.from_settings(settings)
    staff = Actor(principal=Role.STAFF, label="李主任", user_id=world.users["staff"])
    assert (await web.login("grid", PASSWORD)).status_code == 303
    phone = Device()
    created = phone.mutation("appeal", "create", appeal_fields("路灯不亮已经一周了", place=world.compound))
    assert (await _push(client, phone, created))[0]["status"] == "applied"
    appeal = await db.get(Appeal, UUID(created["entity_id"]))
    assert appeal is not None
    await act(db, appeal, Action.ACCEPT, staff, limits=limits)
    await act(db, appeal, Action.RESOLVE, staff, ActionInput(note="已修好路灯"), limits=limits)
    visit = phone.mutation("appeal", "return_visit", {"method": "phone", "evaluation": "satisfied", "note": "电话回访，居民满意"},
                           entity_id=appeal.id, base_version=appeal.version)
    await act(db, appeal, Action.REOPEN, staff, ActionInput(note="居民又来电话"), limits=limits)
    await db.commit()
    result = (await _push(client, phone, visit))[0]
    assert result["status"] == "conflict" and result["conflict"]["kind"] == "transition"
    conflict_id = UUID(result["conflict"]["id"])

    await _as(web, "staff")
    assert (await web.post_form(f"/sync/conflicts/{conflict_id}/resolve", {"choice": "reapplied"})).status_code == 409
    await act(db, appeal, Action.RESOLVE, staff, ActionInput(note="路灯线路也换了"), limits=limits)
    await db.commit()
    assert (await web.post_form(f"/sync/conflicts/{conflict_id}/resolve", {"choice": "reapplied"})).status_code == 303
    stored = await db.get(Appeal, appeal.id, populate_existing=True)
    assert stored is not None and (stored.status, stored.evaluation) == (AppealStatus.EVALUATED, Evaluation.SATISFIED)
    visits = list(await db.scalars(select(ReturnVisit).where(ReturnVisit.appeal_id == appeal.id)))
    assert [(v.visitor_id, v.method) for v in visits] == [(world.users["grid"], VisitMethod.PHONE)]
