"""What two people (or phones) do at once, on real concurrent connections, on SQLite and PostgreSQL
(issue 9): edits of one field from one base, two staff actions on one case, staff taking a device's
value while a phone's edit of the same case commits, and a pull that runs while a slow transaction
is still open.

SQLite takes one writer at a time (server/db.py, the write queue); PostgreSQL locks the case rows
(SELECT ... FOR UPDATE). Either way the outcome below must hold."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from uuid import UUID

from pathlib import Path

import httpx
import msgspec
from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
from sqlalchemy import func, select, text

from server.db import make_alchemy_config, mark_writer, session_scope
from server.models import Appeal, AppealChannel, AppealEvent, Role, SubmitterKind, SyncConflict, User
from server.services import accounts, appeals, conflicts
from server.services.appeal_workflow import Action
from server.services.appeals import ActionInput, Actor, AppealInput, StaleCase
from server.services.deadlines import TimeLimits
from server.settings import Settings
from server.services import field_sync
from sync import engine
from sync import protocol as p
from sync import pull as pulling
from sync.hlc import Clock, wall_clock_ms
from tests.databases import Databases, run_isolated, settings_for
from tests.helpers import CSRF_RE
from tests.integration.sync_world import PASSWORD, Device, World, appeal_fields, build_world
from tests.servers import LiveServer

WORKERS = 4


async def _world(config: SQLAlchemyAsyncConfig, extra_workers: int = 0) -> tuple[World, list[User]]:
    async with session_scope(config) as session:
        world = await build_world(session)
        for n in range(extra_workers):
            user = await accounts.create_user(
                session, username=f"grid{n + 3}", password=PASSWORD, role=Role.GRID_WORKER, display_name=f"网格员{n + 3}",
                place_id=world.grid.id,
            )
            world.users[f"grid{n + 3}"] = user.id
        rows = list(await session.scalars(select(User).where(User.role == Role.GRID_WORKER, User.place_id == world.grid.id)))
        workers = [u for u in rows]
    return world, workers


async def _case(config: SQLAlchemyAsyncConfig, settings: Settings, world: World, worker: User) -> Appeal:
    async with session_scope(config) as session:
        return await appeals.submit(
            session,
            AppealInput(
                channel=AppealChannel.VISIT, submitter_kind=SubmitterKind.RESIDENT, category="facilities",
                description="楼道灯坏了三天，晚上很黑", place_id=world.compound.id,
            ),
            actor=Actor.for_user(worker), limits=TimeLimits.from_settings(settings), uploads_dir=settings.uploads_dir,
        )


async def test_concurrent_edits_of_one_field_keep_the_latest_and_record_every_stale_one(
    config: SQLAlchemyAsyncConfig, settings: Settings
) -> None:
    """Four workers edit the same description from the same pulled version and push at the same moment:
    the value with the highest clock stays, every stale edit is a recorded conflict, and the version
    counts every write that was applied."""
    world, workers = await _world(config, extra_workers=WORKERS - 2)
    assert len(workers) == WORKERS
    case = await _case(config, settings, world, workers[0])
    assert case.version == 1
    devices = [Device() for _ in workers]
    edits = [
        device.mutation("appeal", "update", {"description": f"{w.display_name}：灯已坏五天，楼梯间全黑"}, entity_id=case.id, base_version=1)
        for device, w in zip(devices, workers, strict=True)
    ]
    server_clock = Clock("server")
    ready = asyncio.Barrier(WORKERS)

    async def push(worker: User, device: Device, edit: dict) -> engine.Outcome:
        mark_writer()  # as the POST /sync/push request does
        batch = p.decode_push(msgspec.json.encode(device.batch(edit)))
        ctx = field_sync.context_for(worker, settings, server_clock)
        async with config.get_session() as session:
            await ready.wait()  # all four start together
            [outcome] = await engine.push(session, batch, ctx)
            await session.commit()
        return outcome

    outcomes = await asyncio.gather(*(push(w, d, e) for w, d, e in zip(workers, devices, edits, strict=True)))

    async with config.get_session() as session:
        stored = await session.get(Appeal, case.id)
        conflicts = list(await session.scalars(select(SyncConflict).where(SyncConflict.entity_id == case.id)))
        edit_events = await session.scalar(
            select(func.count()).select_from(AppealEvent).where(AppealEvent.appeal_id == case.id, AppealEvent.action == "edit")
        )
    assert stored is not None
    latest = max(edits, key=lambda e: e["hlc"])
    assert stored.description == latest["fields"]["description"]
    # The first to commit applied cleanly; each of the others wrote from a version someone else had
    # already changed: a conflict each, applied or not by clock.
    assert sorted(o.status for o in outcomes) == [p.APPLIED] + [p.CONFLICT] * (WORKERS - 1)
    assert len(conflicts) == WORKERS - 1
    assert {c.mutation_id for c in conflicts} == {o.mutation_id for o in outcomes if o.status == p.CONFLICT}
    applied = sum(1 for o in outcomes if o.status == p.APPLIED or (o.conflict is not None and o.conflict.applied))
    assert stored.version == 1 + applied
    assert edit_events == applied


async def test_two_staff_acting_at_once_one_wins_the_other_is_told_to_reload(
    config: SQLAlchemyAsyncConfig, settings: Settings
) -> None:
    """Both resolve the case their page showed at version v: the first writes, the second (which waited
    for it) is refused with "someone else updated this case" and writes nothing."""
    world, workers = await _world(config)
    limits = TimeLimits.from_settings(settings)
    case = await _case(config, settings, world, workers[0])
    async with session_scope(config) as session:
        staff = await session.get(User, world.users["staff"])
        assert staff is not None
        actor = Actor.for_user(staff)
        appeal = await session.get(Appeal, case.id)
        assert appeal is not None
        await appeals.act(session, appeal, Action.ACCEPT, actor, limits=limits)
        seen = appeal.version
    first_has_lock = asyncio.Event()
    let_first_commit = asyncio.Event()

    async def resolve(note: str, *, hold: bool) -> str:
        mark_writer()  # a POST
        async with config.get_session() as session:
            appeal = await session.get(Appeal, case.id)
            assert appeal is not None
            try:
                await appeals.act(session, appeal, Action.RESOLVE, actor, ActionInput(note=note), limits=limits, seen_version=seen)
            except StaleCase as error:
                await session.rollback()
                return error.translated()
            if hold:
                first_has_lock.set()
                await let_first_commit.wait()
            await session.commit()
            return "resolved"

    first = asyncio.create_task(resolve("已更换灯泡", hold=True))
    await first_has_lock.wait()
    second = asyncio.create_task(resolve("已联系物业维修", hold=False))
    await asyncio.sleep(0.3)
    assert not second.done(), "the second action must wait for the first, not act on what it read"
    let_first_commit.set()
    assert await first == "resolved"
    refusal = await second
    assert refusal == "这个案件刚刚被其他人更新了，请查看最新情况后再操作。"

    async with config.get_session() as session:
        stored = await session.get(Appeal, case.id)
        resolves = list(await session.scalars(select(AppealEvent).where(AppealEvent.appeal_id == case.id, AppealEvent.action == "resolve")))
    assert stored is not None and stored.version == seen + 1
    assert stored.resolution_note == "已更换灯泡"
    assert [e.note for e in resolves] == ["已更换灯泡"]


async def _until_someone_waits(config: SQLAlchemyAsyncConfig) -> None:
    """Until another connection waits for a row lock (PostgreSQL). On SQLite the second writer waits
    in the write queue before it reads anything: a moment for it to get there is enough."""
    if config.get_engine().dialect.name != "postgresql":
        await asyncio.sleep(0.2)
        return
    waiting = text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")
    async with config.get_engine().connect() as connection:
        for _ in range(200):
            if await connection.scalar(waiting):
                return
            await asyncio.sleep(0.05)
    raise AssertionError("the second writer never reached the case")


async def test_staff_taking_a_devices_value_while_a_phone_edits_the_case_loses_no_write(
    config: SQLAlchemyAsyncConfig, settings: Settings
) -> None:
    """Staff resolve an edit conflict with "take the device's value" while another phone's edit of the same
    case is being committed: the resolution waits for that edit and writes on top of it. The case keeps
    both values, and its version counts both writes (a phone's next edit from it is not mistaken)."""
    world, workers = await _world(config)
    case = await _case(config, settings, world, workers[0])
    server_clock = Clock("server")
    late_id = uuid.uuid4()
    first, late = Device(), Device(id=late_id, clock=Clock(str(late_id), now_ms=lambda: wall_clock_ms() - 60_000))
    # The late phone edited a minute earlier (an older clock) but pushes second, from the same base: a
    # conflict that kept the current value; staff will take the phone's.
    late_edit = late.mutation("appeal", "update", {"description": "张网格：楼道灯坏了，一楼到三楼都不亮"}, entity_id=case.id, base_version=1)
    first_edit = first.mutation("appeal", "update", {"description": "王网格：楼道灯坏了，已报物业"}, entity_id=case.id, base_version=1)
    for worker, device, edit in [(workers[0], first, first_edit), (workers[1], late, late_edit)]:
        mark_writer()
        async with session_scope(config) as session:
            await engine.push(session, p.decode_push(msgspec.json.encode(device.batch(edit))), field_sync.context_for(worker, settings, server_clock))
    async with config.get_session() as session:
        [conflict] = list(await session.scalars(select(SyncConflict).where(SyncConflict.entity_id == case.id)))
        before = await session.get(Appeal, case.id)
        assert before is not None and before.description == first_edit["fields"]["description"]
        base = before.version
    phone_has_lock = asyncio.Event()
    let_phone_commit = asyncio.Event()

    async def phone_edits() -> str:
        mark_writer()  # POST /sync/push
        edit = first.mutation("appeal", "update", {"location_detail": "3号楼2单元楼道"}, entity_id=case.id, base_version=base)
        batch = p.decode_push(msgspec.json.encode(first.batch(edit)))
        async with config.get_session() as session:
            [outcome] = await engine.push(session, batch, field_sync.context_for(workers[0], settings, server_clock))
            phone_has_lock.set()
            await let_phone_commit.wait()
            await session.commit()
        return outcome.status

    async def staff_take_the_device_value() -> None:
        mark_writer()  # POST /sync/conflicts/{id}
        async with config.get_session() as session:
            staff = await session.get(User, world.users["staff"])
            found = await conflicts.get_conflict(session, conflict.id)
            assert staff is not None and found is not None
            await conflicts.resolve(
                session, found, "take_device", actor=Actor.for_user(staff), note="以现场核实为准",
                limits=TimeLimits.from_settings(settings), uploads_dir=settings.uploads_dir,
            )
            await session.commit()

    phone = asyncio.create_task(phone_edits())
    await phone_has_lock.wait()
    staff = asyncio.create_task(staff_take_the_device_value())
    await _until_someone_waits(config)
    let_phone_commit.set()
    assert await phone == p.APPLIED
    await staff

    async with config.get_session() as session:
        stored = await session.get(Appeal, case.id)
        edits = await session.scalar(
            select(func.count()).select_from(AppealEvent).where(AppealEvent.appeal_id == case.id, AppealEvent.action == "edit")
        )
    assert stored is not None
    assert stored.description == late_edit["fields"]["description"]
    assert stored.location_detail == "3号楼2单元楼道"
    assert stored.version == base + 2, "a write was counted once for two changes: the next edit from this version would be taken as fresh"
    assert edits == stored.version - 1


async def test_a_pull_during_a_slow_transaction_misses_nothing(config: SQLAlchemyAsyncConfig, settings: Settings) -> None:
    """A visit's transaction stays open (photos, a slow disk) while a pull runs and other work commits;
    the next incremental pull delivers its rows, whatever their timestamps say."""
    world, workers = await _world(config)
    worker = workers[0]
    limits = TimeLimits.from_settings(settings)
    secret = settings.secret_key
    async with config.get_session() as session:
        baseline = await pulling.pull(session, field_sync.context_for(worker, settings, Clock("server")), cursor=None, secret=secret, now=datetime.now(UTC))
        await session.commit()

    slow_wrote = asyncio.Event()
    finish_slow = asyncio.Event()
    slow_id = uuid.uuid4()

    async def slow_transaction() -> None:
        mark_writer()
        async with config.get_session() as session:
            await appeals.submit(
                session,
                AppealInput(channel=AppealChannel.VISIT, submitter_kind=SubmitterKind.RESIDENT, category="facilities",
                            description="慢事务里登记的诉求：楼顶漏水", place_id=world.compound.id),
                actor=Actor.for_user(worker), limits=limits, uploads_dir=settings.uploads_dir, appeal_id=slow_id,
            )
            await session.flush()
            slow_wrote.set()
            await finish_slow.wait()
            await session.commit()

    other = await _case(config, settings, world, worker)

    async def comment_on_other() -> None:
        """Other work that commits meanwhile (a note on another case changes that case's row)."""
        mark_writer()
        async with session_scope(config) as session:
            appeal = await session.get(Appeal, other.id)
            assert appeal is not None
            await appeals.act(session, appeal, Action.COMMENT, Actor.for_user(worker), ActionInput(note="已电话联系居民"), limits=limits)

    slow = asyncio.create_task(slow_transaction())
    await slow_wrote.wait()
    # PostgreSQL lets the other writer commit while the slow one is open; SQLite makes it wait its turn.
    concurrent = config.get_engine().dialect.name == "postgresql"
    if concurrent:
        await comment_on_other()
    async with config.get_session() as session:
        # As if the slow transaction had been open longer than the 5-second overlap the old, time-based
        # cursor allowed: time alone must not decide what is delivered.
        middle = await pulling.pull(session, field_sync.context_for(worker, settings, Clock("server")), cursor=baseline.cursor, secret=secret, now=datetime.now(UTC) + timedelta(seconds=10))
        await session.commit()
    assert slow_id not in {UUID(r["id"]) for r in middle.records}
    finish_slow.set()
    await slow
    if not concurrent:
        await comment_on_other()
    async with config.get_session() as session:
        last = await pulling.pull(session, field_sync.context_for(worker, settings, Clock("server")), cursor=middle.cursor, secret=secret, now=datetime.now(UTC))
    delivered_later = {UUID(r["id"]) for r in last.records if r["entity"] == "appeal"}
    assert slow_id in delivered_later, "a row committed after a pull by a transaction that began before it was skipped"
    delivered = {UUID(r["id"]) for r in middle.records + last.records if r["entity"] == "appeal"}
    assert {slow_id, other.id} <= delivered


BATCHES = 2
PER_BATCH = 120


def test_phones_pushing_at_once_all_get_answers(databases: Databases, tmp_path: Path) -> None:
    """Four phones push big batches at the same moment to a real server process: every batch is
    answered (no 5xx, no "database is locked"), every appeal is stored once."""
    settings = settings_for(databases.fresh("schema", tmp_path), tmp_path / "var")

    async def arrange() -> None:
        config = make_alchemy_config(settings)
        try:
            await _world(config, extra_workers=WORKERS - 2)
        finally:
            await config.get_engine().dispose()

    run_isolated(asyncio.run, arrange())
    server = LiveServer(settings=settings, log_path=tmp_path / "server.log")
    server.start()
    try:
        statuses, applied = run_isolated(asyncio.run, _push_from_phones(server.url))
    finally:
        server.stop()
    assert statuses == [200] * (WORKERS * BATCHES), server.log_path.read_text()[-3000:]
    assert applied == WORKERS * BATCHES * PER_BATCH

    async def count() -> int:
        config = make_alchemy_config(settings)
        try:
            async with config.get_session() as session:
                return await session.scalar(select(func.count()).select_from(Appeal)) or 0
        finally:
            await config.get_engine().dispose()

    assert run_isolated(asyncio.run, count()) == WORKERS * BATCHES * PER_BATCH


async def _push_from_phones(base_url: str) -> tuple[list[int], int]:
    usernames = ["grid", "grid2"] + [f"grid{n + 3}" for n in range(WORKERS - 2)]
    clients = [httpx.AsyncClient(base_url=base_url, timeout=60) for _ in usernames]
    try:
        for client, username in zip(clients, usernames, strict=True):
            page = await client.get("/login")
            token = CSRF_RE.search(page.text)
            assert token
            signed_in = await client.post("/login", data={"username": username, "password": PASSWORD, "_csrf_token": token.group(1)})
            assert signed_in.status_code == 303
        phones = [Device() for _ in clients]
        place = await _compound_id(clients[0])
        batches = [
            [phone.batch(*(phone.mutation("appeal", "create", {**appeal_fields(f"第{b}批第{i}件：路灯不亮了"), "place_id": place}) for i in range(PER_BATCH)))
             for b in range(BATCHES)]
            for phone in phones
        ]

        async def phone_pushes(client: httpx.AsyncClient, phone: Device, its_batches: list[dict]) -> list[httpx.Response]:
            return [await client.post("/sync/push", json=batch, headers=phone.headers) for batch in its_batches]

        answers = await asyncio.gather(*(phone_pushes(c, ph, b) for c, ph, b in zip(clients, phones, batches, strict=True)))
        responses = [r for rs in answers for r in rs]
        applied = sum(1 for r in responses if r.status_code == 200 for x in r.json()["results"] if x["status"] == "applied")
        return [r.status_code for r in responses], applied
    finally:
        for client in clients:
            await client.aclose()


async def _compound_id(client: httpx.AsyncClient) -> str:
    pulled = (await client.get("/sync/pull", headers=Device().headers)).json()
    [place] = [r["id"] for r in pulled["records"] if r["entity"] == "place" and r["data"]["name"] == "东舍坊小区"]
    return place
