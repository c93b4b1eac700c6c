"""Events (P5): 政策直通车, 政府开放日, 楼宇开放麦, 民生面对面, 星火小屋议事. The public list of upcoming and
past events and one event's page (minutes, appeals raised: counts, references and statuses, never who raised
them); the staff pages to plan and record events and to register an appeal raised at one (through the
appeals service, channel = event)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from litestar import Request, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import File, Redirect, Template
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.i18n import gettext
from server.models import Appeal, AppealChannel, CommunityEvent, EventKind, Place, Role, SubmitterKind
from server.routes.appeals import staff_appeal_input
from server.routes.track import photo_file
from server.security import public, roles
from server.services import appeal_ledger as ledger
from server.services import appeals, events
from server.services.appeal_catalog import BY_CODE, categories_for
from server.services.appeal_workflow import STATUS_LABELS
from server.services.appeals import utc_now
from server.services.deadlines import TimeLimits
from server.services.errors import field_errors
from server.settings import Settings
from server.web import current_user, flash, local_formatters, page_number, redirect, render

STAFF = (Role.ADMIN, Role.STAFF)
EVENT_FIELDS = ("kind", "topic", "starts_at", "place_id", "venue", "host", "supervisors", "attendance", "minutes")
APPEAL_FIELDS = ("submitter_kind", "category", "description", "place", "submitter_name", "submitter_phone", "location_detail")
DATETIME_LOCAL = ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S")

Db = NamedDependency[AsyncSession]
Config = NamedDependency[Settings]




async def _place_names(session: AsyncSession, ids: set[UUID | None]) -> dict[UUID, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return dict((await session.execute(select(Place.id, Place.name).where(Place.id.in_(wanted)))).all())


async def _event(session: AsyncSession, event_id: UUID) -> CommunityEvent:
    event = await session.get(CommunityEvent, event_id)
    if event is None:
        raise NotFoundException
    return event


async def _appeals_of(session: AsyncSession, event_id: UUID) -> list[Appeal]:
    return list(await session.scalars(select(Appeal).where(Appeal.event_id == event_id).order_by(Appeal.received_at, Appeal.reference)))


def _labels() -> dict[str, Any]:
    return {"kind_labels": events.KIND_LABELS, "kinds": list(EventKind), "status_labels": STATUS_LABELS, "categories": BY_CODE}


def _where(place_names: dict[UUID, str]) -> Any:
    """Where an event is, in words: the place and the venue, the place left out when the venue names it."""

    def where(event: CommunityEvent) -> str:
        place = place_names.get(event.place_id, "") if event.place_id else ""
        venue = event.venue.strip()
        if place and venue and place in venue:
            return venue
        return " · ".join(part for part in (place, venue) if part)

    return where


# --- Public: upcoming and past events, one event ----------------------------------------------------------


async def _listing(request: Request, db_session: AsyncSession, settings: Settings, template: str) -> Template:
    """Upcoming events, then past ones by page: the public list and the staff list."""
    page = page_number(request.query_params.get("page"))
    upcoming, past, total = await events.upcoming_and_past(db_session, utc_now(), past_page=page)
    listed = upcoming + past
    return render(
        request,
        template,
        upcoming=upcoming,
        past=past,
        page=page,
        pages=max(1, -(-total // events.PAGE_SIZE)),
        past_total=total,
        appeal_counts=await events.appeal_counts(db_session, [e.id for e in listed]),
        where=_where(await _place_names(db_session, {e.place_id for e in listed})),
        local_time=local_formatters(settings.tz)["local_time"],
        **_labels(),
    )


@get("/events", opt=public(), name="events")
async def public_list(request: Request, db_session: Db, settings: Config) -> Template:
    return await _listing(request, db_session, settings, "events/public_list.html")


@get("/events/{event_id:uuid}", opt=public(), name="events-detail")
async def public_detail(request: Request, db_session: Db, settings: Config, event_id: FromPath[UUID]) -> Template:
    event = await _event(db_session, event_id)
    raised = await _appeals_of(db_session, event.id)
    return render(
        request,
        "events/public_detail.html",
        event=event,
        raised=raised,
        upcoming=event.starts_at >= utc_now(),
        where=_where(await _place_names(db_session, {event.place_id})),
        local_time=local_formatters(settings.tz)["local_time"],
        **_labels(),
    )


# --- Staff: plan and record events ---------------------------------------------------------------------------


@get("/events/manage", opt=roles(*STAFF), name="events-manage")
async def manage_list(request: Request, db_session: Db, settings: Config) -> Template:
    return await _listing(request, db_session, settings, "events/manage.html")


def _event_values(event: CommunityEvent, settings: Settings) -> dict[str, str]:
    return {
        "kind": event.kind.value, "topic": event.topic, "starts_at": event.starts_at.astimezone(settings.tz).strftime(DATETIME_LOCAL[0]),
        "place_id": str(event.place_id or ""), "venue": event.venue, "host": event.host, "supervisors": "\n".join(event.supervisors or []),
        "attendance": "" if event.attendance is None else str(event.attendance), "minutes": event.minutes or "",
    }


def _starts_at(value: str, settings: Settings) -> datetime | None:
    for fmt in DATETIME_LOCAL:
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=settings.tz)
        except ValueError:
            continue
    return None


def _event_input(values: dict[str, str], settings: Settings) -> tuple[events.EventInput, dict[str, str]]:
    errors: dict[str, str] = {}
    place_id = None
    if values["place_id"]:
        try:
            place_id = UUID(values["place_id"])
        except ValueError:
            errors["place_id"] = gettext("This place does not exist.")
    starts_at = _starts_at(values["starts_at"], settings)
    if values["starts_at"] and starts_at is None:
        errors["starts_at"] = gettext("Please enter the date and time.")
    return events.EventInput(
        kind=values["kind"], topic=values["topic"], starts_at=starts_at, place_id=place_id, venue=values["venue"][:200],
        host=values["host"][:120], supervisors=[line[:60] for line in values["supervisors"].splitlines()], attendance=values["attendance"],
        minutes=values["minutes"],
    ), errors


async def _event_form(
    request: Request, db_session: AsyncSession, settings: Settings, *, event: CommunityEvent | None, values: dict[str, str],
    errors: dict[str, str], status_code: int = 200, appeal_values: dict[str, str] | None = None,
    appeal_errors: dict[str, str] | None = None, photo_error: str | None = None,
) -> Template:
    raised = await _appeals_of(db_session, event.id) if event else []
    return render(
        request,
        "events/form.html",
        status_code=status_code,
        event=event,
        values=values,
        errors=errors,
        action=f"/events/{event.id}/edit" if event else "/events/new",
        place_options=await ledger.place_options(db_session),
        raised=raised,
        appeal_values=appeal_values or {"submitter_kind": SubmitterKind.ENTERPRISE.value, "place": str(event.place_id or "") if event else ""},
        appeal_errors=appeal_errors or {},
        photo_error=photo_error,
        max_photos=events.MAX_EVENT_PHOTOS,
        audiences=list(SubmitterKind),
        audience_labels=ledger.AUDIENCE_LABELS,
        categories_for=categories_for,
        local_time=local_formatters(settings.tz)["local_time"],
        **_labels(),
    )


@get("/events/new", opt=roles(*STAFF), name="events-new")
async def event_new(request: Request, db_session: Db, settings: Config) -> Template:
    return await _event_form(request, db_session, settings, event=None, values={"kind": EventKind.POLICY_EXPRESS.value}, errors={})


async def _save(request: Request, db_session: AsyncSession, settings: Settings, event: CommunityEvent | None) -> Template | Redirect:
    form = await request.form()
    values = {name: str(form.get(name) or "").strip() for name in EVENT_FIELDS}
    data, errors = _event_input(values, settings)
    if not errors:
        try:
            saved = await events.save(db_session, data, event)
        except events.InvalidEvent as invalid:
            errors = field_errors(invalid, "topic", into=errors)
        else:
            await db_session.commit()
            flash(request, gettext("Event saved: %(topic)s.") % {"topic": saved.topic})
            return redirect(f"/events/{saved.id}/edit")
    await db_session.rollback()
    if event is not None:
        event = await _event(db_session, event.id)
    return await _event_form(request, db_session, settings, event=event, values=values, errors=errors, status_code=400)


@post("/events/new", opt=roles(*STAFF))
async def event_create(request: Request, db_session: Db, settings: Config) -> Template | Redirect:
    return await _save(request, db_session, settings, None)


@get("/events/{event_id:uuid}/edit", opt=roles(*STAFF), name="events-edit")
async def event_edit(request: Request, db_session: Db, settings: Config, event_id: FromPath[UUID]) -> Template:
    event = await _event(db_session, event_id)
    return await _event_form(request, db_session, settings, event=event, values=_event_values(event, settings), errors={})


@post("/events/{event_id:uuid}/edit", opt=roles(*STAFF))
async def event_update(request: Request, db_session: Db, settings: Config, event_id: FromPath[UUID]) -> Template | Redirect:
    return await _save(request, db_session, settings, await _event(db_session, event_id))


# --- An appeal raised at an event ------------------------------------------------------------------------


# --- Photos of an event -------------------------------------------------------------------------------------

MAX_PHOTO_BODY = 32 * 1024 * 1024  # six photos of at most 5 MB and the form around them


@post("/events/{event_id:uuid}/photos", opt=roles(*STAFF), request_max_body_size=MAX_PHOTO_BODY)
async def event_photos(request: Request, db_session: Db, settings: Config, event_id: FromPath[UUID]) -> Template | Redirect:
    """Add photos to an event (and remove the ones ticked): shown on its public page."""
    event = await _event(db_session, event_id)
    form = await request.form()
    raws = [await upload.read() for upload in form.getall("photos", []) if isinstance(upload, UploadFile) and upload.filename]
    remove = [str(v) for v in form.getall("remove", [])]
    try:
        await events.add_photos(db_session, event, raws, settings.uploads_dir, remove=remove)
    except events.InvalidEvent as invalid:
        await db_session.rollback()
        event = await _event(db_session, event_id)
        return await _event_form(request, db_session, settings, event=event, values=_event_values(event, settings), errors={},
                                 status_code=400, photo_error=invalid.problems[0].translated())
    await db_session.commit()
    flash(request, gettext("Photos saved."))
    return redirect(f"/events/{event_id}/edit#photos")


@get("/events/{event_id:uuid}/photos/{sha:str}", opt=public())
async def event_photo(db_session: Db, settings: Config, event_id: FromPath[UUID], sha: FromPath[str]) -> File:
    event = await _event(db_session, event_id)
    if sha not in event.photos:
        raise NotFoundException
    return photo_file(settings, sha)


@post("/events/{event_id:uuid}/appeals", opt=roles(*STAFF))
async def event_appeal(request: Request, db_session: Db, settings: Config, event_id: FromPath[UUID]) -> Template | Redirect:
    event = await _event(db_session, event_id)
    form = await request.form()
    values = {name: str(form.get(name) or "").strip() for name in APPEAL_FIELDS}
    data, errors = staff_appeal_input(values, channel=AppealChannel.EVENT, event_id=event.id)
    if data is not None:
        try:
            appeal = await appeals.submit(
                db_session, data, actor=appeals.Actor.for_user(current_user(request)),
                limits=TimeLimits.from_settings(settings), uploads_dir=settings.uploads_dir,
            )
        except appeals.InvalidAppeal as invalid:
            errors = field_errors(invalid, "description")
        else:
            reference = appeal.reference
            await db_session.commit()
            flash(request, gettext("Appeal %(reference)s registered for this event.") % {"reference": reference})
            return redirect(f"/events/{event_id}/edit#appeals")
    await db_session.rollback()
    event = await _event(db_session, event_id)
    return await _event_form(request, db_session, settings, event=event, values=_event_values(event, settings), errors={},
                             status_code=400, appeal_values=values, appeal_errors=errors)


route_handlers = [
    public_list, public_detail, manage_list, event_new, event_create, event_edit, event_update, event_photos, event_photo, event_appeal,
]
