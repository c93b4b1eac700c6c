"""Background jobs: the appeal time-limit check (A3). Runs inside `shanzhi serve`, or alone as `shanzhi worker`.

Every run is one transaction, and every job is idempotent (dedupe keys with unique constraints), so
several processes may run it at once: the result is the same as one run.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime

from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig

from server.db import mark_writer, session_scope
from server.services import appeals, photos
from server.services.appeals import Clock, utc_now
from server.services.deadlines import TimeLimits
from server.settings import Settings

logger = logging.getLogger("shanzhi.worker")
DEFAULT_INTERVAL = 60.0  # seconds between runs


async def run_jobs_once(config: SQLAlchemyAsyncConfig, settings: Settings, clock: Clock = utc_now) -> int:
    """Run every job once in its own transaction; returns how many overdue limits were newly recorded."""
    now = clock()  # one moment for the whole run, so the jobs agree on what is late
    mark_writer()

    def at_now() -> datetime:
        return now

    async with session_scope(config) as session:
        recorded = await appeals.record_overdue(session, clock=at_now)
        await appeals.record_due_soon(session, limits=TimeLimits.from_settings(settings), clock=at_now)
    # Photos phones uploaded for a sync that never came (a discarded record) are kept a week.
    await asyncio.to_thread(photos.purge_staged, settings.uploads_dir / "incoming", now=now.timestamp())
    if recorded:
        logger.info("recorded %d overdue time limit(s) (clock %s)", recorded, now.astimezone(settings.tz).isoformat())
    return recorded


async def run_forever(
    config: SQLAlchemyAsyncConfig, settings: Settings, clock: Clock = utc_now, *, interval: float = DEFAULT_INTERVAL
) -> None:
    """Run the jobs every `interval` seconds until cancelled; a failed run is logged and the loop goes on."""
    while True:
        try:
            await run_jobs_once(config, settings, clock)
        except Exception:
            logger.exception("background jobs failed; next try in %s s", interval)
        await asyncio.sleep(interval)


@dataclass
class EmbeddedWorker:
    """The job loop as a task of the web app: started on start-up when settings.embedded_worker, cancelled on shutdown."""

    config: SQLAlchemyAsyncConfig
    settings: Settings
    interval: float = DEFAULT_INTERVAL
    task: asyncio.Task[None] | None = field(default=None, init=False)

    async def start(self) -> None:
        if self.settings.embedded_worker and self.task is None:
            self.task = asyncio.create_task(run_forever(self.config, self.settings, interval=self.interval), name="shanzhi-worker")

    async def stop(self) -> None:
        if self.task is None:
            return
        self.task.cancel()
        with suppress(asyncio.CancelledError):
            await self.task
        self.task = None
