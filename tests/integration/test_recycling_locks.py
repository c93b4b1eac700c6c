"""The recycling area's lock order (server/services/recycling.py, "Lock order"): every write locks the station
row first, then the household, then the good, online and through the sync push, which applies many drop-offs
in one transaction. So two operator phones pushing the same cards in crossed order queue up at the station
instead of deadlocking on the households (PostgreSQL; SQLite lets one writer in at a time)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec
import pytest
from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
from sqlalchemy import event, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session

from server.db import mark_writer, session_scope
from server.models import PointsEntry, RecyclingDropoff, RecyclingHousehold, RecyclingStation, Role, User
from server.services import accounts, field_sync, recycling
from server.services.demo import DemoReport
from server.services.demo_recycling import OPERATOR, STATION
from server.settings import Settings
from sync import engine
from sync import protocol as p
from sync.hlc import Clock
from tests.conftest import PG_URL, TEST_PASSWORD
from tests.integration.sync_world import Device

RANK = {"recycling_station": 0, "recycling_household": 1, "recycling_good": 2}


_taken: list[str] | None = None  # while a test records: the tables locked, in order


@event.listens_for(Session, "do_orm_execute")
def _record_locks(state: ORMExecuteState) -> None:
    # Registered once for the whole run and never removed: removing a Session-wide listener while
    # sessions that copied it are still alive leaves SQLAlchemy's event registry inconsistent, and a later
    # garbage collection raises KeyError in an unrelated test (sqlalchemy/sqlalchemy#12216's family).
    statement = state.statement
    if _taken is not None and state.is_select and getattr(statement, "_for_update_arg", None) is not None:
        entity = statement.column_descriptions[0].get("entity")
        table = getattr(entity, "__tablename__", "")
        if table.startswith("recycling_"):
            _taken.append(table)


@pytest.fixture
def locks() -> Iterator[list[str]]:
    """The tables of the recycling rows each SELECT … FOR UPDATE locks, in the order they are run."""
    global _taken  # noqa: PLW0603 - the listener above reads it
    _taken = []
    try:
        yield _taken
    finally:
        _taken = None


def first_locks(taken: list[str]) -> list[str]:
    """The tables in the order they were first locked (a row locked again is already held)."""
    return list(dict.fromkeys(taken))


async def _station(session: AsyncSession) -> tuple[RecyclingStation, UUID, UUID]:
    """The demo station, its 纸类 category and its 香皂."""
    station = await session.scalar(select(RecyclingStation).where(RecyclingStation.name == STATION))
    assert station is not None
    paper = next(c.id for c in await recycling.categories_of(session, station.id) if c.name == "纸类")
    soap = next(g.id for g in await recycling.goods_of(session, station.id) if g.name == "香皂")
    return station, paper, soap


def _dropoff(device: Device, station_id: UUID, card: str, paper: UUID) -> dict[str, Any]:
    fields = {"station_id": str(station_id), "card": card, "lines": [{"category_id": str(paper), "kg": "1"}]}
    return device.mutation("recycling", "dropoff", fields)


async def test_every_write_locks_the_station_before_the_household_and_the_good(
    config: SQLAlchemyAsyncConfig, settings: Settings, demo_data: DemoReport, locks: list[str]
) -> None:
    now = datetime.now(UTC)
    async with session_scope(config) as session:
        station, paper, soap = await _station(session)
        cards = [await recycling.issue_card(session, station, note="", now=now) for _ in range(2)]
        numbers = [c.card_number for c in cards]
        operator = await session.scalar(select(User).where(User.username == OPERATOR))
        assert operator is not None
    expected = ["recycling_station", "recycling_household"]

    locks.clear()
    async with session_scope(config) as session:
        station, paper, soap = await _station(session)
        await recycling.record_dropoff(session, station, card=numbers[0], lines=[recycling.LineInput(paper, "20")], at=now, by_user_id=None)
    assert first_locks(locks) == expected

    locks.clear()  # a push of two drop-offs in one transaction: the station before either household
    device = Device()
    batch = p.decode_push(msgspec.json.encode(device.batch(*(_dropoff(device, station.id, n, paper) for n in reversed(numbers)))))
    async with session_scope(config) as session:
        outcomes = await engine.push(session, batch, field_sync.context_for(operator, settings, Clock("server")))
    assert [o.status for o in outcomes] == [p.APPLIED, p.APPLIED]
    assert first_locks(locks) == expected
    assert locks.count("recycling_household") == 2

    locks.clear()
    async with session_scope(config) as session:
        station, paper, soap = await _station(session)
        redemption = await recycling.redeem(session, station, card=numbers[0], good_id=soap, quantity="1", at=now, by_user_id=None)
        redemption_id = redemption.id
    assert first_locks(locks) == [*expected, "recycling_good"]

    locks.clear()
    async with session_scope(config) as session:
        entry = await session.scalar(select(PointsEntry.id).where(PointsEntry.redemption_id == redemption_id))
        assert entry is not None
        await recycling.reverse(session, entry, reason="住户没拿走", at=now, by_user_id=None)
    assert first_locks(locks) == [*expected, "recycling_good"]

    locks.clear()
    async with session_scope(config) as session:
        household = await session.scalar(select(RecyclingHousehold).where(RecyclingHousehold.card_number == numbers[1]))
        assert household is not None
        await recycling.replace_card(session, household, now=now)
    assert first_locks(locks) == expected


async def _waits_for_a_lock(config: SQLAlchemyAsyncConfig, pid: int) -> bool:
    async with config.get_engine().connect() as conn:
        kind = await conn.scalar(text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid})
    return kind == "Lock"


@pytest.mark.skipif(not PG_URL, reason="row locks and deadlocks are PostgreSQL's: SQLite lets one writer in at a time")
async def test_two_phones_pushing_the_same_cards_in_crossed_order_both_apply(
    config: SQLAlchemyAsyncConfig, settings: Settings, demo_data: DemoReport, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Phone one pushes cards A, B and phone two B, A, in one transaction each. Phone one stops after A;
    phone two starts and either gets through B (the old order: then each waits for the other's card, a
    deadlock PostgreSQL breaks by failing one push) or waits for the station phone one holds. Then both go
    on: both pushes apply in full, one after the other."""
    now = datetime.now(UTC)
    async with session_scope(config) as session:
        station, paper, _soap = await _station(session)
        cards = [(await recycling.issue_card(session, station, note="", now=now)) for _ in range(2)]
        numbers, households = [c.card_number for c in cards], [c.id for c in cards]
        first = await session.scalar(select(User).where(User.username == OPERATOR))
        second = await accounts.create_user(session, username="station2", password=TEST_PASSWORD, role=Role.STATION_OPERATOR,
                                            display_name="钱站员", place_id=station.place_id)
        assert first is not None
        phones = {"one": (first, Device(), numbers), "two": (second, Device(), list(reversed(numbers)))}

    phone: ContextVar[str] = ContextVar("phone", default="")
    started = {name: asyncio.Event() for name in phones}
    first_done = {name: asyncio.Event() for name in phones}
    go_on = asyncio.Event()
    calls: Counter[str] = Counter()
    real = recycling.record_dropoff

    async def pausing(*args: Any, **kwargs: Any) -> RecyclingDropoff:
        """Each phone stops after its first drop-off, until told to go on."""
        result = await real(*args, **kwargs)
        name = phone.get()
        calls[name] += 1
        if calls[name] == 1:
            first_done[name].set()
            await go_on.wait()
        return result

    monkeypatch.setattr(recycling, "record_dropoff", pausing)
    pids: dict[str, int] = {}
    clock = Clock("server")

    async def push(name: str) -> list[str]:
        phone.set(name)
        mark_writer()  # as the POST /sync/push request does
        user, device, order = phones[name]
        batch = p.decode_push(msgspec.json.encode(device.batch(*(_dropoff(device, station.id, n, paper) for n in order))))
        async with config.get_session() as session:
            pids[name] = int(await session.scalar(text("SELECT pg_backend_pid()")) or 0)
            started[name].set()
            outcomes = await engine.push(session, batch, field_sync.context_for(user, settings, clock))
            await session.commit()
        return [o.status for o in outcomes]

    one = asyncio.create_task(push("one"))
    await first_done["one"].wait()  # phone one holds card A (and the station)
    two = asyncio.create_task(push("two"))
    await started["two"].wait()
    async with asyncio.timeout(60):  # a bound, not a measure: one of the two always happens
        while not first_done["two"].is_set() and not await _waits_for_a_lock(config, pids["two"]):
            await asyncio.sleep(0.05)
    go_on.set()
    results = await asyncio.gather(one, two, return_exceptions=True)

    assert results == [[p.APPLIED, p.APPLIED], [p.APPLIED, p.APPLIED]]
    async with config.get_session() as session:
        for household_id in households:
            kept = await session.scalar(select(RecyclingHousehold.balance).where(RecyclingHousehold.id == household_id))
            summed = await session.scalar(select(func.sum(PointsEntry.points)).where(PointsEntry.household_id == household_id))
            dropoffs = await session.scalar(select(func.count()).select_from(RecyclingDropoff)
                                            .where(RecyclingDropoff.household_id == household_id))
            assert (kept, summed, dropoffs) == (16, 16, 2)  # 1 kg of paper at 8 points, from each phone
