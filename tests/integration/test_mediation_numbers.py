"""Mediation case numbers (TJ<year>-<n>, docs/boards.md, "canteen"), on SQLite and PostgreSQL: two staff
registering at once on two connections both succeed with two numbers, and the next number is one more
than the year's highest number counted as a number (TJ2026-1000 after TJ2026-999; the demo's scaled
copies such as TJ2026-1007 count as 1007)."""

from __future__ import annotations

import asyncio
from datetime import date

from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from server.db import mark_writer, session_scope
from server.models import MediationCase
from server.services import mediation
from server.services.mediation import CaseInput, Party
from server.settings import Settings

TODAY = date(2026, 3, 20)


def _case(party: str = "宇文拓海") -> CaseInput:
    return CaseInput(kind="noise", opened_on="2026-03-02", summary="楼上空调外机噪音", parties=[Party(party, "")])


async def _register(session: AsyncSession, party: str = "宇文拓海") -> str:
    return (await mediation.save_case(session, _case(party), today=TODAY)).reference


async def test_the_next_number_follows_the_highest_number_not_the_highest_text(db: AsyncSession, people: dict) -> None:
    first = await _register(db)
    assert first == "TJ2026-001"
    (await db.scalar(select(MediationCase).where(MediationCase.reference == first))).reference = "TJ2026-999"  # type: ignore[union-attr]
    await db.flush()
    assert await _register(db) == "TJ2026-1000"
    assert await _register(db) == "TJ2026-1001"  # as text "TJ2026-999" is still the highest: it would give 1000 again
    scaled = await mediation.save_case(db, _case("慕容不见"), today=TODAY)
    scaled.reference = "TJ2026-1007"  # `shanzhi demo --scale`: copy 1 of case 007
    await db.flush()
    assert await _register(db) == "TJ2026-1008"
    await db.commit()
    assert await mediation._next_reference(db, 2025) == "TJ2025-001"  # each year counts on its own


# --- Two staff at once -----------------------------------------------------------------------------------------


async def _someone_waits(config: SQLAlchemyAsyncConfig, settings: Settings) -> None:
    """Until the second registration is blocked behind the first (PostgreSQL shows it in pg_locks); on SQLite
    it waits in the write queue, which no query shows: give it a moment to get there."""
    if settings.is_sqlite:
        await asyncio.sleep(0.2)
        return
    async with config.get_session() as watcher:
        for _ in range(200):
            if await watcher.scalar(text("SELECT count(*) FROM pg_locks WHERE NOT granted")):
                return
            await watcher.rollback()
            await asyncio.sleep(0.05)


async def test_two_registrations_at_once_get_two_numbers(config: SQLAlchemyAsyncConfig, settings: Settings, people: dict) -> None:
    async with session_scope(config) as session:
        assert await _register(session) == "TJ2026-001"
    first_has_number = asyncio.Event()
    let_first_commit = asyncio.Event()

    async def register(party: str, *, hold: bool) -> str:
        mark_writer()  # a POST
        async with config.get_session() as session:
            reference = await _register(session, party)
            if hold:  # the first is written but not committed while the second registers
                first_has_number.set()
                await let_first_commit.wait()
            await session.commit()
            return reference

    first = asyncio.create_task(register("甲", hold=True))
    await first_has_number.wait()
    second = asyncio.create_task(register("乙", hold=False))
    await _someone_waits(config, settings)
    let_first_commit.set()
    references = await asyncio.gather(first, second)
    assert sorted(references) == ["TJ2026-002", "TJ2026-003"]
    async with session_scope(config) as session:
        stored = sorted(await session.scalars(select(MediationCase.reference)))
    assert stored == ["TJ2026-001", "TJ2026-002", "TJ2026-003"]
