"""Notifications (X6): the in-app inbox entry for each workflow step, once; outbound channels after commit,
never on rollback, and a failing channel never blocks or undoes the case."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from uuid import uuid4

import httpx
import pytest
from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from server.app import create_app
from server.db import make_alchemy_config, session_scope
from server.models import Appeal, AppealStatus, Department, Evaluation, Notification, Role
from server.services import notifications
from server.services.appeal_workflow import SUBMITTER, Action
from server.services.appeals import ActionInput
from server.services.notifications import Message, WebhookChannel
from server.settings import Settings
from server.worker import run_jobs_once

from tests.integration.appeal_world import World, load_world, make_world


@pytest.fixture
async def world(db: AsyncSession, settings: Settings) -> World:
    return await make_world(db, settings)


@pytest.fixture
async def config(settings: Settings) -> AsyncIterator[SQLAlchemyAsyncConfig]:
    config = make_alchemy_config(settings)
    try:
        yield config
    finally:
        await config.get_engine().dispose()


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


# --- outbound channels -------------------------------------------------------------------------------


async def test_a_failing_channel_neither_blocks_nor_undoes_the_case(config: SQLAlchemyAsyncConfig, settings: Settings) -> None:
    failing, recording = FailingChannel(), RecordingChannel()
    notifications.configure_channels([failing, recording])
    async with session_scope(config) as session:
        world = await make_world(session, settings)
        appeal = await world.submit()
        await world.act(appeal, Action.TRANSFER, Role.STAFF)
    # Two new-appeal messages (admin, staff) and two transfer messages (department user, grid worker).
    messages = await recording.wait_for(4)
    assert sorted(m.kind for m in messages) == ["new_appeal", "new_appeal", "transfer", "transfer"]
    assert failing.calls == 4
    async with config.get_session() as session:
        stored = await session.scalar(select(Appeal).where(Appeal.id == appeal.id))
        assert stored is not None and stored.status is AppealStatus.TRANSFERRED
        assert len(list(await session.scalars(select(Notification)))) == 4


async def test_nothing_is_sent_when_the_transaction_rolls_back(config: SQLAlchemyAsyncConfig, settings: Settings) -> None:
    recording = RecordingChannel()
    notifications.configure_channels([recording])
    async with session_scope(config) as session:
        world = await make_world(session, settings)
    with pytest.raises(RuntimeError):
        async with session_scope(config) as session:
            world = await load_world(session, settings, world.clock)
            await world.submit(description="这条诉求随事务回滚，不应发出通知")
            raise RuntimeError("the request failed after the service ran")
    # A later committed appeal is delivered; the rolled-back one never is.
    async with session_scope(config) as session:
        world = await load_world(session, settings, world.clock)
        kept = await world.submit()
    # Delivery tasks run in the order of their commits: had the rolled-back appeal been sent, it
    # would be among the first two messages.
    messages = await recording.wait_for(2)
    assert [m.params for m in messages] == [{"reference": kept.reference}] * 2


async def test_messages_wait_for_the_real_commit_and_survive_a_failed_savepoint(
    config: SQLAlchemyAsyncConfig, settings: Settings
) -> None:
    """A savepoint inside the request (a retried insert, a duplicate notification from another worker)
    neither sends the queued messages early nor drops them; the commit sends them once."""
    recording = RecordingChannel()
    notifications.configure_channels([recording])
    async with session_scope(config) as session:
        world = await make_world(session, settings)
    async with session_scope(config) as session:
        world = await load_world(session, settings, world.clock)
        first = await world.submit()
        with pytest.raises(IntegrityError):
            async with session.begin_nested():
                session.add(Department(code="cgj", name="重复的部门"))
                await session.flush()
        async with session.begin_nested():
            await session.flush()
        await asyncio.sleep(0.05)  # had a savepoint sent the queue, the delivery task would have run now
        assert recording.messages == []
    messages = await recording.wait_for(2)
    assert [m.params for m in messages] == [{"reference": first.reference}] * 2


def test_a_configured_webhook_url_adds_the_webhook_channel(settings: Settings) -> None:
    """SHANZHI_NOTIFY_WEBHOOK_URL turns the webhook channel on next to the log; unset, only the log runs."""
    assert [c.name for c in notifications.channels_for(None)] == ["log"]
    create_app(replace(settings, notify_webhook_url="http://127.0.0.1:9/hook"))
    active = notifications.channels()
    assert [c.name for c in active] == ["log", "webhook"]
    assert active[1].url == "http://127.0.0.1:9/hook"  # type: ignore[attr-defined]


class _Hook(BaseHTTPRequestHandler):
    """A stand-in for an SMS or WeChat gateway: records each POST and answers with `status`."""

    status = 204
    received: list[dict[str, Any]]

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append({"content_type": self.headers["Content-Type"], "json": json.loads(body)})
        self.send_response(self.status)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output quiet
        return


@pytest.fixture
def gateway() -> Iterator[tuple[str, type[_Hook]]]:
    handler = type("Hook", (_Hook,), {"received": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/notify", handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


async def test_webhook_channel_posts_json_after_commit(
    config: SQLAlchemyAsyncConfig, settings: Settings, gateway: tuple[str, type[_Hook]]
) -> None:
    url, hook = gateway
    recording = RecordingChannel()
    # The webhook comes first: once the recording channel has all three messages, so has the gateway.
    notifications.configure_channels([WebhookChannel(url), recording])
    async with session_scope(config) as session:
        world = await make_world(session, settings)
        appeal = await world.submit()
        await world.act(appeal, Action.TRANSFER, Role.STAFF, ActionInput(department_id=world.home_department.id))
        assert hook.received == []  # nothing leaves before the commit
    await recording.wait_for(3)  # new appeal to admin and staff, transfer to the department user
    assert all(r["content_type"] == "application/json" for r in hook.received)
    transfer = [r["json"] for r in hook.received if r["json"]["kind"] == "transfer"]
    assert transfer == [
        {
            "user_id": str(world.users[Role.DEPARTMENT].id),
            "kind": "transfer",
            "text": "Case %(reference)s was transferred to you",
            "params": {"reference": appeal.reference},
        }
    ]
    assert sorted(r["json"]["user_id"] for r in hook.received if r["json"]["kind"] == "new_appeal") == sorted(
        str(world.users[role].id) for role in (Role.ADMIN, Role.STAFF)
    )


async def test_a_gateway_error_is_a_failed_send(gateway: tuple[str, type[_Hook]]) -> None:
    """A gateway answering 5xx counts as a failure, which deliver() logs and steps over."""
    url, hook = gateway
    hook.status = 500
    message = Message(user_id=uuid4(), kind="overdue", text="Case %(reference)s is overdue", params={"reference": "2026-00001"})
    with pytest.raises(httpx.HTTPStatusError):
        await WebhookChannel(url).send(message)
    recording = RecordingChannel()
    notifications.configure_channels([WebhookChannel(url), recording])
    await notifications.deliver([message])
    assert recording.messages == [message]
    assert len(hook.received) == 2
