"""The live public boards (L7): a registry each livelihood area adds its board to. docs/boards.md.

An area declares its board next to its service:

    @boards.board("recycling", N_("Recycling station"), RecyclingEntry, Redemption)
    async def recycling_board(session, now, tz) -> dict[str, Any]:
        return {...}  # the context of templates/boards/_recycling.html

and writes `templates/boards/_recycling.html`. `server/routes/boards.py` serves it at `/boards/recycling`
(public, cached for everyone, big-screen mode with `?screen=1`), and the page refreshes itself when told.

Live updates follow from the declaration: a commit that writes any of the board's models announces the
"boards" channel after the commit (server/live.py), never before and never for a rolled-back write; every
open board then fetches its fresh HTML. Nothing travels in the announcement itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from server import live
from server.services.shared_cache import watch

CHANNEL = "boards"
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
_announcing: set[type] = set()


def board(name: str, title: str, *models: type) -> Callable[[Compute], Compute]:
    """Register a board computed by the decorated function from `models` (see the module docstring)."""

    def register(compute: Compute) -> Compute:
        BOARDS[name] = Board(name, title, compute, models)
        for model in models:
            watch(model, f"board:{name}")
        announce_writes_of(*models)
        return compute

    return register


def announce_writes_of(*models: type) -> None:
    """A commit writing rows of `models` tells the open boards to refresh."""
    _announcing.update(models)


@event.listens_for(Session, "after_flush")
def _note_board_writes(session: Session, _context: Any) -> None:
    if not _announcing:
        return
    kinds = tuple(_announcing)
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, kinds):
            live.announce(session, CHANNEL)
            return
