"""Public figures shared between requests (issue 11): the statistics API and the public summary are
computed once and served to everyone for a few seconds, recomputed at once after a change made through
the app, computed once for a burst of simultaneous visitors, and always equal to a fresh recount."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from server.app import create_app
from server.models import Appeal
from server.services import appeal_metrics
from server.services.demo import DemoReport
from server.services.shared_cache import SharedCache, invalidate
from server.settings import Settings
from tests.helpers import Web
from tests.integration.test_suggest import GOOD, post_suggestion


@pytest.fixture
def app(settings: Settings) -> Litestar:
    return create_app(replace(settings, public_cache_seconds=60))


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient]:
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as test_client:
        test_client.follow_redirects = False
        yield test_client


def figures(app: Litestar) -> SharedCache:
    cache: SharedCache = app.state.public_figures
    return cache


async def recount(db: AsyncSession, settings: Settings) -> dict[str, object]:
    await db.commit()  # a fresh snapshot
    stats = await appeal_metrics.compute(db, tz=settings.tz)
    return {"total": stats.total, "by_status": stats.by_status, "by_channel": stats.by_channel}


async def test_figures_are_shared_and_a_suggestion_shows_at_once(
    app: Litestar, client: AsyncTestClient, db: AsyncSession, demo_data: DemoReport, settings: Settings
) -> None:
    first = (await client.get("/api/stats/appeals")).json()
    assert {k: first[k] for k in ("total", "by_status", "by_channel")} == await recount(db, settings)
    for _ in range(5):
        assert (await client.get("/api/stats/appeals")).json() == first
    assert figures(app).computed == 1  # six visitors, one aggregate

    # A resident's suggestion through the app: the next visitor sees it, without waiting for the minute.
    sent = await post_suggestion(Web(client), "/suggest", GOOD)
    assert sent.status_code == 303
    after = (await client.get("/api/stats/appeals")).json()
    assert after["total"] == first["total"] + 1
    assert after["by_channel"]["suggestion_box"] == first["by_channel"]["suggestion_box"] + 1
    assert {k: after[k] for k in ("total", "by_status", "by_channel")} == await recount(db, settings)
    assert figures(app).computed == 2


async def test_a_burst_of_visitors_costs_one_computation(
    app: Litestar, client: AsyncTestClient, demo_data: DemoReport
) -> None:
    pages = await asyncio.gather(*(client.get("/summary/appeals") for _ in range(8)))
    assert {p.status_code for p in pages} == {200}
    assert len({p.text.count("<tr") for p in pages}) == 1
    assert figures(app).computed == 1


async def test_a_write_outside_this_process_shows_within_the_time_to_live(
    settings: Settings, db: AsyncSession, demo_data: DemoReport
) -> None:
    """Another process's commit is not seen by this one's hooks: it shows once the entry expires (the
    first visitor after that still gets the old value at once, and starts the refresh)."""
    app = create_app(replace(settings, public_cache_seconds=0.5))
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as client:
        before = (await client.get("/api/stats/appeals")).json()["by_category"]
        moved = next(code for code, n in before.items() if n > 0)
        target = next(code for code in before if code != moved)
        # A plain connection, not a Session: what another web process's write looks like to this one.
        async with db.bind.connect() as conn:
            await conn.execute(update(Appeal).where(Appeal.category == moved).values(category=target))
            await conn.commit()
        assert (await client.get("/api/stats/appeals")).json()["by_category"] == before  # still shared
        await asyncio.sleep(0.6)
        # Past its time to live the old value is answered once more while a refresh runs behind it.
        assert (await client.get("/api/stats/appeals")).json()["by_category"] == before
        for _ in range(50):
            fresh = (await client.get("/api/stats/appeals")).json()["by_category"]
            if fresh != before:
                break
            await asyncio.sleep(0.05)
        assert fresh[moved] == 0 and fresh[target] == before[target] + before[moved]
        assert fresh == (await appeal_metrics.compute(db, tz=settings.tz)).by_category


class Clock:
    """The cache's monotonic clock, moved by the test (no sleeping, nothing left to timing)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    from server.services import shared_cache

    fake = Clock()
    monkeypatch.setattr(shared_cache, "time", fake)
    return fake


async def test_a_value_long_past_its_time_is_computed_again_before_it_is_answered(config: SQLAlchemyAsyncConfig, clock: Clock) -> None:
    """Served stale only within its grace (a quiet hour in another process must not show a replaced card or a
    withdrawn comment to the next visitor); with grace 0, never past its time."""
    counted = iter(range(1, 100))

    async def compute(_session: AsyncSession) -> int:
        return next(counted)

    cache = SharedCache("test:grace", config.get_session, ttl=5, grace=5)
    assert await cache.get("k", compute) == 1
    clock.now += 7  # past its time, within the grace: answered at once, refreshed behind
    assert await cache.get("k", compute) == 1
    for _ in range(20):
        await asyncio.sleep(0)
    assert await cache.get("k", compute) == 2  # the refresh
    clock.now += 3600  # a quiet hour: computed again before it is answered
    assert await cache.get("k", compute) == 3

    strict = SharedCache("test:grace", config.get_session, ttl=5, grace=0)
    assert await strict.get("k", compute) == 4
    clock.now += 6
    assert await strict.get("k", compute) == 5


async def test_a_request_after_a_change_does_not_take_a_computation_started_before_it(config: SQLAlchemyAsyncConfig) -> None:
    release = asyncio.Event()
    started = asyncio.Event()
    versions = iter(("before the change", "after the change"))

    async def slow(_session: AsyncSession) -> str:
        value = next(versions)
        started.set()
        await release.wait()
        return value

    cache = SharedCache("test:in-flight", config.get_session, ttl=60)
    first = asyncio.create_task(cache.get("k", slow))
    await started.wait()
    invalidate("test:in-flight")  # a commit wrote what the page shows, while it was being computed
    second = asyncio.create_task(cache.get("k", slow))
    for _ in range(20):
        await asyncio.sleep(0)
    release.set()
    assert await first == "before the change"  # asked before the commit
    assert await second == "after the change"
    assert await cache.get("k", slow) == "after the change"
