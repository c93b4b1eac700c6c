"""The demo year of appeals: made through the workflow, in the spirit of the seed (60+ appeals, 50+ solved,
~99% satisfied), with a consistent timeline for every case, and loaded only once."""

from __future__ import annotations

import itertools
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.db import make_alchemy_config, session_scope
from server.models import Appeal, AppealEvent, AppealStatus, Evaluation, Notification, Summons, SubmitterKind
from server.services import demo
from server.services.deadlines import TimeLimits, Urgency
from server.services.demo_appeals import SEED, DemoAppeals, DemoClock, plan_year
from server.settings import Settings

S = AppealStatus
SOLVED = {S.RESOLVED, S.EVALUATED, S.CLOSED}


@pytest.fixture
async def loaded(settings: Settings) -> AsyncIterator[tuple[demo.DemoReport, AsyncSession]]:
    """The demo loaded and committed, then a session to read it."""
    config = make_alchemy_config(settings)
    try:
        async with session_scope(config) as session:
            report = await demo.load_demo(session, settings)
        async with session_scope(config) as session:
            yield report, session
    finally:
        await config.get_engine().dispose()


async def all_appeals(session: AsyncSession) -> list[Appeal]:
    return list(await session.scalars(select(Appeal).order_by(Appeal.reference)))


async def test_numbers_in_the_spirit_of_the_seed(loaded: tuple[demo.DemoReport, AsyncSession]) -> None:
    report, session = loaded
    cases = await all_appeals(session)
    assert report.appeals_created == len(cases) >= 65
    assert sum(a.status in SOLVED for a in cases) >= 50
    statuses = {a.status for a in cases}
    assert statuses == set(S)  # every state is on show, from 已受理 to 已合并
    # 满意率 from the recorded evaluations, including the 不满意 that sent a case back.
    evaluations = [
        Evaluation(e.data["evaluation"])
        for e in await session.scalars(select(AppealEvent).where(AppealEvent.action.in_(["evaluate", "return_visit"])))
        if e.data and "evaluation" in e.data
    ]
    assert len(evaluations) >= 50
    assert evaluations.count(Evaluation.UNSATISFIED) == 2
    satisfied = sum(e in {Evaluation.SATISFIED, Evaluation.BASICALLY_SATISFIED} for e in evaluations)
    assert 0.95 <= satisfied / len(evaluations) < 1
    # Each case's latest evaluation: one case is back in progress after its 不满意.
    latest = [a.evaluation for a in cases if a.evaluation is not None]
    assert latest.count(Evaluation.UNSATISFIED) == 1
    assert 0.95 <= (len(latest) - 1) / len(latest) < 1
    assert next(a for a in cases if a.evaluation is Evaluation.UNSATISFIED).status is S.IN_PROGRESS


async def test_a_varied_year(loaded: tuple[demo.DemoReport, AsyncSession], settings: Settings) -> None:
    _report, session = loaded
    cases = await all_appeals(session)
    now = datetime.now(UTC)
    received = sorted(a.received_at for a in cases)
    assert (now - received[0]).days >= 300  # about a year of cases
    assert len({a.channel for a in cases}) >= 5
    assert {a.submitter_kind for a in cases} == set(SubmitterKind)
    assert len({a.category for a in cases}) >= 10
    assert len({a.place_id for a in cases}) >= 4
    assert len({a.department_id for a in cases if a.department_id}) == 6
    assert sum(a.is_complex for a in cases) >= 3
    assert sum(a.reopen_count for a in cases) == 2
    assert all(a.merged_into_id for a in cases if a.status is S.MERGED)
    assert all(a.rejection_reason for a in cases if a.status is S.REJECTED)
    # Whistles with report-ins: at least one late, and one department that has not reported in yet.
    summons = list(await session.scalars(select(Summons)))
    assert any(s.reported_at and s.reported_at > s.report_by for s in summons)
    assert any(s.reported_at is None and s.report_by < now for s in summons)
    # Open cases: some due soon, one overdue, recorded by the overdue job.
    limits = TimeLimits.from_settings(settings)
    open_cases = [a for a in cases if a.status in {S.RECEIVED, S.TRANSFERRED, S.IN_PROGRESS}]
    urgencies = [limits.urgency(a.received_at, a.resolve_due_at, None, now) for a in open_cases]
    assert urgencies.count(Urgency.DUE_SOON) >= 3
    assert urgencies.count(Urgency.OVERDUE) == 1
    overdue = next(a for a, u in zip(open_cases, urgencies, strict=True) if u is Urgency.OVERDUE)
    assert await session.scalar(
        select(func.count()).select_from(AppealEvent).where(AppealEvent.appeal_id == overdue.id, AppealEvent.action == "overdue")
    ) == 1


