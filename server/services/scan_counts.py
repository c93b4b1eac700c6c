"""Opens of the QR policy guides (P2), counted in memory and written every few seconds in one statement.

A write per open would take SQLite's one write turn on every scan of a public page (a poster in a busy
lobby); the count is a statistic, not a record someone made, so it is kept in the process and added to
`policy_guide.scan_count` every `interval` seconds and when the server stops. Each process writes its own
counts (`scan_count = scan_count + n`), so several processes add up. What a crash loses is at most the
last few seconds of counts (docs/policies.md, "Scan counts").
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from contextlib import suppress
from dataclasses import dataclass, field
from uuid import UUID

from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
from sqlalchemy import bindparam, update

from server.db import mark_writer, session_scope
from server.models import PolicyGuide

logger = logging.getLogger("shanzhi.scan_counts")
FLUSH_INTERVAL = 5.0  # seconds

_ADD = (
    update(PolicyGuide.__table__)  # a Core statement: no ORM object to keep in step (and no cache topic moved)
    .where(PolicyGuide.__table__.c.id == bindparam("guide"))
    .values(scan_count=PolicyGuide.__table__.c.scan_count + bindparam("n"))
)


@dataclass(eq=False)
class ScanCounts:
    config: SQLAlchemyAsyncConfig
    interval: float = FLUSH_INTERVAL
    pending: Counter[UUID] = field(default_factory=Counter)
    _task: asyncio.Task[None] | None = field(default=None, init=False)
    _stop: asyncio.Event | None = field(default=None, init=False)

    def add(self, guide_id: UUID) -> None:
        self.pending[guide_id] += 1

    def unsaved(self, guide_id: UUID) -> int:
        """Opens of this guide counted here and not written yet (the admin list adds them)."""
        return self.pending.get(guide_id, 0)

    async def flush(self) -> int:
        """Write what was counted; on failure the counts are kept for the next try."""
        taken, self.pending = self.pending, Counter()
        if not taken:
            return 0
        try:
            mark_writer()
            async with session_scope(self.config) as session:
                await session.execute(_ADD, [{"guide": guide, "n": n} for guide, n in taken.items()])
        except Exception:
            self.pending.update(taken)
            raise
        return sum(taken.values())

    async def _run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)
            try:
                await self.flush()
            except Exception:
                logger.warning("guide scan counts not written yet; next try in %s s", self.interval, exc_info=True)

    async def start(self) -> None:
        if self._task is None:
            self._stop = asyncio.Event()
            self._task = asyncio.create_task(self._run(self._stop), name="shanzhi-scan-counts")

    async def stop(self) -> None:
        """Write the last counts (the loop's final flush) before the database closes."""
        if self._task is not None and self._stop is not None:
            self._stop.set()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with suppress(Exception):
            await self.flush()
