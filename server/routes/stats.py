"""Appeal metrics (A8) as public JSON and a staff dashboard, and the public summary of resolved cases (A7)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Annotated, Any

from litestar import MediaType, Request, Response, get
from litestar.di import NamedDependency
from litestar.params import FromQuery, QueryParameter
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from server.i18n import N_, current_locale, gettext as _
from server.models import Department, Role
from server.security import STAFF_SIDE, public, roles
from server.services.deadlines import in_date_range
from server.services import appeal_metrics, appeals, overview
from server.services.appeal_catalog import CATEGORIES
from server.services.appeal_ledger import CHANNEL_LABELS
from server.services.appeal_metrics import AppealStats, Counts, StatsFilter
from server.services.shared_cache import SharedCache
from server.services.appeal_workflow import EVALUATION_LABELS, STATUS_LABELS
from server.settings import Settings
from server.web import render

NOT_TRANSFERRED = N_("Not transferred to a department")
RECENT_RESOLVED = 20


@dataclass
class FilterForm:
    """The date-range (and department) filter as typed, with one error message per bad field."""

    date_from: str = ""
    date_to: str = ""
    department: str = ""
    errors: dict[str, str] = field(default_factory=dict)


def _parse_date(value: str, name: str, form: FilterForm) -> date | None:
    if not value.strip():
        return None
    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        form.errors[name] = _("Please enter a date as YYYY-MM-DD.")
        return None
    if not in_date_range(day):
        form.errors[name] = _("Please enter a date between 2000-01-01 and 2100-12-31.")
        return None
    return day


async def parse_filters(session: AsyncSession, form: FilterForm, *, choices: bool = True) -> tuple[StatsFilter, list[Department]]:
    """The filter the form asks for; form.errors says what was wrong (then the filter must not be used).
    With choices=False the departments are read only when one is asked for (the public API's usual
    request needs no database at all while the figures are shared)."""
    departments = await appeals.departments(session) if choices or form.department.strip() else []
    date_from = _parse_date(form.date_from, "from", form)
    date_to = _parse_date(form.date_to, "to", form)
    if date_from and date_to and date_to < date_from:
        form.errors["to"] = _("The end date must not be before the start date.")
    department = next((d for d in departments if d.code == form.department.strip()), None)
    if form.department.strip() and department is None:
        form.errors["department"] = _("Unknown department.")
    return StatsFilter(date_from, date_to, department.id if department else None), departments


def _department_json(row: appeal_metrics.DepartmentCounts) -> dict[str, Any]:
    return {"code": row.code, "name": row.name or _(NOT_TRANSFERRED), **row.rates()}


def stats_json(stats: AppealStats) -> dict[str, Any]:
    """The public JSON: aggregates only, never a case or a person."""
    return {
        **stats.rates(),
        "by_channel": stats.by_channel,
        "by_category": stats.by_category,
        "by_status": stats.by_status,
        "departments": [_department_json(row) for row in stats.departments],
        "generated_at": stats.generated_at.isoformat() if stats.generated_at else None,
    }


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def hours(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


TEMPLATE_HELPERS = {"percent": percent, "hours": hours}


def public_figures(request: Request) -> SharedCache:
    cache: SharedCache = request.app.state.public_figures
    return cache


@get("/api/stats/appeals", opt=public())
async def stats_api(
    request: Request,
    db_session: NamedDependency[AsyncSession],
    settings: NamedDependency[Settings],
    date_from: Annotated[str, QueryParameter(name="from", required=False)] = "",
    date_to: Annotated[str, QueryParameter(name="to", required=False)] = "",
    department: FromQuery[str] = "",
) -> Response[dict[str, Any]]:
    form = FilterForm(date_from, date_to, department)
    filters, _departments = await parse_filters(db_session, form, choices=False)
    if form.errors:
        first = next(iter(form.errors.values()))
        body = {"status_code": 400, "error": _("Bad request"), "detail": first, "errors": form.errors}
        return Response(body, status_code=400, media_type=MediaType.JSON)

    async def figures(session: AsyncSession) -> dict[str, Any]:
        return stats_json(await appeal_metrics.compute(session, filters, tz=settings.tz))

    # Department names are translated into the JSON: the language is part of the key.
    cache = public_figures(request)
    body = await cache.get(("api", filters, current_locale.get()), figures)
    return Response(body, media_type=MediaType.JSON, headers={"Cache-Control": f"public, max-age={int(cache.ttl)}"})


async def overview_figures(request: Request, settings: Settings) -> dict[str, Any]:
    """The overview figures (also on the public home page): computed once, shared a few seconds."""
    cache: SharedCache = request.app.state.overview_figures
    figures: dict[str, Any] = await cache.get("overview", lambda session: overview.compute(session, appeals.utc_now(), settings.tz))
    return figures


@get("/api/stats/overview", opt=public())
async def overview_api(request: Request, settings: NamedDependency[Settings]) -> Response[dict[str, Any]]:
    """What the subdistrict has done, in counts (policies, guides, enterprises, visits, pushes, events …)."""
    body = await overview_figures(request, settings)
    return Response(body, media_type=MediaType.JSON,
                    headers={"Cache-Control": f"public, max-age={int(request.app.state.overview_figures.ttl)}"})


@get("/stats/appeals", opt=roles(*STAFF_SIDE, Role.SUPERVISOR))
async def stats_dashboard(
    request: Request,
    db_session: NamedDependency[AsyncSession],
    settings: NamedDependency[Settings],
    date_from: Annotated[str, QueryParameter(name="from", required=False)] = "",
    date_to: Annotated[str, QueryParameter(name="to", required=False)] = "",
    department: FromQuery[str] = "",
) -> Template:
    form = FilterForm(date_from, date_to, department)
    filters, departments = await parse_filters(db_session, form)
    stats = None if form.errors else await appeal_metrics.compute(db_session, filters, tz=settings.tz)
    return render(
        request,
        "stats/appeals.html",
        status_code=400 if form.errors else 200,
        form=form,
        stats=stats,
        departments=departments,
        channel_labels={c.value: label for c, label in CHANNEL_LABELS.items()},
        category_labels={c.code: c.label for c in CATEGORIES},
        status_labels={s.value: label for s, label in STATUS_LABELS.items()},
        not_transferred=NOT_TRANSFERRED,
        **TEMPLATE_HELPERS,
    )


async def summary_figures(request: Request, settings: Settings) -> tuple[Counts, list[appeal_metrics.ResolvedCase]]:
    """The public summary's figures (also on the public home page): computed once, shared a few seconds."""

    async def figures(session: AsyncSession) -> tuple[Counts, list[appeal_metrics.ResolvedCase]]:
        stats = await appeal_metrics.compute(session, tz=settings.tz)
        return stats, await appeal_metrics.latest_resolved(session, tz=settings.tz, limit=RECENT_RESOLVED)

    result: tuple[Counts, list[appeal_metrics.ResolvedCase]] = await public_figures(request).get("summary", figures)
    return result


@get("/summary/appeals", opt=public())
async def public_summary(request: Request, settings: NamedDependency[Settings]) -> Template:
    stats, recent = await summary_figures(request, settings)
    return render(
        request,
        "summary/appeals.html",
        stats=stats,
        recent=recent,
        category_labels={c.code: c.label for c in CATEGORIES},
        evaluation_labels=EVALUATION_LABELS,
        **TEMPLATE_HELPERS,
    )


route_handlers = [stats_api, overview_api, stats_dashboard, public_summary]
