"""The staff side of appeals: the ledger (A7) with its CSV export (X5), staff intake (A1), the case page with
its timeline and the workflow actions (A2-A5), and the case photos."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import FromPath
from litestar.response import File, Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from server.i18n import N_, current_locale, gettext
from server.models import Appeal, AppealChannel, AppealEvent, AppealStatus, Evaluation, Role, SubmitterKind, VisitMethod
from server.security import STAFF_SIDE, roles
from server.services import appeal_ledger as ledger
from server.services import appeal_scope, appeals, exports
from server.services.appeal_catalog import BY_CODE, CATEGORIES, categories_for
from server.services.appeal_workflow import ACTION_LABELS, STATUS_LABELS, TRANSITIONS, Action, transition_for
from server.services.appeals import utc_now
from server.services.deadlines import TimeLimits
from server.services.errors import ServiceError
from server.services.photos import ProcessedPhoto, process_photos, stored_photo
from server.settings import Settings
from server.web import current_user, flash, redirect, render

LEDGER_ROLES = (Role.ADMIN, Role.STAFF, Role.SUPERVISOR, Role.DEPARTMENT)
EXPORT_ROLES = (Role.ADMIN, Role.STAFF, Role.SUPERVISOR)
INTAKE_ROLES = (Role.ADMIN, Role.STAFF, Role.GRID_WORKER)
CASE_ROLES = (Role.ADMIN, Role.STAFF, Role.SUPERVISOR, Role.DEPARTMENT, Role.GRID_WORKER)
INTAKE_CHANNELS = (AppealChannel.HOTLINE, AppealChannel.EVENT, AppealChannel.VISIT)
DATETIME_LOCAL = "%Y-%m-%dT%H:%M"
MAX_PHOTO_FORM = 16 * 1024 * 1024  # bytes: a resolution may come with three photos of up to 5 MB

Db = NamedDependency[AsyncSession]
Config = NamedDependency[Settings]


def _viewer(request: Request) -> ledger.Viewer:
    user = current_user(request)
    assert user is not None  # the guard let a signed-in user through
    return ledger.Viewer.of(user)


def _local(limits: TimeLimits) -> Any:
    def local_time(moment: datetime | None) -> str:
        return moment.astimezone(limits.tz).strftime("%Y-%m-%d %H:%M") if moment else ""

    return local_time


def _labels() -> dict[str, Any]:
    return {
        "status_labels": STATUS_LABELS,
        "action_labels": ACTION_LABELS,
        "channel_labels": ledger.CHANNEL_LABELS,
        "audience_labels": ledger.AUDIENCE_LABELS,
        "evaluation_labels": ledger.EVALUATION_LABELS,
        "method_labels": ledger.METHOD_LABELS,
        "limit_labels": ledger.LIMIT_LABELS,
        "urgency_labels": ledger.URGENCY_LABELS,
        "categories": BY_CODE,
        "actor_text": appeals.actor_text,
    }


# --- The ledger (落实台账) -------------------------------------------------------------------------------


@get("/appeals", opt=roles(*LEDGER_ROLES), name="appeals-ledger")
async def ledger_list(request: Request, db_session: Db, settings: Config) -> Template:
    viewer = _viewer(request)
    limits = TimeLimits.from_settings(settings)
    filters = ledger.LedgerFilter.parse(request.query_params)
    try:
        page_number = int(request.query_params.get("page", "1"))
    except ValueError:
        page_number = 1
    page = await ledger.ledger_page(db_session, filters, viewer, limits, utc_now(), page_number)
    return render(
        request,
        "appeals/ledger.html",
        partial="appeals/partials/ledger_results.html",
        page=page,
        filters=filters,
        statuses=list(AppealStatus),
        category_list=CATEGORIES,
        channels=list(AppealChannel),
        departments=await appeals.departments(db_session),
        place_options=await ledger.place_options(db_session),
        can_export=viewer.role in EXPORT_ROLES,
        sees_phone=viewer.sees_phone,
        local_time=_local(limits),
        **_labels(),
    )


CSV_HEADERS = [
    ("reference", "编号"),
    ("received_at", "受理时间"),
    ("channel", "渠道"),
    ("audience", "诉求人类型"),
    ("category", "类别"),
    ("place", "地点"),
    ("status", "状态"),
    ("limit", "当前时限"),
    ("urgency", "时限状态"),
    ("time", "剩余或超时"),
    ("response_due_at", "响应截止"),
    ("first_response_at", "首次响应"),
    ("resolve_due_at", "办结截止"),
    ("resolved_at", "办结时间"),
    ("department", "责任部门"),
    ("submitter_name", "诉求人"),
    ("submitter_phone", "联系电话"),
    ("location_detail", "详细位置"),
    ("description", "诉求内容"),
    ("resolution_note", "办结说明"),
    ("evaluation", "评价"),
]


def _csv_values(row: ledger.LedgerRow, local_time: Any) -> dict[str, str]:
    a, state = row.appeal, row.deadline
    category = BY_CODE.get(a.category)
    return {
        "reference": a.reference,
        "received_at": local_time(a.received_at),
        "channel": gettext(ledger.CHANNEL_LABELS[a.channel]),
        "audience": gettext(ledger.AUDIENCE_LABELS[a.submitter_kind]),
        "category": gettext(category.label) if category else a.category,
        "place": row.place_name or "",
        "status": gettext(STATUS_LABELS[a.status]),
        "limit": gettext(state.limit_label) if state else "",
        "urgency": gettext(state.label) if state else "",
        "time": state.time_text() if state else "",
        "response_due_at": local_time(a.response_due_at),
        "first_response_at": local_time(a.first_response_at),
        "resolve_due_at": local_time(a.resolve_due_at),
        "resolved_at": local_time(a.resolved_at),
        "department": row.department_name or "",
        "submitter_name": a.submitter_name or "",
        "submitter_phone": a.submitter_phone or "",
        "location_detail": a.location_detail or "",
        "description": a.description,
        "resolution_note": a.resolution_note or "",
        "evaluation": gettext(ledger.EVALUATION_LABELS[a.evaluation]) if a.evaluation else "",
    }


def ledger_csv(rows: list[ledger.LedgerRow], *, with_phone: bool, limits: TimeLimits) -> bytes:
    """The ledger as Excel opens it: UTF-8 with BOM, Chinese headers and values (the filed 台账 is Chinese)."""
    columns = [(key, title) for key, title in CSV_HEADERS if with_phone or key != "submitter_phone"]
    local_time = _local(limits)
    token = current_locale.set("zh_CN")
    try:
        lines = [[values[key] for key, _ in columns] for values in (_csv_values(row, local_time) for row in rows)]
    finally:
        current_locale.reset(token)
    return exports.csv_bytes([title for _, title in columns], lines)


@get("/appeals/export.csv", opt=roles(*EXPORT_ROLES), name="appeals-export")
async def ledger_export(request: Request, db_session: Db, settings: Config) -> Response[bytes]:
    viewer = _viewer(request)
    limits = TimeLimits.from_settings(settings)
    now = utc_now()
    rows = await ledger.ledger_rows(db_session, ledger.LedgerFilter.parse(request.query_params), viewer, limits, now)
    filename = f"appeals-{now.astimezone(limits.tz):%Y%m%d-%H%M}.csv"
    return Response(
        ledger_csv(rows, with_phone=viewer.sees_phone, limits=limits),
        media_type="text/csv",
        headers={"content-disposition": f'attachment; filename="{filename}"', "cache-control": "private, no-store"},
    )


# --- Staff intake: 12345 hotline, events, visits ----------------------------------------------------------


async def _intake_page(request: Request, db_session: AsyncSession, values: dict[str, str], errors: dict[str, str], status_code: int = 200) -> Template:
    return render(
        request,
        "appeals/new.html",
        status_code=status_code,
        values=values,
        errors=errors,
        intake_channels=INTAKE_CHANNELS,
        audiences=list(SubmitterKind),
        categories_for=categories_for,
        place_options=await ledger.place_options(db_session),
        **_labels(),
    )


@get("/appeals/new", opt=roles(*INTAKE_ROLES), name="appeals-new")
async def intake_form(request: Request, db_session: Db) -> Template | Redirect:
    user = current_user(request)
    if user is not None and user.role is Role.GRID_WORKER:
        # A grid worker has one way to record an appeal, the one that works offline (the outbox).
        return redirect("/field/appeal")
    return await _intake_page(request, db_session, {"channel": AppealChannel.HOTLINE.value, "submitter_kind": SubmitterKind.RESIDENT.value}, {})


INTAKE_FIELDS = ("channel", "submitter_kind", "category", "description", "place", "submitter_name", "submitter_phone", "location_detail")


def staff_appeal_input(
    values: dict[str, str], *, channel: AppealChannel | None = None, event_id: UUID | None = None
) -> tuple[appeals.AppealInput | None, dict[str, str]]:
    """An appeal staff register (the intake form, or at an event: then `channel` and `event_id` are given),
    or the errors of the fields the service does not check itself."""
    errors: dict[str, str] = {}
    if channel is None and values["channel"] not in {c.value for c in INTAKE_CHANNELS}:
        errors["channel"] = gettext("Please choose how the appeal came in.")
    if values["submitter_kind"] not in SubmitterKind._value2member_map_:
        errors["submitter_kind"] = gettext("Please choose an enterprise or a resident.")
    place_id = None
    if values["place"]:
        try:
            place_id = UUID(values["place"])
        except ValueError:
            errors["place"] = gettext("This place code is unknown.")
    if errors:
        return None, errors
    return appeals.AppealInput(
        channel=channel or AppealChannel(values["channel"]),
        event_id=event_id,
        submitter_kind=SubmitterKind(values["submitter_kind"]),
        category=values["category"],
        description=values["description"],
        place_id=place_id,
        submitter_name=values["submitter_name"],
        submitter_phone=values["submitter_phone"],
        location_detail=values["location_detail"],
    ), errors


@post("/appeals/new", opt=roles(*INTAKE_ROLES))
async def intake_submit(request: Request, db_session: Db, settings: Config) -> Template | Redirect:
    form = await request.form()
    values = {name: str(form.get(name) or "").strip() for name in INTAKE_FIELDS}
    data, errors = staff_appeal_input(values)
    user = current_user(request)
    if data is not None and user is not None and user.role is Role.GRID_WORKER and data.place_id is not None:
        # The same rule as the field app's: a worker records appeals at places of their grid.
        if data.place_id not in await appeal_scope.grid_place_ids(db_session, user.place_id):
            errors = {"place": gettext("This place is not in your grid.")}
            data = None
    if data is not None:
        try:
            appeal = await appeals.submit(
                db_session, data, actor=appeals.Actor.for_user(current_user(request)),
                limits=TimeLimits.from_settings(settings), uploads_dir=settings.uploads_dir,
            )
        except appeals.InvalidAppeal as invalid:
            errors = {problem.field or "description": problem.translated() for problem in invalid.problems}
        else:
            return redirect(f"/appeals/{appeal.reference}")
    return await _intake_page(request, db_session, values, errors, status_code=400)


# --- One case ------------------------------------------------------------------------------------------


async def _visible_case(db_session: AsyncSession, reference: str, viewer: ledger.Viewer) -> Appeal:
    appeal = await appeals.get_by_reference(db_session, reference)
    if appeal is None:
        raise NotFoundException
    if not await ledger.can_view(db_session, appeal, viewer):
        raise PermissionDeniedException
    return appeal


async def _case_page(
    request: Request,
    db_session: AsyncSession,
    settings: Settings,
    appeal: Appeal,
    *,
    status_code: int = 200,
    error: ServiceError | None = None,
    error_action: Action | None = None,
    values: dict[str, Any] | None = None,
) -> Template:
    user = current_user(request)
    limits = TimeLimits.from_settings(settings)
    now = utc_now()
    viewer = ledger.Viewer.of(user)
    file = await ledger.case_file(db_session, appeal, appeals.Actor.for_user(user), limits, now)
    return render(
        request,
        "appeals/detail.html",
        status_code=status_code,
        file=file,
        a=appeal,
        sees_phone=viewer.sees_phone,
        Action=Action,
        departments=await appeals.departments(db_session),
        people=await ledger.assignable_people(db_session),
        evaluations=list(Evaluation),
        methods=list(VisitMethod),
        default_report_by=(now + timedelta(days=1)).astimezone(limits.tz).strftime(DATETIME_LOCAL),
        min_report_by=now.astimezone(limits.tz).strftime(DATETIME_LOCAL),
        error=error.translated() if error else None,
        error_field=error.field if error else None,
        error_action=error_action,
        values=values or {},
        local_time=_local(limits),
        note_choice=appeals.note_choice,
        can_reclassify=user.role in STAFF_SIDE,
        category_choices=[c for c in CATEGORIES if c.audience == appeal.submitter_kind],
        place_options=await ledger.place_options(db_session) if user.role in STAFF_SIDE else [],
        **_labels(),
    )


@get("/appeals/{reference:str}", opt=roles(*CASE_ROLES), name="appeals-detail")
async def case_detail(request: Request, db_session: Db, settings: Config, reference: FromPath[str]) -> Template:
    appeal = await _visible_case(db_session, reference, _viewer(request))
    return await _case_page(request, db_session, settings, appeal)


def _uuid_field(value: Any, field: str, message: str) -> UUID | None:
    if not value:
        return None
    try:
        return UUID(str(value))
    except ValueError as exc:
        raise ServiceError(message, field=field) from exc


def _enum_field(enum_type: Any, value: Any) -> Any:
    return enum_type._value2member_map_.get(str(value or ""))


def _local_datetime(value: Any, limits: TimeLimits) -> datetime | None:
    try:
        return datetime.strptime(str(value or ""), DATETIME_LOCAL).replace(tzinfo=limits.tz)
    except ValueError:
        return None


async def _photos(form: Any) -> list[ProcessedPhoto]:
    uploads = [item for item in form.getall("photos", []) if isinstance(item, UploadFile) and item.filename]
    return await process_photos([data for data in [await upload.read() for upload in uploads] if data])


async def _payload(action: Action, form: Any, limits: TimeLimits) -> appeals.ActionInput:
    """The form fields an action uses; the service checks what each action requires."""
    unknown_department = N_("Unknown department.")
    payload = appeals.ActionInput(note=str(form.get("note") or ""), note_public=form.get("note_visibility") == "public")
    if action is Action.TRANSFER:
        payload.department_id = _uuid_field(form.get("department_id"), "department_id", unknown_department)
        payload.assignee_id = _uuid_field(form.get("assignee_id"), "assignee_id", N_("Unknown person."))
    elif action is Action.WHISTLE:
        payload.department_ids = [
            uid for value in form.getall("department_ids", []) if (uid := _uuid_field(value, "department_ids", unknown_department))
        ]
        payload.report_by = _local_datetime(form.get("report_by"), limits)
    elif action in {Action.RETURN_VISIT, Action.EVALUATE}:
        payload.method = _enum_field(VisitMethod, form.get("method"))
        payload.evaluation = _enum_field(Evaluation, form.get("evaluation"))
    elif action is Action.MERGE:
        payload.target_reference = str(form.get("target_reference") or "")
    elif action is Action.RESOLVE:
        payload.photos = await _photos(form)
    return payload


def _seen_version(value: Any) -> int | None:
    """The case version the submitted page showed (absent from forms older than the field)."""
    try:
        return int(str(value))
    except ValueError:
        return None


def _refusal_status(error: ServiceError) -> int:
    if isinstance(error, appeals.ScopeError):
        return 403
    if isinstance(error, appeals.WorkflowError):
        return 409
    return 400


@post("/appeals/{reference:str}/{action:str}", opt=roles(*CASE_ROLES), name="appeals-act", request_max_body_size=MAX_PHOTO_FORM)
async def case_action(
    request: Request, db_session: Db, settings: Config, reference: FromPath[str], action: FromPath[str]
) -> Template | Redirect:
    chosen = _enum_field(Action, action)
    if chosen is Action.RECLASSIFY:
        return await _reclassify(request, db_session, settings, reference)
    if chosen not in TRANSITIONS:
        raise NotFoundException
    appeal = await _visible_case(db_session, reference, _viewer(request))
    form = await request.form()
    values = {key: form.get(key) for key in form if key not in {"_csrf_token", "photos", "version"}}
    values["department_ids"] = form.getall("department_ids", [])
    actor = appeals.Actor.for_user(current_user(request))
    limits = TimeLimits.from_settings(settings)
    try:
        if actor.principal not in transition_for(chosen).principals:
            raise appeals.ScopeError(N_("Your role cannot take this action."))
        payload = await _payload(chosen, form, limits)
        event = await appeals.act(
            db_session, appeal, chosen, actor, payload, limits=limits, uploads_dir=settings.uploads_dir,
            seen_version=_seen_version(form.get("version")),
        )
    except ServiceError as error:
        return await _refused(request, db_session, settings, reference, error, chosen, values)
    return await _done(request, db_session, appeal, _done_message(appeal, event))


async def _reclassify(request: Request, db_session: AsyncSession, settings: Settings, reference: str) -> Template | Redirect:
    """Staff correct the category and the place (a general-box case has no place until they set one)."""
    appeal = await _visible_case(db_session, reference, _viewer(request))
    form = await request.form()
    values = {key: form.get(key) for key in form if key not in {"_csrf_token", "version"}}
    try:
        place_id = _uuid_field(form.get("place"), "place", N_("This place code is unknown."))
        await appeals.reclassify(
            db_session, appeal, appeals.Actor.for_user(current_user(request)), category=str(form.get("category") or ""),
            place_id=place_id, seen_version=_seen_version(form.get("version")),
        )
    except ServiceError as error:
        return await _refused(request, db_session, settings, reference, error, Action.RECLASSIFY, values)
    return await _done(request, db_session, appeal, gettext("Category and place corrected."))


async def _refused(
    request: Request, db_session: AsyncSession, settings: Settings, reference: str, error: ServiceError,
    action: Action, values: dict[str, Any],
) -> Template:
    """The case page again, with the reason and what was typed. Nothing of a refused action is kept,
    not even what the service changed before it refused."""
    await db_session.rollback()
    appeal = await _visible_case(db_session, reference, _viewer(request))
    return await _case_page(
        request, db_session, settings, appeal, status_code=_refusal_status(error), error=error, error_action=action, values=values,
    )


async def _done(request: Request, db_session: AsyncSession, appeal: Appeal, message: str) -> Redirect:
    """Back to the case page, which says what just happened. Commit before the session (which may
    live in the database) stores the message: on SQLite a second writer would wait for this
    transaction's turn in the write queue, which it holds."""
    await db_session.commit()
    flash(request, message)
    return redirect(f"/appeals/{appeal.reference}")


