"""Notifications (X6): the in-app inbox entry for each workflow step, once; outbound channels after commit,
never on rollback, and a failing channel never blocks or undoes the case."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
from sqlalchemy import event, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from server.app import create_app
from server.db import make_alchemy_config, mark_writer, session_scope
from server.models import Appeal, AppealStatus, Department, Evaluation, Notification, OutboundMessage, OutboundStatus, Role
from server.services import accounts, notifications
from server.services.appeal_workflow import SUBMITTER, Action
from server.services.appeals import ActionInput
from server.services.notifications import Message, WebhookChannel
from server.settings import Settings
from server.worker import BackgroundTasks, EmbeddedWorker, run_jobs_once

from tests.conftest import forget_alchemy_configs
from tests.integration.appeal_world import World, load_world, make_world


@pytest.fixture
async def world(db: AsyncSession, settings: Settings) -> World:
    return await make_world(db, settings)


@pytest.fixture(autouse=True)
def restore_channels() -> Iterator[None]:
    saved = notifications.channels()
    yield
    notifications.configure_channels(saved)


class RecordingChannel:
    """Keeps what it is sent; `wait_for(n)` returns once n messages arrived."""

    name = "recording"

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.arrived = asyncio.Event()

    async def send(self, message: Message) -> None:
        self.messages.append(message)
        self.arrived.set()

    async def wait_for(self, count: int) -> list[Message]:
        while len(self.messages) < count:
            self.arrived.clear()
            await asyncio.wait_for(self.arrived.wait(), timeout=30)
        return self.messages


class FailingChannel:
    name = "failing"

    def __init__(self) -> None:
        self.calls = 0

    async def send(self, message: Message) -> None:
        self.calls += 1
        raise ConnectionError("the SMS gateway is down")


ADMIN_PASSWORD = "admin-password-1"


def inbox_of(world: World, kind: str) -> Any:
    async def users() -> set[Any]:
        return {n.user_id for n in await world.notifications(kind=kind)}

    return users()


def user_ids(world: World, *roles: Role) -> set[Any]:
    return {world.users[role].id for role in roles}


# --- in-app notifications ----------------------------------------------------------------------------


async def test_a_new_appeal_tells_staff_and_admins(world: World) -> None:
    appeal = await world.submit()
    entries = await world.notifications(kind="new_appeal")
    assert {n.user_id for n in entries} == user_ids(world, Role.ADMIN, Role.STAFF)
    assert all(n.appeal_id == appeal.id and n.params == {"reference": appeal.reference} for n in entries)


async def test_transfer_tells_the_department_users_and_the_person(world: World) -> None:
    appeal = await world.submit()
    await world.act(appeal, Action.TRANSFER, Role.STAFF)
    assert await inbox_of(world, "transfer") == user_ids(world, Role.DEPARTMENT, Role.GRID_WORKER)


async def test_whistle_tells_every_summoned_department(world: World) -> None:
    appeal = await world.submit()
    departments = [world.departments[code].id for code in ("fgw", "gxj", "rsj")]
    await world.act(appeal, Action.WHISTLE, Role.STAFF, ActionInput(department_ids=departments, report_by=world.clock.now + timedelta(days=1)))
    assert await inbox_of(world, "summons") == {world.other_department_users[code].id for code in ("fgw", "gxj", "rsj")}


async def test_resolve_tells_staff(world: World) -> None:
    appeal = await world.case_in(AppealStatus.IN_PROGRESS)
    await world.act(appeal, Action.RESOLVE, Role.DEPARTMENT)
    assert await inbox_of(world, "resolved") == user_ids(world, Role.ADMIN, Role.STAFF)


async def test_unsatisfied_tells_the_handlers(world: World) -> None:
    appeal = await world.case_in(AppealStatus.RESOLVED)
    await world.act(appeal, Action.EVALUATE, SUBMITTER, ActionInput(evaluation=Evaluation.UNSATISFIED))
    assert await inbox_of(world, "reopened") == user_ids(world, Role.ADMIN, Role.STAFF, Role.DEPARTMENT, Role.GRID_WORKER)


async def test_reopen_tells_the_handlers_but_not_the_actor(world: World) -> None:
    appeal = await world.case_in(AppealStatus.EVALUATED)
    await world.act(appeal, Action.REOPEN, Role.ADMIN)
    assert await inbox_of(world, "reopened") == user_ids(world, Role.STAFF, Role.DEPARTMENT, Role.GRID_WORKER)


async def test_notes_and_acceptance_notify_nobody(world: World) -> None:
    appeal = await world.case_in(AppealStatus.TRANSFERRED)
    before = await world.count(Notification)
    await world.act(appeal, Action.ACCEPT, Role.DEPARTMENT)
    await world.act(appeal, Action.COMMENT, Role.SUPERVISOR)
    assert await world.count(Notification) == before


async def test_overdue_tells_staff(config: SQLAlchemyAsyncConfig, settings: Settings) -> None:
    async with session_scope(config) as session:
        world = await make_world(session, settings)
        await world.submit()
    clock = world.clock
    clock.advance(hours=13)
    await run_jobs_once(config, settings, clock)
    await run_jobs_once(config, settings, clock)
    async with session_scope(config) as session:
        world = await load_world(session, settings, clock)
        assert sorted(n.user_id for n in await world.notifications(kind="overdue")) == sorted(user_ids(world, Role.ADMIN, Role.STAFF))


async def test_notify_is_deduplicated_per_user(world: World) -> None:
    appeal = await world.submit()
    users = [world.users[Role.STAFF].id, world.users[Role.GRID_WORKER].id]
    args: dict[str, Any] = {"kind": "due_soon", "text": "Case %(reference)s is due soon", "dedupe": f"due:{appeal.id}", "appeal_id": appeal.id}
    assert await notifications.notify(world.session, [*users, users[0]], **args) == 2
    assert await notifications.notify(world.session, users, **args) == 0
    assert await notifications.notify(world.session, [world.users[Role.ADMIN].id, *users], **args) == 1
    assert await world.count(Notification, kind="due_soon") == 3


async def test_inbox_and_unread_count(world: World) -> None:
    await world.submit()
    await world.submit()
    staff = world.users[Role.STAFF].id
    assert len(await notifications.inbox(world.session, staff)) == 2
    assert await notifications.unread_count(world.session, staff) == 2
    await notifications.mark_all_read(world.session, staff, world.clock.now)
    assert await notifications.unread_count(world.session, staff) == 0
    assert await notifications.unread_count(world.session, world.users[Role.ADMIN].id) == 2


# --- outbound channels: stored with their cause, delivered by the worker -------------------------------------


async def outbound_rows(config: SQLAlchemyAsyncConfig) -> list[OutboundMessage]:
    async with config.get_session() as session:
        return list(await session.scalars(select(OutboundMessage).order_by(OutboundMessage.created_at)))


async def deliver(config: SQLAlchemyAsyncConfig, at: datetime | None = None) -> notifications.DeliveryReport:
    """One delivery run of the worker (a writer, as the job is)."""
    mark_writer()
    return await notifications.deliver_due(config.get_session, at or datetime.now(UTC))


async def test_outbound_messages_are_stored_with_their_cause_and_sent_by_the_worker(
    config: SQLAlchemyAsyncConfig, settings: Settings
) -> None:
    recording = RecordingChannel()
    notifications.configure_channels([recording])
    async with session_scope(config) as session:
        world = await make_world(session, settings)
        appeal = await world.submit(submitter_phone=None)  # no SMS of the query code: only the staff notices here
        await world.act(appeal, Action.TRANSFER, Role.STAFF)
    # Committed with the case: two new-appeal messages (admin, staff), two transfer messages
    # (department user, grid worker); nothing sent yet, so a process stopping now loses nothing.
    rows = await outbound_rows(config)
    assert sorted(r.kind for r in rows) == ["new_appeal", "new_appeal", "transfer", "transfer"]
    assert {r.status for r in rows} == {OutboundStatus.PENDING} and recording.messages == []
    # A worker (any process with the same configuration) delivers them.
    other = make_alchemy_config(settings)
    try:
        report = await deliver(other)
    finally:
        await other.get_engine().dispose()
    assert report.sent == 4
    assert sorted(m.id for m in recording.messages) == sorted(r.id for r in rows)  # the row id is the idempotency key
    assert {r.status for r in await outbound_rows(config)} == {OutboundStatus.SENT}
    assert (await deliver(config)).sent == 0, "a sent message is not sent again"


async def test_nothing_is_stored_when_the_transaction_rolls_back(config: SQLAlchemyAsyncConfig, settings: Settings) -> None:
    notifications.configure_channels([RecordingChannel()])
    async with session_scope(config) as session:
        world = await make_world(session, settings)
    with pytest.raises(RuntimeError):
        async with session_scope(config) as session:
            world = await load_world(session, settings, world.clock)
            await world.submit(description="这条诉求随事务回滚，不应发出通知")
            raise RuntimeError("the request failed after the service ran")
    assert await outbound_rows(config) == []


async def test_messages_survive_a_failed_savepoint(config: SQLAlchemyAsyncConfig, settings: Settings) -> None:
    """A savepoint inside the request (a retried insert, a duplicate notification from another worker)
    does not drop what the transaction stored before it."""
    notifications.configure_channels([RecordingChannel()])
    async with session_scope(config) as session:
        world = await make_world(session, settings)
    async with session_scope(config) as session:
        world = await load_world(session, settings, world.clock)
        first = await world.submit(submitter_phone=None)  # no SMS of the query code: only the staff notices here
        with pytest.raises(IntegrityError):
            async with session.begin_nested():
                session.add(Department(code="cgj", name="重复的部门"))
                await session.flush()
    assert [r.params for r in await outbound_rows(config)] == [{"reference": first.reference}] * 2


def test_a_configured_webhook_url_adds_the_webhook_channel(settings: Settings) -> None:
    """SHANZHI_NOTIFY_WEBHOOK_URL turns the webhook channel on; unset, notices stay in the inbox (and the log)."""
    assert notifications.channels_for(None) == []
    create_app(replace(settings, notify_webhook_url="http://127.0.0.1:9/hook"))
    active = notifications.channels()
    assert [c.name for c in active] == ["webhook"]
    assert active[0].url == "http://127.0.0.1:9/hook"  # type: ignore[attr-defined]


class _Hook(BaseHTTPRequestHandler):
    """A stand-in for an SMS or WeChat gateway: records each POST and answers with the next status of
    `statuses` (the last one repeats)."""

    statuses: list[int]
    received: list[dict[str, Any]]

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append(
            {"content_type": self.headers["Content-Type"], "key": self.headers.get("Idempotency-Key"), "json": json.loads(body)}
        )
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        self.send_response(status)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output quiet
        return


@pytest.fixture
def gateway() -> Iterator[tuple[str, type[_Hook]]]:
    handler = type("Hook", (_Hook,), {"received": [], "statuses": [204]})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/notify", handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


async def test_a_gateway_that_fails_and_recovers_gets_each_message_with_one_key(
    config: SQLAlchemyAsyncConfig, settings: Settings, gateway: tuple[str, type[_Hook]]
) -> None:
    """The gateway is down, then recovers: the worker retries with back-off, the gateway sees
    the same idempotency key each time, and the message ends up sent once."""
    url, hook = gateway
    hook.statuses = [503, 503, 503, 204]  # down for the first run (three messages), then back
    notifications.configure_channels([WebhookChannel(url)])
    async with session_scope(config) as session:
        world = await make_world(session, settings)
        appeal = await world.submit(submitter_phone=None)  # no SMS of the query code: only the staff notices here
        await world.act(appeal, Action.TRANSFER, Role.STAFF, ActionInput(department_id=world.home_department.id))
    [message] = [r for r in await outbound_rows(config) if r.kind == "transfer"]
    assert hook.received == []  # nothing left before the worker ran
    start = datetime.now(UTC)
    first = await deliver(config, start)
    assert first.retried == 3 and first.sent == 0
    again_too_soon = await deliver(config, start + timedelta(seconds=10))
    assert again_too_soon == notifications.DeliveryReport(), "a failed message waits for its back-off"
    second = await deliver(config, start + notifications.FIRST_RETRY + timedelta(seconds=1))
    assert second.sent == 3 and second.retried == 0
    keys = [r["key"] for r in hook.received if r["json"]["kind"] == "transfer"]
    assert keys == [str(message.id)] * 2
    [stored] = [r for r in await outbound_rows(config) if r.id == message.id]
    assert (stored.status, stored.attempts, stored.last_error) == (OutboundStatus.SENT, 2, None)
    transfer = [r["json"] for r in hook.received if r["json"]["kind"] == "transfer"][-1]
    assert transfer == {
        "id": str(message.id),
        "user_id": str(world.users[Role.DEPARTMENT].id),
        "kind": "transfer",
        "text": "Case %(reference)s was transferred to you",
        "params": {"reference": appeal.reference},
        "text_zh": f"诉求 {appeal.reference} 已转办给您",
    }
    async with config.get_session() as session:
        stored_case = await session.get(Appeal, appeal.id)
        assert stored_case is not None and stored_case.status is AppealStatus.TRANSFERRED


async def test_a_message_that_keeps_failing_is_marked_failed_and_an_admin_sends_it_again(
    config: SQLAlchemyAsyncConfig, settings: Settings, client: Any, web: Any
) -> None:
    failing = FailingChannel()
    notifications.configure_channels([failing])
    async with session_scope(config) as session:
        world = await make_world(session, settings)
        world.users[Role.ADMIN].password_hash = await accounts.hash_password(ADMIN_PASSWORD)
        await world.submit()
    at = datetime.now(UTC)
    for _ in range(notifications.MAX_ATTEMPTS):
        await deliver(config, at)
        at += notifications.LONGEST_WAIT + timedelta(seconds=1)
    rows = await outbound_rows(config)
    assert {(r.status, r.attempts) for r in rows} == {(OutboundStatus.FAILED, notifications.MAX_ATTEMPTS)}
    assert all("the SMS gateway is down" in (r.last_error or "") for r in rows)
    await web.login(world.users[Role.ADMIN].username, ADMIN_PASSWORD)
    page = await client.get("/admin/outbound")
    assert page.status_code == 200 and "the SMS gateway is down" in page.text
    retried = await web.post_form("/admin/outbound/retry", {}, token_from="/admin/outbound")
    assert retried.status_code == 303
    recording = RecordingChannel()
    recording.name = "failing"  # the gateway behind the same channel works again
    notifications.configure_channels([recording])
    assert (await deliver(config)).sent == len(rows)


async def test_the_embedded_worker_delivers_soon_after_the_commit(
    settings: Settings, gateway: tuple[str, type[_Hook]]
) -> None:
    """`shanzhi serve` (embedded worker): a resident's suggestion reaches the gateway within seconds,
    without waiting for the minute's job run."""
    url, hook = gateway
    forget_alchemy_configs()  # the app's database config is the first of the process, as in production
    app = create_app(replace(settings, embedded_worker=True, notify_webhook_url=url))
    config = make_alchemy_config(settings)
    # The delivery may still be recording a send when the server stops: it must finish on an open
    # engine. A connection taken after the engine was closed would never be closed.
    worker = next(t for t in app.plugins.get(BackgroundTasks).tasks if isinstance(t, EmbeddedWorker))
    assert isinstance(worker, EmbeddedWorker)
    running_at_close: list[int] = []
    event.listen(worker.config.get_engine().sync_engine, "engine_disposed", lambda _engine: running_at_close.append(len(worker.tasks)))
    try:
        async with session_scope(config) as session:
            await make_world(session, settings)
        async with AsyncTestClient(app=app) as client:
            client.follow_redirects = False
            page = await client.get("/suggest")
            token = re.search(r'name="csrf-token" content="([^"]*)"', page.text)
            assert token
            sent = await client.post(
                "/suggest",
                data={"audience": "resident", "category": "environment", "description": "楼道里堆满了杂物，影响通行。", "_csrf_token": token.group(1)},
                files=[("photos", ("", b"", "application/octet-stream"))],
            )
            assert sent.status_code == 303
            for _ in range(100):
                if len(hook.received) >= 2:
                    break
                await asyncio.sleep(0.05)
        assert sorted(r["json"]["kind"] for r in hook.received) == ["new_appeal", "new_appeal"]
        assert {m.status for m in await outbound_rows(config)} == {OutboundStatus.SENT}
        assert running_at_close and set(running_at_close) == {0}  # stopped before the engine closed
    finally:
        await config.get_engine().dispose()


async def test_a_resident_who_left_a_phone_number_gets_the_case_number_and_query_code(
    config: SQLAlchemyAsyncConfig, settings: Settings
) -> None:
    """Through every outbound channel (an SMS gateway behind the webhook), once, sent by the worker."""
    recording = RecordingChannel()
    notifications.configure_channels([recording])
    async with session_scope(config) as session:
        world = await make_world(session, settings)
        with_phone = await world.submit(submitter_phone="139 0000 0002")
        await world.submit(submitter_phone=None, submitter_name=None)
    assert (await deliver(config)).sent >= 1
    texts = [m for m in recording.messages if m.kind == "query_code"]
    assert len(texts) == 1
    assert texts[0].user_id is None
    assert texts[0].params == {
        "reference": with_phone.reference, "query_code": with_phone.query_code, "phone": "139 0000 0002", "track_url": "/track",
    }
    rendered = notifications.render_text(texts[0].text, texts[0].params, "zh_CN")
    assert with_phone.reference in rendered and with_phone.query_code in rendered and "查询码" in rendered
