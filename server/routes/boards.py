"""Live public boards (L7) and 数说解放路 (X4): `/boards`, `/boards/overview` and one page per registered
board (`server/services/boards.py`: recycling, canteen, projects). docs/boards.md, "The boards".

- Public, no account; counts and sums only (each area's board computes from its records with SQL).
- Shared: a board's figures are computed once for everyone and refreshed when a commit writes its tables
  (`SharedCache`, topic `board:<name>`), so a lobby TV and a hundred phones cost one aggregate.
- Live: the page listens on `/boards/stream?board=<name>` (Server-Sent Events, channel `board.<name>`, memory
  or Redis) and fetches its fresh HTML when told (a burst of changes within a second costs one fetch); it
  also polls every 60 s; offline it keeps what it shows, with the time.
- `?screen=1`: big-screen mode for lobby TVs: large type, no navigation, and the next board every
  `SCREEN_SECONDS` (overview → recycling → canteen → projects → overview …).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from litestar import Request, get
from litestar.channels import ChannelsPlugin
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import ServerSentEvent, Template
from markupsafe import Markup

from server import live
from server.i18n import N_, current_locale
from server.routes.stats import overview_figures
from server.security import public
from server.services import boards
from server.services.appeals import utc_now
from server.settings import Settings
from server.web import local_formatters, public_cache, render, render_part, shared_part

OVERVIEW = "overview"
OVERVIEW_TITLE = N_("Jiefanglu in figures")
ORDER = (OVERVIEW, "recycling", "canteen", "projects")  # the index and the big-screen rotation
SCREEN_SECONDS = 30
BOARD_KEEP_SECONDS = 60.0  # a board's figures with no change to its tables (the page itself refetches every 60 s)

Config = NamedDependency[Settings]


def _names() -> list[str]:
    """Boards in display order: the overview, then the registered ones (known order first)."""
    registered = [n for n in ORDER if n in boards.BOARDS] + sorted(n for n in boards.BOARDS if n not in ORDER)
    return [OVERVIEW, *registered]


def _title(name: str) -> str:
    return OVERVIEW_TITLE if name == OVERVIEW else boards.BOARDS[name].title


def _next(name: str) -> str:
    names = _names()
    return names[(names.index(name) + 1) % len(names)]


@dataclass(frozen=True)
class Shown:
    """A board as everyone sees it at one moment: its figures, when they were computed, and its part of the
    page rendered once in the language of the key (it holds nothing about the visitor: no token, no name)."""

    figures: dict[str, Any]
    computed_at: datetime
    html: Markup


def _render(request: Request, name: str, figures: dict[str, Any], screen: bool, settings: Settings) -> Markup:
    template = "boards/_overview.html" if name == OVERVIEW else boards.BOARDS[name].template
    return render_part(request, template, board=figures, screen=screen, **local_formatters(settings.tz))


async def _shown(request: Request, name: str, screen: bool, settings: Settings) -> Shown:
    if name == OVERVIEW:
        figures = await overview_figures(request, settings)  # shared with the API; the page part is rendered here

        async def rendered(_session: Any) -> Shown:
            return Shown(figures, datetime.fromisoformat(figures["computed_at"]), _render(request, name, figures, screen, settings))

        key = (figures["computed_at"], current_locale.get(), screen)
        return await public_cache(request, OVERVIEW, max_entries=16).get(key, rendered)
    board = boards.BOARDS[name]

    async def compute(session: Any) -> Shown:
        now = utc_now()
        figures = await board.compute(session, now, settings.tz)
        return Shown(figures, now, _render(request, name, figures, screen, settings))

    # Keyed by language and mode: the rendered part carries translated labels.
    # A change in this process or, with Redis, another (boards.RemoteChanges) refreshes it at once; otherwise
    # only "now" moves (the month, "更新于"), so the figures are kept a minute instead of recounted every few seconds.
    shown: Shown = await shared_part(request, board.topic, screen, compute, at_least=BOARD_KEEP_SECONDS)
    return shown



@get("/boards", opt=public())
async def board_index(request: Request) -> Template:
    """Every board, for residents and for setting up a lobby TV."""
    return render(request, "boards/index.html", names=_names(), title_of=_title, screen_seconds=SCREEN_SECONDS)


@get("/boards/stream", opt=public())
async def board_stream(request: Request, settings: Config, board: FromQuery[str] = OVERVIEW) -> ServerSentEvent:
    """"changed" each time a commit writes what `board` shows: the pages open on it fetch themselves again.
    Nothing else travels (server/live.py)."""
    if board != OVERVIEW and board not in boards.BOARDS:
        raise NotFoundException
    plugin = request.app.plugins.get(ChannelsPlugin)
    return ServerSentEvent(live.events(plugin, boards.channel(board), seconds=settings.live_stream_seconds),
                           headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@get("/boards/{name:str}", opt=public())
async def board_page(request: Request, settings: Config, name: FromPath[str], screen: FromQuery[str] = "") -> Template:
    if name != OVERVIEW and name not in boards.BOARDS:
        raise NotFoundException
    big = screen == "1"
    shown = await _shown(request, name, big, settings)
    return render(request, "boards/page.html", name=name, title=_title(name), board_html=shown.html, computed_at=shown.computed_at,
                  screen=big, next_board=_next(name), screen_seconds=SCREEN_SECONDS, names=_names(), title_of=_title,
                  **local_formatters(settings.tz))


route_handlers = [board_index, board_stream, board_page]
