"""The submitter's tracking page (A6): the public timeline of one case, and the evaluation once it is resolved.

Whoever holds the unguessable tracking code is treated as the submitter. The page shows what happened
and when, never who the submitter is or which staff member acted. `photo_file` also serves the staff
pages' photos.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body, FromPath, FromQuery
from litestar.response import File, Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from server.i18n import N_, gettext as _
from server.models import Appeal, AppealEvent, AppealPhoto, AppealStatus, Evaluation, Place
from server.security import public
from server.services import appeals
from server.services.appeal_catalog import BY_CODE
from server.services.appeal_workflow import ACTION_LABELS, EVALUATION_LABELS, OPEN, STATUS_LABELS, Action
from server.services.appeals import ActionInput, Actor, WorkflowError
from server.services.deadlines import TimeLimits, Urgency
from server.services.errors import ServiceError
from server.services.photos import photo_path
from server.settings import Settings
from server.throttle import FailureThrottle
from server.web import client_address, public_url, redirect, render

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
TIME_FORMAT = "%Y-%m-%d %H:%M"


def photo_file(settings: Settings, sha256: str) -> File:
    """A stored appeal photo as a response; 404 when the hash is malformed or the file is missing.

    Callers decide who may see which photo; this only reads the file.
    """
    if not SHA256_RE.match(sha256):
        raise NotFoundException
    path = photo_path(settings.uploads_dir, sha256)
    if not path.is_file():
        raise NotFoundException
    # Content-addressed: the bytes behind a hash never change. Private: never kept by shared caches.
    return File(path=path, media_type="image/jpeg", content_disposition_type="inline",
                headers={"Cache-Control": "private, max-age=604800, immutable"})


@dataclass(frozen=True)
class Step:
    at: str
    action: str  # msgid
    status: str | None  # msgid
    note: str | None
    departments: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Deadline:
    label: str  # msgid
    due: str
    left: str | None
    urgency: Urgency


@dataclass
class EvaluateForm:
    evaluation: str = ""
    comment: str = ""


def _local(moment: datetime, settings: Settings) -> str:
    return moment.astimezone(settings.tz).strftime(TIME_FORMAT)


def _left(delta: timedelta) -> str | None:
    if delta <= timedelta(0):
        return None
    hours, rest = divmod(int(delta.total_seconds()), 3600)
    days, hours = divmod(hours, 24)
    if days:
        return _("%(days)d days %(hours)d hours left") % {"days": days, "hours": hours}
    return _("%(hours)d hours %(minutes)d minutes left") % {"hours": hours, "minutes": rest // 60}


def _steps(events: list[AppealEvent], settings: Settings) -> list[Step]:
    steps = []
    for event in events:
        data = event.data or {}
        departments = [data["department"]] if data.get("department") else list(data.get("departments") or [])
        steps.append(
            Step(
                at=_local(event.at, settings),
                action=ACTION_LABELS.get(Action(event.action), event.action),
                status=STATUS_LABELS[event.to_status] if event.to_status and event.to_status != event.from_status else None,
                note=event.note if event.note_public else None,  # internal notes stay on staff pages
                departments=departments,
            )
        )
    return steps


def _deadlines(appeal: Appeal, settings: Settings) -> list[Deadline]:
    """Time left for an open case: first response while nobody has responded, then resolution."""
    if appeal.status not in OPEN:
        return []
    limits = TimeLimits.from_settings(settings)
    now = appeals.utc_now()
    rows = []
    if appeal.first_response_at is None:
        rows.append((N_("Respond by"), appeal.response_due_at))
    rows.append((N_("Resolve by"), appeal.resolve_due_at))
    return [
        Deadline(label, _local(due, settings), _left(due - now), limits.urgency(appeal.received_at, due, None, now))
        for label, due in rows
    ]


async def _submitted_photos(db_session: AsyncSession, appeal: Appeal, events: list[AppealEvent]) -> list[AppealPhoto]:
    """Only the photos the submitter sent with the case; photos staff attach later stay on staff pages."""
    submitted = {event.id for event in events if event.action == Action.SUBMIT}
    return [photo for photo in await appeals.photos_of(db_session, appeal.id) if photo.event_id in submitted]


def _not_found(request: Request) -> Template:
    return render(request, "track/not_found.html", status_code=404)


async def _page(
    request: Request,
    db_session: AsyncSession,
    settings: Settings,
    appeal: Appeal,
    *,
    new: bool = False,
    form: EvaluateForm | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    events = await appeals.timeline(db_session, appeal.id, public_only=True)
    evaluated = appeal.status in {AppealStatus.EVALUATED, AppealStatus.CLOSED}
    place = await db_session.get(Place, appeal.place_id) if appeal.place_id else None
    category = BY_CODE.get(appeal.category)
    response = render(
        request,
        "track/case.html",
        status_code=status_code,
        appeal=appeal,
        new=new,
        tracking_url=public_url(request, f"/track/{appeal.tracking_code}"),
        place=place,
        category_label=category.label if category else appeal.category,
        status_label=STATUS_LABELS[appeal.status],
        steps=_steps(events, settings),
        deadlines=_deadlines(appeal, settings),
        photos=await _submitted_photos(db_session, appeal, events),
        evaluations=EVALUATION_LABELS,
        own_label=EVALUATION_LABELS[appeal.resident_evaluation] if evaluated and appeal.resident_evaluation else None,
        visit_label=EVALUATION_LABELS[appeal.visit_evaluation] if evaluated and appeal.visit_evaluation else None,
        sent_back=appeal.evaluation is Evaluation.UNSATISFIED and appeal.status in OPEN,
        # The resident gives or changes their own evaluation until the case is closed.
        can_evaluate=appeal.status in {AppealStatus.RESOLVED, AppealStatus.EVALUATED},
        form=form or EvaluateForm(evaluation=appeal.resident_evaluation.value if evaluated and appeal.resident_evaluation else ""),
        errors=errors or {},
        Urgency=Urgency,
        AppealStatus=AppealStatus,
    )
    response.headers["X-Robots-Tag"] = "noindex"
    return response


@get("/track/{code:str}", opt=public(), name="track")
async def track_page(
    request: Request,
    code: FromPath[str],
    db_session: NamedDependency[AsyncSession],
    settings: NamedDependency[Settings],
    new: FromQuery[bool] = False,
) -> Template:
    appeal = await appeals.get_by_tracking_code(db_session, code)
    if appeal is None:
        return _not_found(request)
    return await _page(request, db_session, settings, appeal, new=new)


@post("/track/{code:str}/evaluate", opt=public())
async def evaluate(
    request: Request,
    code: FromPath[str],
    db_session: NamedDependency[AsyncSession],
    settings: NamedDependency[Settings],
    data: Annotated[EvaluateForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Template | Redirect:
    appeal = await appeals.get_by_tracking_code(db_session, code)
    if appeal is None:
        return _not_found(request)
    choice = Evaluation(data.evaluation) if data.evaluation in {e.value for e in Evaluation} else None
    try:
        await appeals.act(
            db_session, appeal, Action.EVALUATE, Actor.submitter(), ActionInput(note=data.comment, evaluation=choice),
            limits=TimeLimits.from_settings(settings),
        )
    except ServiceError as error:
        status_code = 409 if isinstance(error, WorkflowError) else 400
        errors = {error.field or "form": error.translated()}
        return await _page(request, db_session, settings, appeal, form=data, errors=errors, status_code=status_code)
    return redirect(f"/track/{appeal.tracking_code}#evaluation")


@get("/track/{code:str}/photos/{sha:str}", opt=public())
async def track_photo(
    code: FromPath[str], sha: FromPath[str], db_session: NamedDependency[AsyncSession], settings: NamedDependency[Settings]
) -> File:
    appeal = await appeals.get_by_tracking_code(db_session, code)
    if appeal is None:
        raise NotFoundException
    events = await appeals.timeline(db_session, appeal.id, public_only=True)
    if sha not in {photo.sha256 for photo in await _submitted_photos(db_session, appeal, events)}:
        raise NotFoundException
    return photo_file(settings, sha)


# Guessing a 查询码 (10^6 values) stays infeasible: each reference takes at most
# FIND_LIMIT_PER_CASE wrong codes a day, and each client FIND_LIMIT_PER_CLIENT an hour, whichever
# comes first (docs/appeals.md, "Case number and 查询码"). A right code does not reset them.
FIND_LIMIT_PER_CASE = 10
FIND_WINDOW_PER_CASE = 24 * 3600
FIND_LIMIT_PER_CLIENT = 20
FIND_WINDOW_PER_CLIENT = 3600
REFERENCE_RE = re.compile(r"^\d{4}-\d{5,}$")


@dataclass
class FindForm:
    reference: str = ""
    query_code: str = ""


def _find_page(request: Request, form: FindForm, errors: dict[str, str] | None = None, status_code: int = 200) -> Template:
    # A public form, found by search engines (the case pages behind it are noindex).
    return render(request, "track/find.html", form=form, errors=errors or {}, status_code=status_code)


@get("/track", opt=public(), name="track-find")
async def find_page(request: Request) -> Template:
    return _find_page(request, FindForm())


@post("/track", opt=public())
async def find_case(
    request: Request,
    db_session: NamedDependency[AsyncSession],
    data: Annotated[FindForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Template | Redirect:
    """The case number and its 查询码 open the tracking page. Wrong codes are counted per reference and
    per client; past either limit the answer is "try later", whatever the code."""
    form = FindForm(reference=data.reference.strip().replace("－", "-").replace(" ", ""), query_code=re.sub(r"\s", "", data.query_code))
    errors: dict[str, str] = {}
    if not REFERENCE_RE.match(form.reference):
        errors["reference"] = _("Enter the case number as written on your receipt, e.g. 2026-00042.")
    if not re.fullmatch(r"\d{%d}" % appeals.QUERY_CODE_DIGITS, form.query_code):
        errors["query_code"] = _("Enter the %(n)d-digit query code.") % {"n": appeals.QUERY_CODE_DIGITS}
    if errors:
        return _find_page(request, form, errors, status_code=400)
    store = request.app.stores.get("rate_limit")
    per_case = FailureThrottle(store, limit=FIND_LIMIT_PER_CASE, window=FIND_WINDOW_PER_CASE)
    per_client = FailureThrottle(store, limit=FIND_LIMIT_PER_CLIENT, window=FIND_WINDOW_PER_CLIENT)
    case_key = f"track:case:{form.reference}"
    client_key = f"track:ip:{client_address(request)}"
    if await per_case.is_blocked(case_key) or await per_client.is_blocked(client_key):
        message = _("Too many wrong query codes. Please try again tomorrow, or call the subdistrict office with your case number.")
        return _find_page(request, form, {"form": message}, status_code=429)
    appeal = await appeals.get_by_reference_and_query_code(db_session, form.reference, form.query_code)
    if appeal is None:
        await per_case.record_failure(case_key)
        await per_client.record_failure(client_key)
        message = _("No case matches this number and query code. Check both and try again.")
        return _find_page(request, form, {"form": message}, status_code=404)
    return redirect(f"/track/{appeal.tracking_code}")


route_handlers = [find_page, find_case, track_page, evaluate, track_photo]
