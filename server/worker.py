"""Background jobs: the appeal time-limit check (A3), the 晨曦信号 sweep (L3), the delivery of outbound
notifications (X6), the clean-up of unused photo uploads. Runs inside `shanzhi serve`, or alone as `shanzhi worker`.

Every run is one transaction, and every job is idempotent (dedupe keys with unique constraints), so
several processes may run it at once: the result is the same as one run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.plugins import InitPluginProtocol

from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig

from server.db import mark_writer, session_scope
from server.services import appeals, morning_signal, notifications, photos
from server.services.appeals import Clock, utc_now
from server.services.deadlines import TimeLimits
from server.settings import Settings

logger = logging.getLogger("shanzhi.worker")
DEFAULT_INTERVAL = 60.0  # seconds between runs
DELIVERY_INTERVAL = 5.0  # seconds between looks for due outbound messages (sooner when woken)
STOP_GRACE = 10.0  # seconds a run under way may take to finish when the server stops


async def run_jobs_once(config: SQLAlchemyAsyncConfig, settings: Settings, clock: Clock = utc_now) -> int:
    """Run every job once in its own transaction; returns how many overdue limits were newly recorded."""
    now = clock()  # one moment for the whole run, so the jobs agree on what is late
    mark_writer()

    def at_now() -> datetime:
        return now

    async with session_scope(config) as session:
        recorded = await appeals.record_overdue(session, clock=at_now)
        await appeals.record_due_soon(session, limits=TimeLimits.from_settings(settings), clock=at_now)
    async with session_scope(config) as session:
        # 晨曦信号: reminders, alerts and escalation steps due by now (docs/morning-signal.md).
        await morning_signal.sweep(session, now, settings.tz)
    # Photos phones uploaded for a sync that never came (a discarded record) are kept a week.
    await asyncio.to_thread(photos.purge_staged, settings.uploads_dir / "incoming", now=now.timestamp())
    await notifications.deliver_due(config.get_session, now)
    if recorded:
        logger.info("recorded %d overdue time limit(s) (clock %s)", recorded, now.astimezone(settings.tz).isoformat())
    return recorded


async def _pause(seconds: float, *events: asyncio.Event) -> None:
    """Sleep, but return early when one of the events is set."""
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


async def run_forever(
    config: SQLAlchemyAsyncConfig, settings: Settings, clock: Clock = utc_now, *, interval: float = DEFAULT_INTERVAL,
    stop: asyncio.Event | None = None,
) -> None:
    """Run the jobs every `interval` seconds until `stop` is set (or the task is cancelled); a failed run
    is logged and the loop goes on."""
    stop = stop or asyncio.Event()
    while not stop.is_set():
        try:
            await run_jobs_once(config, settings, clock)
        except Exception:
            logger.exception("background jobs failed; next try in %s s", interval)
        await _pause(interval, stop)


async def deliver_forever(
    config: SQLAlchemyAsyncConfig, clock: Clock = utc_now, *, interval: float = DELIVERY_INTERVAL,
    wake: asyncio.Event | None = None, stop: asyncio.Event | None = None,
) -> None:
    """Deliver due outbound messages every `interval` seconds, or at once when `wake` is set, until `stop`."""
    wake = wake or asyncio.Event()
    stop = stop or asyncio.Event()
    while not stop.is_set():
        wake.clear()
        try:
            mark_writer()
            await notifications.deliver_due(config.get_session, clock())
        except Exception:
            logger.exception("outbound delivery failed; next try in %s s", interval)
        await _pause(interval, wake, stop)


@dataclass
class EmbeddedWorker:
    """The job loop as a task of the web app: started on start-up when settings.embedded_worker, cancelled on shutdown."""

    config: SQLAlchemyAsyncConfig
    settings: Settings
    interval: float = DEFAULT_INTERVAL
    tasks: list[asyncio.Task[None]] = field(default_factory=list, init=False)
    _unsubscribe: Any = field(default=None, init=False)
    _stop: asyncio.Event | None = field(default=None, init=False)

    async def start(self) -> None:
        if not self.settings.embedded_worker or self.tasks:
            return
        wake, self._stop = asyncio.Event(), asyncio.Event()
        loop = asyncio.get_running_loop()
        # A commit that stored outbound messages wakes the delivery loop (from whatever thread committed).
        self._unsubscribe = notifications.on_new_outbound(lambda: loop.call_soon_threadsafe(wake.set))
        self.tasks = [
            asyncio.create_task(run_forever(self.config, self.settings, interval=self.interval, stop=self._stop), name="shanzhi-worker"),
            asyncio.create_task(deliver_forever(self.config, wake=wake, stop=self._stop), name="shanzhi-delivery"),
        ]

    async def stop(self) -> None:
        """Let a run under way finish (its transaction commits or rolls back cleanly), then stop; a run
        that takes longer than STOP_GRACE is cancelled. Messages not sent yet stay stored for next time."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._stop is not None:
            self._stop.set()
        if self.tasks:
            _done, late = await asyncio.wait(self.tasks, timeout=STOP_GRACE)
            for task in late:
                task.cancel()
            for task in self.tasks:
                with suppress(asyncio.CancelledError):
                    await task
        self.tasks = []


class Background(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


@dataclass(eq=False)
class BackgroundTasks(InitPluginProtocol):
    """Starts the app's background tasks after start-up and stops them (in reverse order) on shutdown,
    inside the lifespan of the plugins listed before it. Litestar leaves plugin lifespans before it
    runs `on_shutdown` hooks, so a task stopped by a hook would still run after the database plugin
    disposed the engine, and a connection it opened then would never be closed."""

    tasks: Sequence[Background]

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.lifespan.append(self.lifespan)
        return app_config

    @asynccontextmanager
    async def lifespan(self, _app: Litestar) -> AsyncIterator[None]:
        started: list[Background] = []
        try:
            for task in self.tasks:
                await task.start()
                started.append(task)
            yield
        finally:
            for task in reversed(started):
                await task.stop()
