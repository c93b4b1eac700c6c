"""The points ledger's invariants (L4, docs/boards.md "recycling"), as properties on SQLite and PostgreSQL:

any sequence of drop-offs, redemptions and reversals, some of them racing in pairs on two real connections
(the same household, the last item of a good, the same entry reversed twice), leaves every household's
balance equal to the sum of its entries and never negative, every stock never negative and equal to what
came in minus what was handed out and not reversed, and every entry reversed at most once.

Each example starts from a fresh copy of a small world (tests/databases.py): a station, two categories, three
cards and two goods with little stock, so that refusals (beyond the balance, beyond the stock, a reversal of
spent points) happen often.
"""

from __future__ import annotations

import asyncio
import shutil
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from server.db import make_alchemy_config, mark_writer, session_scope
from server.models import PointsEntry, PointsKind, RecyclingGood, RecyclingHousehold, RecyclingRedemption, RecyclingStation
from server.services import recycling
from server.settings import Settings
from tests.conftest import forget_alchemy_configs
from tests.databases import Databases, settings_for

SNAPSHOT = "points_ledger"
STOCK = (2, 1)  # the goods' stock: the last item is raced for often
PRICES = (30, 50)
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@dataclass(frozen=True)
class World:
    station: UUID
    categories: tuple[UUID, UUID]  # 10 and 3 points per kg
    cards: tuple[str, ...]
    goods: tuple[UUID, ...]


async def _build(settings: Settings) -> World:
    config = make_alchemy_config(settings)
    long_ago = datetime.now(UTC) - timedelta(days=30)
    try:
        async with session_scope(config) as session:
            station = await recycling.create_station(session, name="属性测试驿站", place_id=None)
            plastic = await recycling.add_category(session, station, name="塑料", points_per_kg="10", now=long_ago)
            glass = await recycling.add_category(session, station, name="玻璃", points_per_kg="3", now=long_ago)
            cards = [await recycling.issue_card(session, station, note="", now=long_ago) for _ in range(3)]
            goods = [await recycling.add_good(session, station, name=f"物品{i}", points=str(p), stock=str(s))
                     for i, (p, s) in enumerate(zip(PRICES, STOCK, strict=True))]
            return World(station.id, (plastic.id, glass.id), tuple(c.card_number for c in cards), tuple(g.id for g in goods))
    finally:
        await config.get_engine().dispose()


@pytest.fixture(scope="module")
def world(databases: Databases) -> World:
    return databases.snapshot(SNAPSHOT, _build)


_runs = count()

# One step: ("dropoff", card, category, grams) / ("redeem", card, good, quantity) / ("reverse", entry index).
DROPOFF = st.tuples(st.just("dropoff"), st.integers(0, 2), st.integers(0, 1), st.integers(1, 12_000))
REDEEM = st.tuples(st.just("redeem"), st.integers(0, 2), st.integers(0, 1), st.integers(1, 2))
REVERSE = st.tuples(st.just("reverse"), st.integers(0, 40))
STEP = st.one_of(DROPOFF, DROPOFF, REDEEM, REDEEM, REVERSE)
# A round is one step alone, or two racing on two connections.
ROUNDS = st.lists(st.one_of(st.tuples(STEP), st.tuples(STEP, STEP)), min_size=1, max_size=14)


async def _apply(config: Any, w: World, step: tuple[Any, ...], at: datetime, entries: list[UUID], ready: asyncio.Barrier | None) -> str:
    """Run one step in its own transaction, as one request would; 'ok' or 'refused'."""
    mark_writer()  # a POST request: on SQLite, the write queue
    async with config.get_session() as session:
        if ready is not None:
            await ready.wait()
        station = await session.get(RecyclingStation, w.station)
        try:
            if step[0] == "dropoff":
                grams = step[3]
                await recycling.record_dropoff(session, station, card=w.cards[step[1]],
                                               lines=[recycling.LineInput(w.categories[step[2]], f"{grams / 1000:.3f}")], at=at, by_user_id=None)
            elif step[0] == "redeem":
                await recycling.redeem(session, station, card=w.cards[step[1]], good_id=w.goods[step[2]], quantity=str(step[3]), at=at,
                                       by_user_id=None)
            else:
                if not entries:
                    return "refused"
                await recycling.reverse(session, entries[step[1] % len(entries)], reason="属性测试冲正", at=at, by_user_id=None)
        except recycling.InvalidRecycling:
            await session.rollback()
            return "refused"
        await session.commit()
        return "ok"


