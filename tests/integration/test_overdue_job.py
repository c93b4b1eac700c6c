"""The time-limit job (A3): each missed limit is recorded once and each responsible person told once,
however often, and however concurrently, the job runs."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from server.app import create_app
from server.db import make_alchemy_config, session_scope
from server.models import Appeal, AppealEvent, AppealStatus, Evaluation, Notification, Role, User
from server.services.appeal_workflow import SUBMITTER, Action
from server.services.appeals import ActionInput, utc_now
from server.settings import Settings
from server.worker import run_forever, run_jobs_once

from tests.integration.appeal_world import MovingClock, World, load_world, make_world

Steps = Callable[[World], Awaitable[None]]


async def arrange(config: SQLAlchemyAsyncConfig, settings: Settings, steps: Steps, clock: MovingClock | None = None) -> MovingClock:
    """Set up the departments and users, then run `steps(world)`, committed as the web requests would."""
    clock = clock or MovingClock()
    async with session_scope(config) as session:
        await steps(await make_world(session, settings, clock))
    return clock


async def overdue_events(config: SQLAlchemyAsyncConfig) -> list[tuple[str, str]]:
    """(reference, limit) of every overdue event."""
    async with config.get_session() as session:
        rows = await session.execute(
            select(Appeal.reference, AppealEvent.data).join(Appeal, Appeal.id == AppealEvent.appeal_id).where(AppealEvent.action == "overdue")
        )
        return sorted((reference, data["limit"]) for reference, data in rows)


async def overdue_notifications(config: SQLAlchemyAsyncConfig) -> list[tuple[str, str]]:
    """(username, reference) of every overdue notification."""
    async with config.get_session() as session:
        rows = await session.execute(
            select(User.username, Notification.params).join(User, User.id == Notification.user_id).where(Notification.kind == "overdue")
        )
        return sorted((username, params["reference"]) for username, params in rows)


STAFF_SIDE = ["admin", "staff"]
HANDLERS = ["admin", "department", "grid-worker", "staff"]  # of a case transferred to 区城管 and the grid worker


async def test_a_late_response_is_recorded_once(config: SQLAlchemyAsyncConfig, settings: Settings) -> None:
    references: list[str] = []

    async def steps(world: World) -> None:
        references.append((await world.submit()).reference)

    clock = await arrange(config, settings, steps)
    clock.advance(hours=12)  # exactly at the limit: not overdue yet
    assert await run_jobs_once(config, settings, clock) == 0
    clock.advance(minutes=1)
    assert await run_jobs_once(config, settings, clock) == 1
    assert await run_jobs_once(config, settings, clock) == 0
    clock.advance(hours=5)
    assert await run_jobs_once(config, settings, clock) == 0
    assert await overdue_events(config) == [(references[0], "response")]
    # Nobody handles it yet: staff and admins hear about it, once each.
    assert await overdue_notifications(config) == [(name, references[0]) for name in STAFF_SIDE]


async def test_two_racing_runs_record_once(config: SQLAlchemyAsyncConfig, settings: Settings) -> None:
    references: list[str] = []

    async def steps(world: World) -> None:
        for _ in range(3):
            references.append((await world.submit()).reference)

    clock = await arrange(config, settings, steps)
    clock.advance(hours=13)
    other = make_alchemy_config(settings)  # a second worker process: its own engine and connections
    try:
        results = await asyncio.gather(run_jobs_once(config, settings, clock), run_jobs_once(other, settings, clock))
    finally:
        await other.get_engine().dispose()
    assert sum(results) == 3
    assert await overdue_events(config) == [(r, "response") for r in sorted(references)]
    assert await overdue_notifications(config) == sorted((name, r) for name in STAFF_SIDE for r in references)


async def test_a_late_resolution_is_recorded_once_and_tells_the_handlers(config: SQLAlchemyAsyncConfig, settings: Settings) -> None:
    references: list[str] = []

    async def steps(world: World) -> None:
        case = await world.case_in(AppealStatus.IN_PROGRESS)  # responded within the hour
        references.append(case.reference)

    clock = await arrange(config, settings, steps)
    clock.advance(days=6, hours=23)
    assert await run_jobs_once(config, settings, clock) == 0  # responded in time, not yet late to resolve
    clock.advance(hours=2)
    assert await run_jobs_once(config, settings, clock) == 1
    assert await run_jobs_once(config, settings, clock) == 0
    assert await overdue_events(config) == [(references[0], "resolution")]
    assert await overdue_notifications(config) == [(name, references[0]) for name in HANDLERS]


async def test_resolved_and_finished_cases_are_not_flagged(config: SQLAlchemyAsyncConfig, settings: Settings) -> None:
    async def steps(world: World) -> None:
        for state in (AppealStatus.RESOLVED, AppealStatus.EVALUATED, AppealStatus.CLOSED, AppealStatus.REJECTED):
            await world.case_in(state)

    clock = await arrange(config, settings, steps)
    clock.advance(days=60)
    assert await run_jobs_once(config, settings, clock) == 0
    assert await overdue_events(config) == []


async def test_a_merged_case_is_not_flagged_but_the_case_it_joined_is(config: SQLAlchemyAsyncConfig, settings: Settings) -> None:
    references: list[str] = []

    async def steps(world: World) -> None:
        original = await world.submit()
        duplicate = await world.submit()
        await world.act(duplicate, Action.MERGE, Role.STAFF, ActionInput(target_reference=original.reference))
        references.append(original.reference)

    clock = await arrange(config, settings, steps)
    clock.advance(days=60)
    assert await run_jobs_once(config, settings, clock) == 2
    assert await overdue_events(config) == [(references[0], "resolution"), (references[0], "response")]


async def test_a_complex_case_gets_its_month(config: SQLAlchemyAsyncConfig, settings: Settings) -> None:
    async def steps(world: World) -> None:
        case = await world.case_in(AppealStatus.IN_PROGRESS)
        await world.act(case, Action.MARK_COMPLEX, Role.STAFF)

    clock = await arrange(config, settings, steps)
    clock.advance(days=20)
    assert await run_jobs_once(config, settings, clock) == 0
    clock.advance(days=15)
    assert await run_jobs_once(config, settings, clock) == 1


async def test_a_reopened_case_can_be_overdue_again(config: SQLAlchemyAsyncConfig, settings: Settings) -> None:
    references: list[str] = []

    async def steps(world: World) -> None:
        references.append((await world.case_in(AppealStatus.IN_PROGRESS)).reference)

    clock = await arrange(config, settings, steps)
    clock.advance(days=8)
    assert await run_jobs_once(config, settings, clock) == 1

    # Resolved late, evaluated 不满意: back in progress, still past its limit, so late again, once.
    async with session_scope(config) as session:
        world = await load_world(session, settings, clock)
        case = await session.scalar(select(Appeal).where(Appeal.reference == references[0]))
        assert case is not None
        await world.act(case, Action.RESOLVE, Role.STAFF)
        await world.act(case, Action.EVALUATE, SUBMITTER, ActionInput(evaluation=Evaluation.UNSATISFIED))
        assert (case.status, case.reopen_count) == (AppealStatus.IN_PROGRESS, 1)
    assert await run_jobs_once(config, settings, clock) == 1
    assert await run_jobs_once(config, settings, clock) == 0
    assert await overdue_events(config) == [(references[0], "resolution")] * 2


async def test_the_loop_survives_a_failed_run(config: SQLAlchemyAsyncConfig, settings: Settings) -> None:
    async def steps(world: World) -> None:
        await world.submit()

    late = (await arrange(config, settings, steps)).advance(hours=13)
    calls = 0
    second_run = asyncio.Event()

    def flaky_clock() -> datetime:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("the first run fails")
        if calls > 2:
            second_run.set()
        return late

    task = asyncio.create_task(run_forever(config, settings, flaky_clock, interval=0.01))
    try:
        await asyncio.wait_for(second_run.wait(), timeout=30)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert len(await overdue_events(config)) == 1


async def test_serve_runs_the_job_when_embedded(config: SQLAlchemyAsyncConfig, settings: Settings) -> None:
    """`shanzhi serve` starts the loop with the app and stops it with the app."""

    async def steps(world: World) -> None:
        await world.submit()

    await arrange(config, settings, steps, MovingClock(utc_now() - timedelta(hours=13)))
    app = create_app(replace(settings, embedded_worker=True))
    async with AsyncTestClient(app=app):
        for _ in range(300):
            if await overdue_events(config):
                break
            await asyncio.sleep(0.1)
    assert len(await overdue_events(config)) == 1


def test_the_embedded_worker_is_on_by_default_outside_tests(tmp_path: Path) -> None:
    assert Settings(database_url="sqlite://", secret_key="x").embedded_worker is False
    env = {"SHANZHI_VAR_DIR": str(tmp_path), "SHANZHI_SECRET_KEY": "x"}
    assert Settings.from_env(env).embedded_worker is True
    assert Settings.from_env({**env, "SHANZHI_EMBEDDED_WORKER": "false"}).embedded_worker is False


async def due_soon_notifications(config: SQLAlchemyAsyncConfig) -> list[tuple[str, str]]:
    async with config.get_session() as session:
        rows = await session.execute(
            select(User.username, Notification.params).join(User, User.id == Notification.user_id).where(Notification.kind == "due_soon")
        )
        return sorted((username, params["reference"]) for username, params in rows)


async def test_due_soon_is_announced_once_before_the_limit(config: SQLAlchemyAsyncConfig, settings: Settings) -> None:
    """即将超时: with a quarter of the 12-hour response window left, staff hear about it once."""
    references: list[str] = []

    async def steps(world: World) -> None:
        references.append((await world.submit()).reference)

    clock = await arrange(config, settings, steps)
    clock.advance(hours=9)  # exactly a quarter left: still on track
    await run_jobs_once(config, settings, clock)
    assert await due_soon_notifications(config) == []
    clock.advance(minutes=1)
    await run_jobs_once(config, settings, clock)
    await run_jobs_once(config, settings, clock)
    assert await due_soon_notifications(config) == [(name, references[0]) for name in STAFF_SIDE]