async def test_contacts_are_fictional(loaded: tuple[demo.DemoReport, AsyncSession]) -> None:
    _report, session = loaded
    phones = [a.submitter_phone for a in await all_appeals(session) if a.submitter_phone]
    assert phones
    assert all(p.startswith("138000") and len(p) == 11 for p in phones)


async def test_every_step_is_on_the_timeline(loaded: tuple[demo.DemoReport, AsyncSession]) -> None:
    _report, session = loaded
    events = list(await session.scalars(select(AppealEvent).order_by(AppealEvent.appeal_id, AppealEvent.at, AppealEvent.created_at)))
    by_case = {key: list(group) for key, group in itertools.groupby(events, key=lambda e: e.appeal_id)}
    for appeal in await all_appeals(session):
        timeline = by_case[appeal.id]
        assert (timeline[0].action, timeline[0].to_status, timeline[0].at) == ("submit", S.RECEIVED, appeal.received_at)
        assert [e.action for e in timeline].count("submit") == 1
        for previous, event in itertools.pairwise(timeline):
            assert event.from_status is previous.to_status, (appeal.reference, event.action)
        assert timeline[-1].to_status is appeal.status, appeal.reference
        if appeal.status in SOLVED:
            assert appeal.first_response_at is not None and appeal.resolution_note


async def test_loading_again_adds_nothing(loaded: tuple[demo.DemoReport, AsyncSession], settings: Settings) -> None:
    _report, session = loaded

    async def counts() -> list[int]:
        return [await session.scalar(select(func.count()).select_from(m)) or 0 for m in (Appeal, AppealEvent, Notification, Summons)]

    before = await counts()
    again = await demo.load_demo(session, settings)
    assert (again.places_created, again.users_created, again.appeals_created) == (0, 0, 0)
    assert await counts() == before


def test_the_plan_is_deterministic() -> None:
    """The same end gives the same year: topics, times and outcomes."""
    end = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)

    def plan() -> list[tuple[str, datetime, str, int]]:
        people = DemoAppeals(None, None, DemoClock(end), random.Random(SEED), None, None, {}, {}, {})  # type: ignore[arg-type]
        return [(c.topic.description, c.received_at, c.outcome, len(c.steps)) for c in plan_year(people, end)]

    first = plan()
    assert first == plan()
    assert all(received <= end for _d, received, _o, _n in first)


async def test_cases_from_visits_come_with_the_visit_that_collected_them(loaded: tuple[demo.DemoReport, AsyncSession]) -> None:
    """1+N+1 in the demo: every case of the visit channel hangs off a visit by 王网格, made when it was received."""
    from server.models import AppealChannel, User, Visit

    _report, session = loaded
    grid = await session.scalar(select(User).where(User.username == "grid"))
    from_visits = [a for a in await all_appeals(session) if a.channel is AppealChannel.VISIT]
    assert from_visits
    for appeal in from_visits:
        visit = await session.get(Visit, appeal.visit_id) if appeal.visit_id else None
        assert visit is not None and grid is not None and visit.worker_id == grid.id
        assert visit.visited_at == appeal.received_at and visit.place_id == appeal.place_id
    # The other demo visits are the policy service's visits to enterprises of the registry (docs/policies.md).
    assert await session.scalar(select(func.count()).select_from(Visit).where(Visit.enterprise_id.is_(None))) == len(from_visits)
