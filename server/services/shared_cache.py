"""Figures everyone sees (the public summary, the statistics API, the dashboards, the coming boards),
computed once and shared by every request for a few seconds (issue 11).

- A value is keyed by (topic, key); a topic names the tables it is computed from (`watch`).
- A commit that wrote a watched table moves its topic's generation: the next request recomputes (and
  waits for it), so a change made through this process shows at once.
- A value older than `ttl` seconds, but not more than `grace` seconds past that (default: `ttl` again),
  is still answered at once while one refresh runs behind it (stale-while-revalidate): another
  process's change (PostgreSQL, `--workers 2`) and "now"-dependent figures are at most `ttl + grace`
  seconds old, and nobody waits for the clock while visitors keep coming. An older value is computed
  again before it is answered (the first visitor after a quiet hour waits for it); `grace=0` never
  answers a value past its time (a household's card page).
- Concurrent requests for a missing value wait for one computation instead of running N ("single
  flight"), so a burst of visitors after a change costs one aggregate, not one per visitor. A request
  joins only a computation started after the last change it knows of: one started before a commit
  would answer what the commit changed.
- At most `max_entries` values per cache (least recently used go first): a client that varies the
  query string cannot grow the process.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.orm import Session

T = TypeVar("T")
logger = logging.getLogger("shanzhi.shared_cache")
DIRTY_KEY = "shanzhi.cache_topics"  # topics written by the current transaction

_generations: dict[str, int] = {}
_watched: dict[type, set[str]] = {}


def watch(model: type, *topics: str) -> None:
    """A commit that inserts, updates or deletes rows of `model` invalidates these topics."""
    _watched.setdefault(model, set()).update(topics)


def generation(topic: str) -> int:
    return _generations.get(topic, 0)


def invalidate(*topics: str) -> None:
    for topic in topics:
        _generations[topic] = _generations.get(topic, 0) + 1


def _topics_of(objects: Any) -> set[str]:
    found: set[str] = set()
    for obj in objects:
        for model, topics in _watched.items():
            if isinstance(obj, model):
                found |= topics
    return found


@event.listens_for(Session, "after_flush")
def _note_writes(session: Session, _context: Any) -> None:
    topics = _topics_of([*session.new, *session.dirty, *session.deleted])
    if topics:
        session.info.setdefault(DIRTY_KEY, set()).update(topics)


@event.listens_for(Session, "do_orm_execute")
def _note_bulk_writes(state: Any) -> None:
    # update(Appeal)... / delete(...) executed through the session: no objects pass through the flush.
    if state.is_update or state.is_delete or state.is_insert:
        mapper = state.bind_mapper
        if mapper is not None:
            topics = {t for model, ts in _watched.items() if issubclass(mapper.class_, model) for t in ts}
            if topics:
                state.session.info.setdefault(DIRTY_KEY, set()).update(topics)


@event.listens_for(Session, "after_commit")
def _invalidate_on_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return
    invalidate(*session.info.pop(DIRTY_KEY, ()))


@event.listens_for(Session, "after_rollback")
def _forget_on_rollback(session: Session) -> None:
    if not session.in_nested_transaction():
        session.info.pop(DIRTY_KEY, None)


@dataclass
class _Entry:
    value: Any
    generation: int
    expires: float


class SharedCache:
    """See the module docstring. `compute(session)` gets a session of its own (from `session_factory`),
    so a refresh can run after the request that started it has ended."""

    def __init__(
        self, topic: str, session_factory: Callable[[], Any], *, ttl: float = 5.0, max_entries: int = 256,
        grace: float | None = None,
    ) -> None:
        self.topic = topic
        self.session_factory = session_factory
        self.ttl = ttl
        self.grace = ttl if grace is None else grace
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._pending: dict[Hashable, tuple[asyncio.Future[Any], int]] = {}  # key -> (computation, its generation)
        self._refreshing: set[asyncio.Task[Any]] = set()
        self.computed = 0  # how many times a value was computed (the tests read it)

    def clear(self) -> None:
        self._entries.clear()

    async def get(self, key: Hashable, compute: Callable[[Any], Awaitable[T]]) -> T:
        if self.ttl <= 0:  # sharing turned off: every request computes its own
            async with self.session_factory() as session:
                return await compute(session)
        entry = self._entries.get(key)
        current = generation(self.topic)
        now = time.monotonic()
        pending = self._pending.get(key)
        in_flight = pending[0] if pending is not None and pending[1] == current else None
        if entry is not None and entry.generation == current and now < entry.expires + self.grace:
            self._entries.move_to_end(key)
            if entry.expires <= now and in_flight is None:
                # Only old, not changed here: answer at once and refresh behind (stale-while-revalidate),
                # so no visitor waits for the aggregate because the clock moved.
                task = asyncio.create_task(self._compute(key, compute, current))
                self._refreshing.add(task)
                task.add_done_callback(self._refreshed)
            return entry.value  # type: ignore[no-any-return]
        if in_flight is not None:  # started after the last change: its answer is current
            return await asyncio.shield(in_flight)  # type: ignore[no-any-return]
        return await self._compute(key, compute, current)

    def _refreshed(self, task: asyncio.Task[Any]) -> None:
        self._refreshing.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.warning("refreshing shared figures failed", exc_info=task.exception())

    async def _compute(self, key: Hashable, compute: Callable[[Any], Awaitable[T]], current: int) -> T:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.add_done_callback(lambda f: f.cancelled() or f.exception())  # never "exception never retrieved"
        self._pending[key] = (future, current)
        try:
            async with self.session_factory() as session:
                value = await compute(session)
        except BaseException as error:
            if isinstance(error, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(error)
            raise
        finally:
            if self._pending.get(key, (None, 0))[0] is future:  # not replaced by a computation after a change
                del self._pending[key]
        future.set_result(value)
        self.computed += 1
        # Stored under the generation read before computing: a commit during the computation makes it stale.
        self._entries[key] = _Entry(value, current, time.monotonic() + self.ttl)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return value
