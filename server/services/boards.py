"""The live public boards (L7): a registry each livelihood area adds its board to. docs/boards.md.

An area declares its board next to its service:

    @boards.board("recycling", N_("Recycling station"), RecyclingEntry, Redemption)
    async def recycling_board(session, now, tz) -> dict[str, Any]:
        return {...}  # the context of templates/boards/_recycling.html

and writes `templates/boards/_recycling.html`. `server/routes/boards.py` serves it at `/boards/recycling`
(public, cached for everyone, big-screen mode with `?screen=1`), and the page refreshes itself when told.

Live updates follow from the declaration: a commit that writes any of the board's models announces that
board's channel (`board.<name>`) after the commit (server/live.py), never before and never for a rolled-back
write; the pages open on that board then fetch their fresh HTML. Nothing travels in the announcement itself.
Each process keeps its own cache of a board's figures: `RemoteChanges` drops it when another process
announces a change (Redis), so the page that refetches gets the new figures, not the cached ones.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from litestar.channels import ChannelsPlugin

from server import live
from server.services.shared_cache import invalidate, watch

CHANNEL_PREFIX = "board."
Compute = Callable[[AsyncSession, datetime, ZoneInfo], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Board:
    name: str  # /boards/<name>, template boards/_<name>.html
    title: str  # an N_() msgid
    compute: Compute
    models: tuple[type, ...]

    @property
    def topic(self) -> str:
        return f"board:{self.name}"

    @property
    def template(self) -> str:
        return f"boards/_{self.name}.html"


BOARDS: dict[str, Board] = {}
_announcing: dict[type, set[str]] = {}  # model -> the boards a write of it changes
TOPICS: dict[str, str] = {}  # board -> the shared-cache topic of its figures


def channel(name: str) -> str:
    return f"{CHANNEL_PREFIX}{name}"


def board(name: str, title: str, *models: type) -> Callable[[Compute], Compute]:
    """Register a board computed by the decorated function from `models` (see the module docstring)."""

    def register(compute: Compute) -> Compute:
        BOARDS[name] = Board(name, title, compute, models)
        for model in models:
            watch(model, f"board:{name}")
        announce_writes_of(*models, board=name, topic=f"board:{name}")
        return compute

    return register


def announce_writes_of(*models: type, board: str, topic: str) -> None:
    """A commit writing rows of `models` tells the pages open on `board` to refresh (its figures are cached
    under `topic`)."""
    TOPICS[board] = topic
    for model in models:
        _announcing.setdefault(model, set()).add(board)


@event.listens_for(Session, "after_flush")
def _note_board_writes(session: Session, _context: Any) -> None:
    if not _announcing:
        return
    touched: set[str] = set()
    for obj in (*session.new, *session.dirty, *session.deleted):
        for model, names in _announcing.items():
            if isinstance(obj, model):
                touched |= names
    if touched:
        live.announce(session, *(channel(name) for name in touched))


class RemoteChanges:
    """Background task of the web app: a board change announced by another process (through Redis) drops
    this process's cached figures of that board, so the page that refetches gets the new figures. (A
    change committed here has dropped them already; hearing it again costs one computation.)"""

    def __init__(self, plugin: ChannelsPlugin) -> None:
        self.plugin = plugin
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._listen(name, topic)) for name, topic in TOPICS.items()]

    async def _listen(self, name: str, topic: str) -> None:
        async with self.plugin.start_subscription([channel(name)]) as subscriber:
            async for _message in subscriber.iter_events():
                invalidate(topic)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
