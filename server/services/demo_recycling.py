"""Demo data of the recycling area (issue 15, L4). Loaded by server/services/demo.py; idempotent (nothing is
written when the demo station exists already) and fast (bulk inserts).

文华园绿色回收驿站 at 文华园小区, run by 吴站长 (the demo user `station`): six categories with their points
per kg (纸类 went up from 6 to 8 points six weeks ago), a catalogue of everyday goods with stock, 120 household
cards, and three months of drop-offs (open 08:00–18:00, a dozen households a day, one to three lines each),
redemptions whenever a household has saved enough and feels like it, and two reversed entries with their
reasons. Deterministic: a seeded random and times relative to `end`.
"""

from __future__ import annotations

import random
import secrets
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from server.models import (
    Place,
    PointsEntry,
    PointsKind,
    RecyclingCategory,
    RecyclingDropoff,
    RecyclingDropoffLine,
    RecyclingGood,
    RecyclingHousehold,
    RecyclingRate,
    RecyclingRedemption,
    RecyclingStation,
    User,
)
from server.services.recycling import line_points
from server.settings import Settings

SEED = 15
STATION = "文华园绿色回收驿站"
COMPOUND = "文华园小区"
OPERATOR = "station"
HOURS = "每天 08:00–18:00"
DAYS = 92
HOUSEHOLDS = 120
# name, points per kg, (min kg, max kg) of one line, how often it comes
CATEGORIES = [("纸类", 8, (0.5, 8.0), 10), ("塑料", 10, (0.2, 3.0), 8), ("金属", 12, (0.1, 2.5), 4), ("织物", 5, (0.5, 6.0), 3),
              ("玻璃", 2, (0.5, 5.0), 3), ("家电", 15, (3.0, 25.0), 1)]
PAPER_BEFORE = 6  # 纸类's rate before the raise RAISE_DAYS ago
RAISE_DAYS = 42
GOODS = [("垃圾袋（一卷）", 40, 200), ("香皂", 60, 120), ("抽纸（三包）", 100, 90), ("洗洁精", 150, 60), ("牙膏", 180, 50),
         ("洗衣液", 300, 40), ("食用油（1.8升）", 500, 25), ("大米（5公斤）", 800, 12)]
REVERSALS = [(-20, "称重时把塑料录成了金属，已重新录入"), (-9, "录错了卡号，已按正确卡号重新录入")]


def _at(day: datetime, tz: Any, minutes: int) -> datetime:
    return datetime.combine(day.date(), time(8), tzinfo=tz).astimezone(UTC) + timedelta(minutes=minutes)