def _done_message(appeal: Appeal, event: AppealEvent) -> str:
    """What the user just did, in words, from what the action recorded on the timeline."""
    data = event.data or {}
    if event.action == Action.TRANSFER:
        names = "、".join(n for n in (data.get("department"), data.get("assignee")) if n)
        return gettext("Transferred to %(name)s.") % {"name": names}
    if event.action == Action.WHISTLE:
        return gettext("Summoned: %(names)s.") % {"names": "、".join(data.get("departments") or [])}
    return gettext("%(action)s: done. The case is now %(status)s.") % {
        "action": gettext(ACTION_LABELS[Action(event.action)]), "status": gettext(STATUS_LABELS[appeal.status]),
    }


@get("/appeals/{reference:str}/photos/{sha:str}", opt=roles(*CASE_ROLES), name="appeals-photo")
async def case_photo(request: Request, db_session: Db, settings: Config, reference: FromPath[str], sha: FromPath[str]) -> File:
    appeal = await _visible_case(db_session, reference, _viewer(request))
    path = stored_photo(settings.uploads_dir, sha)
    if path is None or not await ledger.has_photo(db_session, appeal, sha):
        raise NotFoundException
    return File(path=path, media_type="image/jpeg", content_disposition_type="inline", headers={"cache-control": "private, no-store"})


route_handlers = [ledger_list, ledger_export, intake_form, intake_submit, case_detail, case_action, case_photo]
