"""Open311 GeoReport v2 (A9): our categories as services, our cases as service requests.

Reading never reveals personal data: no names, phones, emails, exact addresses, descriptions or
photos (see docs/appeals.md, "Open311"). Writing goes through appeals.submit, like the suggestion box.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.i18n import N_, gettext as _
from server.models import Appeal, AppealChannel, AppealEvent, AppealStatus, Department, SubmitterKind
from server.services import appeals, places
from server.services.appeal_catalog import BY_CODE, CATEGORIES, Category
from server.services.appeal_metrics import PlaceLabel, place_labels
from server.services.appeal_workflow import OPEN, STATUS_LABELS
from server.services.appeals import Actor, AppealInput, Clock, InvalidAppeal, utc_now
from server.services.deadlines import TimeLimits
from server.services.deadlines import in_date_range
from server.services.errors import ServiceError

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
MAX_REQUESTS = 1000
MAX_SPAN = timedelta(days=90)
MAX_IDS = 100
DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
GROUPS = {SubmitterKind.ENTERPRISE: "enterprise", SubmitterKind.RESIDENT: "resident"}
OPEN311 = "open311"  # the principal of appeals submitted through the API


class Open311Error(Exception):
    """A request the API refuses: the HTTP status and one or more messages (msgids with params)."""

    def __init__(self, status: int, *errors: ServiceError) -> None:
        super().__init__(errors[0].message)
        self.status = status
        self.errors = list(errors)


def status_of(status: AppealStatus) -> str:
    """open while someone still has to act (received, transferred, in progress); closed otherwise."""
    return "open" if status in OPEN else "closed"


def w3(moment: datetime | None, tz: ZoneInfo) -> str | None:
    return None if moment is None else moment.astimezone(tz).replace(microsecond=0).isoformat()


def _keywords(category: Category) -> str:
    return ", ".join(dict.fromkeys([_(category.label), category.code, GROUPS[category.audience]]))


def service(category: Category) -> dict[str, Any]:
    return {
        "service_code": category.code,
        "service_name": _(category.label),
        "description": _(category.description),
        "metadata": False,
        "type": "realtime",
        "keywords": _keywords(category),
        "group": GROUPS[category.audience],
    }


def services() -> list[dict[str, Any]]:
    return [service(c) for c in CATEGORIES]


def service_definition(code: str) -> dict[str, Any]:
    """Our services take no attributes beyond the standard fields: the definition lists none."""
    if code not in BY_CODE:
        raise Open311Error(404, ServiceError(N_("service_code %(code)s was not found."), code=code))
    return {"service_code": code, "attributes": []}


def _csv(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def parse_moment(value: str, name: str, tz: ZoneInfo) -> datetime:
    """A w3 date-time with a time zone (2010-01-01T00:00:00Z), or a date (midnight in our time zone)."""
    value = value.strip()
    try:
        if DATE_ONLY.match(value):
            moment: datetime | None = datetime.combine(datetime.fromisoformat(value).date(), time(), tz)
        else:
            moment = datetime.fromisoformat(value)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise Open311Error(
            400, ServiceError(N_("%(name)s must be a date-time with a time zone, e.g. 2026-01-01T00:00:00Z."), name=name)
        )
    if not in_date_range(moment.date()):
        raise Open311Error(400, ServiceError(N_("%(name)s must be between 2000-01-01 and 2100-12-31."), name=name))
    return moment


@dataclass(frozen=True)
class RequestQuery:
    ids: list[str]
    codes: list[str]
    statuses: list[str]
    start: datetime
    end: datetime


def parse_query(params: Mapping[str, str], *, tz: ZoneInfo, now: datetime) -> RequestQuery:
    """The GET requests filters, checked. An empty parameter counts as absent (the spec's optional arguments)."""
    ids = _csv(params.get("service_request_id"))[:MAX_IDS]
    codes = _csv(params.get("service_code"))
    unknown = [code for code in codes if code not in BY_CODE]
    if unknown:
        raise Open311Error(400, ServiceError(N_("service_code %(code)s was not found."), code=", ".join(unknown)))
    statuses = _csv(params.get("status"))
    if any(status not in {"open", "closed"} for status in statuses):
        raise Open311Error(400, ServiceError(N_("status must be open, closed, or both separated by a comma.")))
    start_text, end_text = (params.get("start_date") or "").strip(), (params.get("end_date") or "").strip()
    start = parse_moment(start_text, "start_date", tz) if start_text else None
    end = parse_moment(end_text, "end_date", tz) if end_text else None
    if start is None and end is None:
        end = now
    if start is None:
        start = end - MAX_SPAN  # type: ignore[operator]
    if end is None:
        end = start + MAX_SPAN
    if end < start:
        raise Open311Error(400, ServiceError(N_("end_date must not be before start_date.")))
    if end - start > MAX_SPAN:
        raise Open311Error(400, ServiceError(N_("The date range may not span more than 90 days.")))
    return RequestQuery(ids, codes, statuses, start, end)


def _address(label: PlaceLabel | None) -> str | None:
    """The place's public name and its community, from most to least specific; never a street address."""
    if label is None:
        return None
    parts = [label.name] + ([label.community] if label.community and label.community != label.name else [])
    return ", ".join(parts)


def _request(row: Any, labels: dict[Any, PlaceLabel], tz: ZoneInfo, *, partner: bool = False) -> dict[str, Any]:
    category = BY_CODE.get(row.category)
    label = labels.get(row.place_id)
    return {
        "service_request_id": row.reference,
        "status": status_of(row.status),
        "status_notes": _(STATUS_LABELS[row.status]),
        "service_name": _(category.label) if category else row.category,
        "service_code": row.category,
        # The description is free text and may hold names, phones and addresses: never published, only
        # given to a partner system that presents a valid api_key (they exchange cases with us).
        "description": row.description if partner else None,
        "agency_responsible": row.department or _("Jiefanglu Subdistrict Office"),
        "service_notice": None,
        "requested_datetime": w3(row.received_at, tz),
        "updated_datetime": w3(row.updated or row.received_at, tz),
        "expected_datetime": w3(row.resolve_due_at, tz),
        "address": _address(label),
        "address_id": label.code if label else None,
        "zipcode": None,
        "lat": None,
        "long": None,
        "media_url": None,
    }


def _select_requests() -> Any:
    last_change = (
        select(AppealEvent.appeal_id, func.max(AppealEvent.at).label("at")).group_by(AppealEvent.appeal_id).subquery()
    )
    return (
        select(
            Appeal.reference, Appeal.status, Appeal.category, Appeal.place_id, Appeal.received_at, Appeal.description,
            Appeal.resolve_due_at, Department.name.label("department"), last_change.c.at.label("updated"),
        )
        .outerjoin(Department, Department.id == Appeal.department_id)
        .outerjoin(last_change, last_change.c.appeal_id == Appeal.id)
    )


async def find_requests(session: AsyncSession, query: RequestQuery, *, tz: ZoneInfo, partner: bool = False) -> list[dict[str, Any]]:
    """Service requests matching the query, newest first, at most 1000. Listed ids override every other filter."""
    statement = _select_requests()
    if query.ids:
        statement = statement.where(Appeal.reference.in_(query.ids))
    else:
        statement = statement.where(Appeal.received_at >= query.start, Appeal.received_at <= query.end)
        if query.codes:
            statement = statement.where(Appeal.category.in_(query.codes))
        if set(query.statuses) == {"open"}:
            statement = statement.where(Appeal.status.in_(OPEN))
        elif set(query.statuses) == {"closed"}:
            statement = statement.where(Appeal.status.not_in(OPEN))
    rows = (await session.execute(statement.order_by(Appeal.received_at.desc()).limit(MAX_REQUESTS))).all()
    labels = await place_labels(session) if rows else {}
    return [_request(row, labels, tz, partner=partner) for row in rows]


async def get_request(session: AsyncSession, reference: str, *, tz: ZoneInfo, partner: bool = False) -> dict[str, Any]:
    row = (await session.execute(_select_requests().where(Appeal.reference == reference))).one_or_none()
    if row is None:
        raise Open311Error(404, ServiceError(N_("service_request_id %(id)s was not found."), id=reference))
    return _request(row, await place_labels(session), tz, partner=partner)


def _coordinate(value: str, name: str, limit: float) -> float:
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not -limit <= number <= limit:
        raise Open311Error(400, ServiceError(N_("%(name)s must be a number between -%(limit)d and %(limit)d."), name=name, limit=int(limit)))
    return number


async def _location(session: AsyncSession, form: Mapping[str, str]) -> tuple[Any, str | None]:
    """(place id, location detail) from the spec's location parameter: lat & long, address_string or address_id."""
    lat, long = (form.get("lat") or "").strip(), (form.get("long") or "").strip()
    address = (form.get("address_string") or "").strip()
    address_id = (form.get("address_id") or "").strip()
    if not ((lat and long) or address or address_id):
        raise Open311Error(400, ServiceError(N_("A location is required: lat and long, address_string or address_id.")))
    place_id = None
    if address_id:
        place = await places.get_place_by_code(session, address_id)
        if place is None:
            raise Open311Error(400, ServiceError(N_("address_id %(id)s was not found."), id=address_id))
        place_id = place.id
    detail = [address] if address else []
    if lat and long:
        detail.append(f"{_coordinate(lat, 'lat', 90):.6f}, {_coordinate(long, 'long', 180):.6f}")
    return place_id, "; ".join(detail) or None


async def submit_request(
    session: AsyncSession,
    form: Mapping[str, str],
    *,
    client: str,
    limits: TimeLimits,
    uploads_dir: Path,
    clock: Clock = utc_now,
) -> Appeal:
    """POST requests: create the case through appeals.submit (channel open311) on behalf of API client `client`."""
    code = (form.get("service_code") or "").strip()
    if not code:
        raise Open311Error(400, ServiceError(N_("service_code was not provided.")))
    category = BY_CODE.get(code)
    if category is None:
        raise Open311Error(404, ServiceError(N_("service_code %(code)s was not found."), code=code))
    place_id, detail = await _location(session, form)
    name = " ".join(part for part in ((form.get("first_name") or "").strip(), (form.get("last_name") or "").strip()) if part)
    data = AppealInput(
        channel=AppealChannel.OPEN311,
        submitter_kind=category.audience,
        category=code,
        description=form.get("description") or "",
        place_id=place_id,
        submitter_name=name or None,
        submitter_phone=form.get("phone") or None,
        location_detail=detail,
    )
    try:
        return await appeals.submit(
            session, data, actor=Actor(principal=OPEN311, label=client), limits=limits, uploads_dir=uploads_dir, clock=clock
        )
    except InvalidAppeal as exc:
        raise Open311Error(400, *exc.problems) from exc