async def _entry_ids(config: Any) -> list[UUID]:
    async with config.get_session() as session:
        return list(await session.scalars(select(PointsEntry.id).order_by(PointsEntry.at, PointsEntry.id)))


async def _check(config: Any, w: World) -> Counter[str]:
    async with config.get_session() as session:
        households = list(await session.scalars(select(RecyclingHousehold)))
        sums = dict((await session.execute(select(PointsEntry.household_id, func.sum(PointsEntry.points))
                                            .group_by(PointsEntry.household_id))).tuples().all())
        for household in households:
            assert household.balance == int(sums.get(household.id) or 0)
            assert household.balance >= 0
        entries = list(await session.scalars(select(PointsEntry)))
        by_id = {e.id: e for e in entries}
        reversed_ids = [e.reverses_id for e in entries if e.reverses_id]
        assert len(reversed_ids) == len(set(reversed_ids))  # reversed at most once
        for e in entries:
            if e.kind == PointsKind.REVERSAL:
                original = by_id[e.reverses_id]
                assert original.kind != PointsKind.REVERSAL and e.points == -original.points
        undone = {by_id[r].redemption_id for r in reversed_ids if by_id[r].redemption_id}
        handed = Counter()
        for redemption in await session.scalars(select(RecyclingRedemption)):
            if redemption.id not in undone:
                handed[redemption.good_id] += redemption.quantity
        for good, initial in zip(w.goods, STOCK, strict=True):
            stock = await session.scalar(select(RecyclingGood.stock).where(RecyclingGood.id == good))
            assert stock is not None and stock >= 0
            assert stock == initial - handed[good]
        return Counter(e.kind.value for e in entries)


@settings(max_examples=40, **SETTINGS)
@given(rounds=ROUNDS)
def test_balances_are_their_entries_and_never_negative_and_stock_never_runs_below_zero(
    rounds: list[tuple[Any, ...]], world: World, databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> None:
    directory = tmp_path_factory.mktemp("ledger")
    run_settings = settings_for(databases.fresh(SNAPSHOT, directory), directory / f"var-{next(_runs)}")

    async def run() -> None:
        config = make_alchemy_config(run_settings)
        try:
            at = datetime.now(UTC) - timedelta(hours=1)
            for steps in rounds:
                entries = await _entry_ids(config)
                at += timedelta(seconds=5)
                if len(steps) == 1:
                    await _apply(config, world, steps[0], at, entries, None)
                else:
                    ready = asyncio.Barrier(2)
                    await asyncio.gather(*(_apply(config, world, step, at, entries, ready) for step in steps))
                await _check(config, world)
        finally:
            await config.get_engine().dispose()

    asyncio.run(run())
    shutil.rmtree(directory, ignore_errors=True)
    forget_alchemy_configs()


def test_two_redemptions_racing_for_the_last_item_one_wins(world: World, databases: Databases, tmp_path: Path) -> None:
    """Two households with enough points ask for the one item left at the same moment: one gets it, the other
    a clear refusal, and nothing of the refused one is written."""
    run_settings = settings_for(databases.fresh(SNAPSHOT, tmp_path), tmp_path / "var")
    last = world.goods[1]  # one in stock

    async def run() -> tuple[list[str], int, list[int]]:
        config = make_alchemy_config(run_settings)
        try:
            at = datetime.now(UTC) - timedelta(minutes=10)
            for card in (0, 1):
                await _apply(config, world, ("dropoff", card, 0, 10_000), at, [], None)  # 100 points each
            ready = asyncio.Barrier(2)
            outcomes = await asyncio.gather(*(_apply(config, world, ("redeem", card, 1, 1), at + timedelta(minutes=1), [], ready)
                                              for card in (0, 1)))
            await _check(config, world)
            async with config.get_session() as session:
                stock = await session.scalar(select(RecyclingGood.stock).where(RecyclingGood.id == last)) or 0
                balances = sorted((await session.scalars(select(RecyclingHousehold.balance).where(
                    RecyclingHousehold.card_number.in_(world.cards[:2])))).all())
            return sorted(outcomes), stock, balances
        finally:
            await config.get_engine().dispose()

    outcomes, stock, balances = asyncio.run(run())
    forget_alchemy_configs()
    assert outcomes == ["ok", "refused"]
    assert stock == 0
    assert balances == [50, 100]
