"""The public suggestion box (A1): anyone, no account; a place's QR code pre-fills the place."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, fields
from typing import Any

from litestar import Request, Response, get, post
from litestar.datastructures import Cookie, FormMultiDict, UploadFile
from litestar.di import NamedDependency
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.params import FromPath
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from server.edge import text_body
from server.i18n import N_, gettext as _
from server.models import AppealChannel, LEAF_KINDS, Place, PlaceKind, SubmitterKind
from server.security import public
from server.services import appeals, places
from server.services.appeal_catalog import categories_for
from server.services.appeals import Actor, AppealInput, InvalidAppeal
from server.services.deadlines import TimeLimits
from server.services.errors import ServiceError, field_errors
from server.services.photos import (
    MAX_PHOTOS, check_photos, discard_staged, is_sha256, process_photos, stage_photo, staged_photo,
)
from server.settings import Settings
from server.throttle import FailureThrottle
from server.web import client_address, redirect, render

# Three photos of at most 5 MB each, plus the text fields and multipart framing.
MAX_BODY = 16 * 1024 * 1024
MAX_TEXT_BODY = 64 * 1024  # a form that is not multipart cannot carry photos: its body is text (server/edge.py)
REFUSED_LIMIT = 60  # refused submissions per client address per hour
RATE_WINDOW = 3600  # seconds: the suggestion-box limit counts submissions per hour
# A crowd on one address (a 民生面对面 event on shared Wi-Fi, a carrier's NAT) is many browsers: the
# strict limit counts per browser (a random cookie, no session and no personal data), and the
# address has only a much higher ceiling. A client without the cookie (a script) is held to the
# strict limit per address. The same text sent again from the same browser within the hour opens
# the case it already made (a double tap, a resend after a weak signal) instead of a second case.
BROWSER_COOKIE = "shanzhi_box"
BROWSER_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
ENTERPRISE_PLACES = LEAF_KINDS - {PlaceKind.RESIDENTIAL_COMPOUND}

AUDIENCES = [
    (SubmitterKind.RESIDENT, N_("Resident")),
    (SubmitterKind.ENTERPRISE, N_("Enterprise")),
]
CATEGORY_GROUPS = [
    (N_("For residents"), categories_for(SubmitterKind.RESIDENT)),
    (N_("For enterprises"), categories_for(SubmitterKind.ENTERPRISE)),
]


@dataclass
class SuggestForm:
    """What the person typed, kept to fill the form again after an error."""

    audience: str = ""
    category: str = ""
    description: str = ""
    submitter_name: str = ""
    submitter_phone: str = ""
    location_detail: str = ""

    @classmethod
    def from_form(cls, form: FormMultiDict) -> SuggestForm:
        values = {f.name: form.get(f.name) for f in fields(cls)}
        return cls(**{name: value if isinstance(value, str) else "" for name, value in values.items()})


def _default_audience(place: Place | None) -> str:
    return (SubmitterKind.ENTERPRISE if place and place.kind in ENTERPRISE_PLACES else SubmitterKind.RESIDENT).value


def _browser(request: Request) -> str | None:
    value = request.cookies.get(BROWSER_COOKIE, "")
    return value if BROWSER_ID.match(value) else None


def _with_browser_cookie(request: Request, response: Any) -> Any:
    """Give this browser its suggestion-box id (a year), unless it has one."""
    if _browser(request) is None:
        response.cookies.append(
            Cookie(key=BROWSER_COOKIE, value=secrets.token_urlsafe(18), max_age=365 * 24 * 3600, httponly=True, samesite="lax", path="/suggest")
        )
    return response


def _form_page(
    request: Request,
    place: Place | None,
    form: SuggestForm,
    *,
    errors: dict[str, str] | None = None,
    kept_photos: list[str] | None = None,
    status_code: int = 200,
) -> Template:
    return _with_browser_cookie(request, render(
        request,
        "suggest/form.html",
        status_code=status_code,
        place=place,
        form=form,
        errors=errors or {},
        kept_photos=kept_photos or [],
        audiences=AUDIENCES,
        category_groups=CATEGORY_GROUPS,
        max_photos=MAX_PHOTOS,
        action=f"/suggest/{place.code}" if place else "/suggest",
    ))


def _unknown_place(request: Request) -> Template:
    return render(request, "suggest/unknown_place.html", status_code=404)


def _too_large(request: Request, _exc: Exception) -> Response[Any]:
    """A body over MAX_BODY cannot be read at all, so the form cannot be kept: say why, link back."""
    return render(request, "suggest/too_large.html", status_code=413, back=request.url.path, max_photos=MAX_PHOTOS)


async def _photos(form: FormMultiDict) -> list[bytes]:
    # A file input left empty arrives as an empty string, not as a file.
    return [await item.read() for item in form.getall("photos", []) if isinstance(item, UploadFile)]


async def _submit(request: Request, db_session: AsyncSession, settings: Settings, place: Place | None) -> Template | Redirect:
    raw = await request.form()
    form = SuggestForm.from_form(raw)
    photos = await _photos(raw)
    store = request.app.stores.get("rate_limit")
    client = client_address(request)
    browser = _browser(request)
    # (throttle, key) pairs that must all have room: per browser plus the address ceiling, or, for a
    # client without the cookie, the strict limit per address.
    if browser:
        limits = [
            (FailureThrottle(store, limit=settings.suggest_rate_limit, window=RATE_WINDOW), f"suggest:browser:{browser}"),
            (FailureThrottle(store, limit=settings.suggest_address_limit, window=RATE_WINDOW), f"suggest:address:{client}"),
        ]
    else:
        limits = [(FailureThrottle(store, limit=settings.suggest_rate_limit, window=RATE_WINDOW), f"suggest:ip:{client}")]
    # A form refused for its text still has its good photos decoded, to keep them for the corrected form
    # (docs/decisions.md #16): refused forms are limited per address too.
    attempts = FailureThrottle(store, limit=REFUSED_LIMIT, window=RATE_WINDOW)
    attempt_key = f"suggest:refused:{client}"
    duplicate_key = f"suggest:sent:{browser}:{hashlib.sha256(' '.join(form.description.split()).encode()).hexdigest()}" if browser else None

    # Photos sent with a form the server refused are kept (staged, processed, by the hash of what was
    # sent) and named in the page it answers with, so the resident need not choose them again.
    staging = settings.uploads_dir / "incoming"
    kept = list(dict.fromkeys(s for s in raw.getall("kept_photos", []) if isinstance(s, str) and is_sha256(s)))[:MAX_PHOTOS]
    kept_photos = [p for p in (staged_photo(staging, sha) for sha in kept) if p is not None]

    async def keep_new_photos() -> list[str]:
        shas = list(kept)
        try:
            check_photos(photos)
        except ServiceError:
            return shas  # not images we accept: nothing to keep
        for data in photos[: MAX_PHOTOS - len(shas)]:
            sha = hashlib.sha256(data).hexdigest()
            try:
                await stage_photo(staging, sha, data)
            except ServiceError:
                continue
            shas.append(sha)
        return shas

    async def again(errors: dict[str, str], status_code: int, *, keep: bool = True) -> Template:
        shas = await keep_new_photos() if keep else kept
        return _form_page(request, place, form, errors=errors, kept_photos=shas, status_code=status_code)

    if duplicate_key and (earlier := await store.get(duplicate_key)) is not None:
        return redirect(f"/track/{earlier.decode()}?new=1")  # sent already: the case it made
    if any([await throttle.is_blocked(key) for throttle, key in limits]) or await attempts.is_blocked(attempt_key):
        return await again({"form": _("You have sent several suggestions in the last hour. Please try again later.")}, 429, keep=False)
    if form.audience not in {kind.value for kind in SubmitterKind}:
        await attempts.record_failure(attempt_key)
        return await again({"audience": _("Please choose whether you write as a resident or an enterprise.")}, 400)
    data = AppealInput(
        channel=AppealChannel.QR if place else AppealChannel.SUGGESTION_BOX,
        submitter_kind=SubmitterKind(form.audience),
        category=form.category,
        description=form.description,
        place_id=place.id if place else None,
        submitter_name=form.submitter_name,
        submitter_phone=form.submitter_phone,
        location_detail=form.location_detail,
    )
    # Everything cheap first (the text, the photos' headers): a form refused anyway never costs a decode.
    problems = appeals.validate_input(data)
    try:
        check_photos(photos)
        if len(photos) + len(kept_photos) > MAX_PHOTOS:
            raise ServiceError(N_("At most %(n)d photos."), field="photos", n=MAX_PHOTOS)
    except ServiceError as error:
        problems.append(error)
    if problems:
        await attempts.record_failure(attempt_key)
        return await again(field_errors(InvalidAppeal(problems)), 400)
    try:
        data.photos = [*kept_photos, *await process_photos(photos)]
        appeal = await appeals.submit(
            db_session, data, actor=Actor.submitter(), limits=TimeLimits.from_settings(settings),
            uploads_dir=settings.uploads_dir,
        )
    except ServiceError as error:
        await attempts.record_failure(attempt_key)
        return await again(field_errors(error), 400)
    # The throttle counts accepted submissions here, not failures: mistakes in the form are free.
    for throttle, key in limits:
        await throttle.record_failure(key)
    if duplicate_key:
        await store.set(duplicate_key, appeal.tracking_code, expires_in=RATE_WINDOW)
    discard_staged(staging, kept)  # their processed copies are stored with the case now
    return redirect(f"/track/{appeal.tracking_code}?new=1")


@get("/suggest", opt=public(), name="suggest")
async def suggest_page(request: Request) -> Template:
    return _form_page(request, None, SuggestForm(audience=_default_audience(None)))


@post(
    "/suggest", opt=public() | text_body(MAX_TEXT_BODY), request_max_body_size=MAX_BODY,
    exception_handlers={RequestEntityTooLarge: _too_large},
)
async def suggest_submit(
    request: Request, db_session: NamedDependency[AsyncSession], settings: NamedDependency[Settings]
) -> Template | Redirect:
    return await _submit(request, db_session, settings, None)


@get("/suggest/{code:str}", opt=public())
async def suggest_place_page(request: Request, code: FromPath[str], db_session: NamedDependency[AsyncSession]) -> Template:
    place = await places.get_place_by_code(db_session, code)
    if place is None:
        return _unknown_place(request)
    return _form_page(request, place, SuggestForm(audience=_default_audience(place)))


@post(
    "/suggest/{code:str}", opt=public() | text_body(MAX_TEXT_BODY), request_max_body_size=MAX_BODY,
    exception_handlers={RequestEntityTooLarge: _too_large},
)
async def suggest_place_submit(
    request: Request, code: FromPath[str], db_session: NamedDependency[AsyncSession], settings: NamedDependency[Settings]
) -> Template | Redirect:
    place = await places.get_place_by_code(db_session, code)
    if place is None:
        return _unknown_place(request)
    return await _submit(request, db_session, settings, place)


route_handlers = [suggest_page, suggest_submit, suggest_place_page, suggest_place_submit]
