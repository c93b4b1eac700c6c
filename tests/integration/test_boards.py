"""The public boards (docs/boards.md, "The boards"): 数说解放路 from records, the index, big-screen mode,
and a write telling open boards to refresh only once it is committed."""

from __future__ import annotations

from litestar.testing import AsyncTestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.models import Appeal, Evaluation
from server.services import boards, demo
from server.services.appeal_metrics import SATISFIED


def figure(html: str, label: str) -> str:
    """The value shown under a label on a board."""
    return html.split(f"<dt>{label}</dt><dd>", 1)[1].split("</dd>", 1)[0].strip()


async def test_the_overview_board_shows_the_figures_of_the_records(client: AsyncTestClient, db: AsyncSession,
                                                                   demo_data: demo.DemoReport) -> None:
    received = await db.scalar(select(func.count()).select_from(Appeal))
    solved = await db.scalar(select(func.count(Appeal.resolved_at)))
    evaluated = await db.scalar(select(func.count(Appeal.evaluation)))
    satisfied = await db.scalar(select(func.count()).select_from(Appeal).where(Appeal.evaluation.in_(SATISFIED)))
    api = (await client.get("/api/stats/overview")).json()
    assert (api["appeals_received"], api["appeals_solved"]) == (received, solved) and received > solved > 0
    assert api["satisfaction_rate"] == round(satisfied / evaluated, 4)

    page = await client.get("/boards/overview")
    assert page.status_code == 200
    html = page.text
    assert figure(html, "诉求受理") == f"{received:,}"
    assert figure(html, "诉求办结") == f"{solved:,}"
    assert figure(html, "满意率") == f"{satisfied / evaluated * 100:.1f}%"
    assert figure(html, "惠企政策") == f"{api['policies_published']:,}"
    assert figure(html, "晨曦信号守护老人") == f"{api['elders_enrolled']:,}"
    assert "更新于" in html and 'sse-connect="/boards/stream?board=overview"' in html


async def test_the_index_lists_every_board_and_unknown_boards_are_404(client: AsyncTestClient) -> None:
    index = await client.get("/boards")
    assert index.status_code == 200
    for name in ("overview", *boards.BOARDS):
        assert f'href="/boards/{name}"' in index.text
    assert (await client.get("/boards/no-such-board")).status_code == 404


async def test_big_screen_mode_has_no_menus_and_moves_on_to_the_next_board(client: AsyncTestClient) -> None:
    page = await client.get("/boards/overview?screen=1")
    assert page.status_code == 200
    assert 'class="screen-mode"' in page.text and "board-screen" in page.text
    assert 'class="board-tabs"' not in page.text
    names = ["overview", *[n for n in ("recycling", "canteen", "projects") if n in boards.BOARDS]]
    following = names[1] if len(names) > 1 else "overview"
    assert f'data-next-board="/boards/{following}?screen=1"' in page.text
    plain = await client.get("/boards/overview")
    assert 'class="board-tabs"' in plain.text and "screen-mode" not in plain.text


async def test_a_board_write_is_announced_after_the_commit_and_never_for_a_rollback(db: AsyncSession, demo_data: demo.DemoReport) -> None:
    from server import live

    heard: list[set[str]] = []
    live._publishers.append(heard.append)  # noqa: SLF001 - listen the way the app's publisher does
    try:
        appeal = await db.scalar(select(Appeal).where(Appeal.evaluation.is_(None)).limit(1))
        assert appeal is not None
        appeal.evaluation = Evaluation.SATISFIED
        await db.flush()
        assert heard == []  # flushed, not committed: nobody is told yet
        await db.rollback()
        assert heard == []
        appeal = await db.scalar(select(Appeal).where(Appeal.evaluation.is_(None)).limit(1))
        assert appeal is not None
        appeal.evaluation = Evaluation.SATISFIED
        await db.commit()
        assert heard == [{boards.channel("overview")}]  # an appeal's figures are on the overview board only
    finally:
        live._publishers.remove(heard.append)  # noqa: SLF001
