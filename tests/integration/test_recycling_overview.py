"""The recycling keys of `GET /api/stats/overview` on a known data set: this month's kg and the households
that dropped something off, in the subdistrict's month; last month's and reversed drop-offs do not count."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession

from server.models import PointsEntry, Role
from server.services import recycling
from server.settings import Settings
from sqlalchemy import select


async def test_this_months_kilograms_and_households(client: AsyncTestClient, db: AsyncSession, settings: Settings,
                                                    people: dict[Role, str]) -> None:
    now = datetime.now(UTC)
    start, _end = recycling.month_bounds(now, settings.tz)
    last_start, _ = recycling.month_bounds(now, settings.tz, back=1)
    station = await recycling.create_station(db, name="测试回收站", place_id=None)
    paper = await recycling.add_category(db, station, name="纸类", points_per_kg="8", now=last_start - timedelta(days=1))
    glass = await recycling.add_category(db, station, name="玻璃", points_per_kg="2", now=last_start - timedelta(days=1))
    one, two, three = [await recycling.issue_card(db, station, note="", now=last_start) for _ in range(3)]

    async def drop(card: str, at: datetime, *lines: tuple[object, str]) -> None:
        await recycling.record_dropoff(db, station, card=card, lines=[recycling.LineInput(c.id, kg) for c, kg in lines],  # type: ignore[attr-defined]
                                       at=at, by_user_id=None)

    this_month = start + timedelta(minutes=5)
    await drop(one.card_number, this_month, (paper, "2.5"), (glass, "1"))
    await drop(two.card_number, this_month + timedelta(hours=1), (paper, "0.8"))
    await drop(one.card_number, this_month + timedelta(hours=2), (glass, "0.001"))
    await drop(three.card_number, last_start + timedelta(days=1), (paper, "10"))  # last month
    await drop(three.card_number, this_month + timedelta(hours=3), (paper, "4"))  # wrong: reversed below
    wrong = await db.scalar(select(PointsEntry).where(PointsEntry.household_id == three.id).order_by(PointsEntry.at.desc()))
    assert wrong is not None
    await recycling.reverse(db, wrong.id, reason="录错卡号", at=this_month + timedelta(hours=4), by_user_id=None)
    await db.commit()

    figures = (await client.get("/api/stats/overview")).json()
    assert figures["recycling_kg_this_month"] == 4.3  # 2.5 + 1 + 0.8 + 0.001
    assert figures["recycling_households_this_month"] == 2
