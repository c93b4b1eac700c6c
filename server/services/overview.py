"""The overview figures (`GET /api/stats/overview`): counts of what the subdistrict has done, computed
from records. Each area contributes its keys with `contributes`; the policy service's are here, the
livelihood boards add theirs. docs/policies.md, "Overview figures"."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.models import (
    Appeal,
    CheckIn,
    CommunityEvent,
    Elder,
    Enterprise,
    Policy,
    PolicyGuide,
    PolicyPush,
    PolicyQuestion,
    PolicyStatus,
    PushOutcome,
    QuestionStatus,
    Visit,
)
from server.services import appeal_metrics, boards
from server.services.shared_cache import watch

TOPIC = "overview"
Contribution = Callable[[AsyncSession, datetime, ZoneInfo], Awaitable[dict[str, Any]]]
CONTRIBUTIONS: list[Contribution] = []


def contributes(*models: type) -> Callable[[Contribution], Contribution]:
    """Register a function adding keys to the overview; a commit writing `models` refreshes it."""

    def register(function: Contribution) -> Contribution:
        for model in models:
            watch(model, TOPIC)
        boards.announce_writes_of(*models, board="overview", topic=TOPIC)  # open /boards/overview pages refresh
        CONTRIBUTIONS.append(function)
        return function

    return register


async def compute(session: AsyncSession, now: datetime, tz: ZoneInfo) -> dict[str, Any]:
    """Every area's figures at `now` ("today" is the subdistrict's date in `tz`)."""
    figures: dict[str, Any] = {}
    for contribution in CONTRIBUTIONS:
        figures.update(await contribution(session, now, tz))
    figures["computed_at"] = now.isoformat()
    return figures


async def _count(session: AsyncSession, query: Any) -> int:
    return int(await session.scalar(query) or 0)


@contributes(Policy, PolicyGuide, Enterprise, Visit, PolicyPush, CommunityEvent, PolicyQuestion, Appeal)
async def policy_service(session: AsyncSession, now: datetime, _tz: ZoneInfo) -> dict[str, Any]:
    granted = (await session.execute(
        select(func.count(), func.coalesce(func.sum(PolicyPush.amount_yuan), 0)).where(PolicyPush.outcome == PushOutcome.GRANTED)
    )).one()
    return {
        "policies_published": await _count(session, select(func.count()).select_from(Policy).where(Policy.status == PolicyStatus.PUBLISHED)),
        "policy_guides": await _count(session, select(func.count()).select_from(PolicyGuide)),
        "policy_guide_scans": await _count(session, select(func.coalesce(func.sum(PolicyGuide.scan_count), 0))),
        "enterprises": await _count(session, select(func.count()).select_from(Enterprise)),
        "enterprises_key": await _count(session, select(func.count()).select_from(Enterprise).where(Enterprise.is_key.is_(True))),
        "enterprises_reached": await _count(session, select(func.count(distinct(PolicyPush.enterprise_id)))),
        "visits": await _count(session, select(func.count()).select_from(Visit)),
        "policy_pushes": await _count(session, select(func.count()).select_from(PolicyPush)),
        "policies_applied": await _count(session, select(func.count()).select_from(PolicyPush).where(
            PolicyPush.outcome.in_((PushOutcome.APPLIED, PushOutcome.GRANTED)))),
        "policies_granted": int(granted[0]),
        "granted_amount_yuan": int(granted[1]),
        "events_held": await _count(session, select(func.count()).select_from(CommunityEvent).where(CommunityEvent.starts_at < now)),
        "events_upcoming": await _count(session, select(func.count()).select_from(CommunityEvent).where(CommunityEvent.starts_at >= now)),
        "policy_questions_answered": await _count(session, select(func.count()).select_from(PolicyQuestion).where(
            PolicyQuestion.status == QuestionStatus.ANSWERED)),
        "appeals": await _count(session, select(func.count()).select_from(Appeal)),
    }


@contributes(Appeal)
async def appeal_figures(session: AsyncSession, now: datetime, _tz: ZoneInfo) -> dict[str, Any]:
    """诉求: received (every case), solved (办结: a resolution recorded), satisfaction (满意率, 0–1, or null
    before the first evaluation) — the formulas of docs/appeals.md."""
    counts = await appeal_metrics.totals(session, now)
    rate = counts.satisfaction_rate
    return {"appeals_received": counts.total, "appeals_solved": counts.resolved,
            "satisfaction_rate": None if rate is None else round(rate, 4)}


@contributes(Elder, CheckIn)
async def morning_signal_figures(session: AsyncSession, now: datetime, tz: ZoneInfo) -> dict[str, Any]:
    """晨曦信号: counts only (never who). Signalled today: enrolled elders with a signal for today's date."""
    today = now.astimezone(tz).date()
    enrolled = select(Elder.id).where(Elder.ended_at.is_(None))
    return {
        "elders_enrolled": await _count(session, select(func.count()).select_from(enrolled.subquery())),
        "elders_signalled_today": await _count(session, select(func.count(distinct(CheckIn.elder_id))).where(
            CheckIn.day == today, CheckIn.elder_id.in_(enrolled))),
    }
