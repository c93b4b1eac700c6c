"""Appeal metrics (A8) and the public summary (A7), computed from the records with SQL aggregates.

The formulas are written down in docs/appeals.md ("Metrics"); keep the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.models import Appeal, AppealChannel, AppealStatus, Department, Evaluation, Place, PlaceKind
from server.services.appeal_catalog import CATEGORIES
from server.services.appeals import Clock, utc_now
from server.services.shared_cache import watch
from server.services.sql_time import hours_between

# The public figures (app.state.public_figures) are recomputed after a commit that wrote these tables.
watch(Appeal, "appeals")
watch(Department, "appeals")
watch(Place, "appeals")

SATISFIED = (Evaluation.SATISFIED, Evaluation.BASICALLY_SATISFIED)
NOT_ACCEPTED = (AppealStatus.REJECTED, AppealStatus.MERGED)
HOURS_DECIMALS = 2


def ratio(numerator: int, denominator: int) -> float | None:
    """A rate, or None when nothing is counted in the denominator (shown as "—", null in JSON)."""
    return numerator / denominator if denominator else None


@dataclass(frozen=True)
class Counts:
    """The numerators and denominators of the four rates, and the two mean times, for one set of cases."""

    total: int
    responded_in_time: int
    due_for_response: int
    resolved: int
    resolved_in_time: int
    accepted: int
    satisfied: int
    evaluated: int
    mean_response_hours: float | None
    mean_resolution_hours: float | None
    # The two sources of an evaluation, counted apart: the resident's own (tracking page) and what
    # the resident told the visitor at the return visit (recorded by staff or a grid worker).
    resident_satisfied: int = 0
    resident_evaluated: int = 0
    visit_satisfied: int = 0
    visit_evaluated: int = 0

    @property
    def response_rate(self) -> float | None:  # 响应率
        return ratio(self.responded_in_time, self.due_for_response)

    @property
    def on_time_rate(self) -> float | None:  # 按时办结率
        return ratio(self.resolved_in_time, self.resolved)

    @property
    def resolution_rate(self) -> float | None:  # 解决率
        return ratio(self.resolved, self.accepted)

    @property
    def satisfaction_rate(self) -> float | None:  # 满意率 (the resident's own evaluation prevails)
        return ratio(self.satisfied, self.evaluated)

    @property
    def resident_satisfaction_rate(self) -> float | None:  # residents' own evaluations only
        return ratio(self.resident_satisfied, self.resident_evaluated)

    @property
    def visit_satisfaction_rate(self) -> float | None:  # evaluations given at return visits only
        return ratio(self.visit_satisfied, self.visit_evaluated)

    def rates(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "response_rate": self.response_rate,
            "on_time_rate": self.on_time_rate,
            "resolution_rate": self.resolution_rate,
            "satisfaction_rate": self.satisfaction_rate,
            "resident_satisfaction_rate": self.resident_satisfaction_rate,
            "visit_satisfaction_rate": self.visit_satisfaction_rate,
            "mean_response_hours": self.mean_response_hours,
            "mean_resolution_hours": self.mean_resolution_hours,
        }


@dataclass(frozen=True)
class DepartmentCounts(Counts):
    department_id: UUID | None = None  # None: cases not transferred to a department
    code: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class AppealStats(Counts):
    by_channel: dict[str, int] = field(default_factory=dict)
    by_category: dict[str, int] = field(default_factory=dict)
    by_status: dict[str, int] = field(default_factory=dict)
    departments: list[DepartmentCounts] = field(default_factory=list)
    generated_at: datetime | None = None


@dataclass(frozen=True)
class StatsFilter:
    """Cases received from `date_from` to `date_to` inclusive (local days), optionally of one department."""

    date_from: date | None = None
    date_to: date | None = None
    department_id: UUID | None = None

    def conditions(self, tz: ZoneInfo) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = []
        if self.date_from is not None:
            where.append(Appeal.received_at >= datetime.combine(self.date_from, time(), tz))
        if self.date_to is not None:
            where.append(Appeal.received_at < datetime.combine(self.date_to + timedelta(days=1), time(), tz))
        if self.department_id is not None:
            where.append(Appeal.department_id == self.department_id)
        return where


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _aggregates(now: datetime) -> list[ColumnElement[Any]]:
    """One column per Counts field, in order. The formulas of docs/appeals.md, as SQL."""
    responded = Appeal.first_response_at.is_not(None)
    return [
        func.count(Appeal.id),
        _count_if(and_(responded, Appeal.first_response_at <= Appeal.response_due_at)),
        # Due for response: answered, or unanswered past the response limit (not still inside it).
        _count_if(or_(responded, Appeal.response_due_at < now)),
        func.count(Appeal.resolved_at),
        _count_if(and_(Appeal.resolved_at.is_not(None), Appeal.resolved_at <= Appeal.resolve_due_at)),
        _count_if(Appeal.status.not_in(NOT_ACCEPTED)),
        _count_if(Appeal.evaluation.in_(SATISFIED)),
        func.count(Appeal.evaluation),
        func.avg(hours_between(Appeal.first_response_at, Appeal.received_at)),
        func.avg(hours_between(Appeal.resolved_at, Appeal.received_at)),
        _count_if(Appeal.resident_evaluation.in_(SATISFIED)),
        func.count(Appeal.resident_evaluation),
        _count_if(Appeal.visit_evaluation.in_(SATISFIED)),
        func.count(Appeal.visit_evaluation),
    ]


def _hours(value: Any) -> float | None:
    return None if value is None else round(float(value), HOURS_DECIMALS)


def _counts_kwargs(row: Any) -> dict[str, Any]:
    values = list(row)
    return {
        "total": int(values[0]),
        "responded_in_time": int(values[1]),
        "due_for_response": int(values[2]),
        "resolved": int(values[3]),
        "resolved_in_time": int(values[4]),
        "accepted": int(values[5]),
        "satisfied": int(values[6]),
        "evaluated": int(values[7]),
        "mean_response_hours": _hours(values[8]),
        "mean_resolution_hours": _hours(values[9]),
        "resident_satisfied": int(values[10]),
        "resident_evaluated": int(values[11]),
        "visit_satisfied": int(values[12]),
        "visit_evaluated": int(values[13]),
    }


async def totals(session: AsyncSession, now: datetime) -> Counts:
    """The counts of every case, for the overview figures (docs/appeals.md formulas)."""
    return Counts(**_counts_kwargs((await session.execute(select(*_aggregates(now)))).one()))


async def _grouped(session: AsyncSession, column: Any, where: list[ColumnElement[bool]]) -> dict[str, int]:
    rows = await session.execute(select(column, func.count(Appeal.id)).where(*where).group_by(column))
    return {str(getattr(key, "value", key)): int(n) for key, n in rows}


async def _departments(
    session: AsyncSession, now: datetime, where: list[ColumnElement[bool]], only: UUID | None
) -> list[DepartmentCounts]:
    """Every department (or only the filtered one), then the cases no department was given, if any."""
    rows = await session.execute(select(Appeal.department_id, *_aggregates(now)).where(*where).group_by(Appeal.department_id))
    by_department = {row[0]: _counts_kwargs(row[1:]) for row in rows}
    empty = _counts_kwargs([0] * 8 + [None, None] + [0] * 4)
    query = select(Department).order_by(Department.code)
    if only is not None:
        query = query.where(Department.id == only)
    result = [
        DepartmentCounts(**by_department.get(d.id, empty), department_id=d.id, code=d.code, name=d.name)
        for d in await session.scalars(query)
    ]
    if None in by_department:
        result.append(DepartmentCounts(**by_department[None]))
    return result


async def compute(
    session: AsyncSession, filters: StatsFilter | None = None, *, tz: ZoneInfo, clock: Clock = utc_now
) -> AppealStats:
    """Every figure of the dashboard and of GET /api/stats/appeals for the cases the filter selects."""
    filters = filters or StatsFilter()
    now = clock()
    where = filters.conditions(tz)
    overall = (await session.execute(select(*_aggregates(now)).where(*where))).one()
    channels = await _grouped(session, Appeal.channel, where)
    categories = await _grouped(session, Appeal.category, where)
    statuses = await _grouped(session, Appeal.status, where)
    return AppealStats(
        **_counts_kwargs(overall),
        by_channel={c.value: channels.get(c.value, 0) for c in AppealChannel},
        by_category={c.code: categories.get(c.code, 0) for c in CATEGORIES},
        by_status={s.value: statuses.get(s.value, 0) for s in AppealStatus},
        departments=await _departments(session, now, where, filters.department_id),
        generated_at=now,
    )


@dataclass(frozen=True)
class PlaceLabel:
    name: str
    code: str
    community: str | None  # the community (社区) that contains the place, if any


async def place_labels(session: AsyncSession) -> dict[UUID, PlaceLabel]:
    """Each place's name and its community's name, from one query over the (small) place tree."""
    rows = (await session.execute(select(Place.id, Place.parent_id, Place.kind, Place.name, Place.code))).all()
    by_id = {row.id: row for row in rows}

    def community_of(place_id: UUID | None) -> str | None:
        while place_id is not None:
            place = by_id[place_id]
            if place.kind == PlaceKind.COMMUNITY:
                return str(place.name)
            place_id = place.parent_id
        return None

    return {row.id: PlaceLabel(row.name, row.code, community_of(row.id)) for row in rows}


@dataclass(frozen=True)
class ResolvedCase:
    """A resolved case as the public may see it: no names, phones, addresses, codes or free text."""

    category: str
    community: str | None
    received_on: date
    resolved_on: date
    evaluation: Evaluation | None


async def latest_resolved(session: AsyncSession, *, tz: ZoneInfo, limit: int = 20) -> list[ResolvedCase]:
    rows = await session.execute(
        select(Appeal.category, Appeal.place_id, Appeal.received_at, Appeal.resolved_at, Appeal.evaluation)
        .where(Appeal.resolved_at.is_not(None))
        .order_by(Appeal.resolved_at.desc(), Appeal.reference.desc())
        .limit(limit)
    )
    labels = await place_labels(session)
    return [
        ResolvedCase(
            category=row.category,
            community=labels[row.place_id].community if row.place_id in labels else None,
            received_on=row.received_at.astimezone(tz).date(),
            resolved_on=row.resolved_at.astimezone(tz).date(),
            evaluation=row.evaluation,
        )
        for row in rows
    ]