async def load_demo_recycling(session: AsyncSession, settings: Settings, *, end: datetime) -> None:
    """Create the demo records if there are none yet; running it twice changes nothing."""
    if await session.scalar(select(RecyclingStation.id).where(RecyclingStation.name == STATION)) is not None:
        return
    rng = random.Random(SEED)
    tz = settings.tz
    place_id = await session.scalar(select(Place.id).where(Place.name == COMPOUND))
    operator_id = await session.scalar(select(User.id).where(User.username == OPERATOR))
    start = end - timedelta(days=DAYS + 8)
    station = RecyclingStation(id=uuid7(), name=STATION, place_id=place_id, opening_hours=HOURS)
    session.add(station)
    await session.flush()

    categories = []
    rates = []
    for position, (name, rate, _span, _weight) in enumerate(CATEGORIES, start=1):
        category_id = uuid7()
        categories.append({"id": category_id, "station_id": station.id, "name": name, "position": position})
        first = PAPER_BEFORE if name == "纸类" else rate
        rates.append({"id": uuid7(), "category_id": category_id, "points_per_kg": first, "effective_from": start})
        if name == "纸类":
            rates.append({"id": uuid7(), "category_id": category_id, "points_per_kg": rate,
                          "effective_from": end - timedelta(days=RAISE_DAYS)})
    raise_at = end - timedelta(days=RAISE_DAYS)
    goods = [{"id": uuid7(), "station_id": station.id, "name": name, "points": points, "stock": stock} for name, points, stock in GOODS]
    stock = {g["id"]: g["stock"] for g in goods}
    taken: set[str] = set(await session.scalars(select(RecyclingHousehold.card_number)))
    households = []
    for n in range(HOUSEHOLDS):
        while True:
            number = f"{rng.randrange(10_000_000, 100_000_000)}"
            if number not in taken:
                taken.add(number)
                break
        households.append({"id": uuid7(), "station_id": station.id, "card_number": number, "token": secrets.token_urlsafe(18),
                           "note": "", "balance": 0, "issued_at": start + timedelta(days=rng.randint(0, 20), minutes=n)})
    # Some households come often, most now and then.
    weights = [rng.choice([1, 1, 1, 2, 3, 6]) for _ in households]
    balance = {h["id"]: 0 for h in households}

    dropoffs: list[dict[str, Any]] = []
    lines: list[dict[str, Any]] = []
    redemptions: list[dict[str, Any]] = []
    entries: list[dict[str, Any]] = []
    first_day = end - timedelta(days=DAYS)
    for offset in range(DAYS + 1):
        day = (first_day + timedelta(days=offset)).astimezone(tz)
        minutes = sorted(rng.sample(range(0, 600), rng.randint(8, 18)))
        for minute in minutes:
            at = _at(day, tz, minute) + timedelta(seconds=rng.randint(0, 59))
            if at >= end:
                break
            household = rng.choices(households, weights)[0]
            if household["issued_at"] > at:
                continue
            dropoff_id = uuid7()
            total_grams = total_points = 0
            picked = rng.sample(range(len(CATEGORIES)), rng.choice([1, 1, 2, 2, 3]))
            for index in sorted(picked):
                name, rate, (low, high), weight = CATEGORIES[index]
                if name == "家电" and rng.random() > 0.15:
                    continue
                if name == "纸类" and at < raise_at:
                    rate = PAPER_BEFORE
                grams = int(round(rng.uniform(low, high), 1) * 1000)
                points = line_points(grams, rate)
                lines.append({"id": uuid7(), "dropoff_id": dropoff_id, "category_id": categories[index]["id"], "grams": grams,
                              "points_per_kg": rate, "points": points})
                total_grams += grams
                total_points += points
            if not total_grams:
                continue
            dropoffs.append({"id": dropoff_id, "station_id": station.id, "household_id": household["id"], "recorded_at": at,
                             "recorded_by_id": operator_id, "grams": total_grams, "points": total_points})
            entries.append({"id": uuid7(), "station_id": station.id, "household_id": household["id"], "kind": PointsKind.DROPOFF,
                            "points": total_points, "at": at, "dropoff_id": dropoff_id, "by_user_id": operator_id})
            balance[household["id"]] += total_points
            # Now and then the household takes something home with its points.
            affordable = [g for g in goods if g["points"] <= balance[household["id"]] and stock[g["id"]] > 0]
            redeemed_at = at + timedelta(minutes=2)
            if affordable and redeemed_at < end and rng.random() < 0.3:
                good = rng.choice(affordable)
                redemption_id = uuid7()
                redemptions.append({"id": redemption_id, "station_id": station.id, "household_id": household["id"], "good_id": good["id"],
                                    "quantity": 1, "points": good["points"], "at": redeemed_at, "by_user_id": operator_id})
                entries.append({"id": uuid7(), "station_id": station.id, "household_id": household["id"],
                                "kind": PointsKind.REDEMPTION, "points": -good["points"], "at": redeemed_at, "redemption_id": redemption_id,
                                "by_user_id": operator_id})
                balance[household["id"]] -= good["points"]
                stock[good["id"]] -= 1
    # Two wrong drop-offs, reversed the same day with their reasons (when the balance allows it).
    for (days_back, reason), _n in zip(REVERSALS, range(len(REVERSALS)), strict=True):
        target = next((e for e in entries if e["kind"] == PointsKind.DROPOFF and e["at"] >= end + timedelta(days=days_back)
                       and balance[e["household_id"]] >= e["points"]), None)
        if target is None:
            continue
        entries.append({"id": uuid7(), "station_id": station.id, "household_id": target["household_id"], "kind": PointsKind.REVERSAL,
                        "points": -target["points"], "at": target["at"] + timedelta(minutes=5), "reverses_id": target["id"],
                        "reason": reason, "by_user_id": operator_id})
        balance[target["household_id"]] -= target["points"]
    for household in households:
        household["balance"] = balance[household["id"]]
    for good in goods:
        good["stock"] = stock[good["id"]]

    for model, rows in ((RecyclingCategory, categories), (RecyclingRate, rates), (RecyclingGood, goods),
                        (RecyclingHousehold, households), (RecyclingDropoff, dropoffs), (RecyclingDropoffLine, lines),
                        (RecyclingRedemption, redemptions)):
        if rows:
            await session.execute(insert(model), rows)
    # Entries that reverse others go in after them (the self reference).
    plain = [e for e in entries if "reverses_id" not in e]
    reversing = [e for e in entries if "reverses_id" in e]
    for rows in (plain, reversing):
        if rows:
            await session.execute(insert(PointsEntry), [{"dropoff_id": None, "redemption_id": None, "reverses_id": None, "reason": None,
                                                        **row} for row in rows])
    await session.flush()
