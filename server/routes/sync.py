"""The sync API (F5, docs/sync.md): a thin shell over `sync/`. JSON in and out; who may push or pull
what is the op table's (sync/ops.py), filled by the areas (server/services/field_sync.py …).

The one place a route commits itself: a push is answered only after its transaction committed
("acknowledged means committed"), so the commit cannot be left to the response hook."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from litestar import Request, Response, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from sqlalchemy.ext.asyncio import AsyncSession

from server.db import mark_writer
from server.edge import text_body
from server.i18n import gettext as _
from server.security import public, signed_in
from server.services import photos
from server.services.deadlines import TimeLimits
from server.services.errors import ServiceError
from server.settings import Settings
from server.web import current_user
from sync import cursor as cursors
from server.services import field_sync  # registers the field work operations and pull sources
from server.services import morning_signal_sync  # registers the elders' check-in operation and its credential
from server.services import recycling_sync  # registers the station's offline drop-off
from sync import engine, ops
from sync import protocol as p
from sync import pull as pulling
from sync.hlc import Clock

DEVICE_HEADER = "x-shanzhi-device"
MAX_PUSH_BYTES = 10 * 1024 * 1024
MAX_PHOTO_UPLOAD = 6 * 1024 * 1024


def _error(status: int, code: str, message: str) -> Response[dict[str, Any]]:
    return Response({"code": code, "message": message}, status_code=status)


def server_clock(request: Request) -> Clock:
    """One hybrid logical clock per server process."""
    clock = request.app.state.get("sync_clock")
    if clock is None:
        clock = Clock("server")
        request.app.state["sync_clock"] = clock
    return clock


CREDENTIAL_HEADER = "x-shanzhi-credential"


async def _sender(request: Request, session: AsyncSession) -> ops.Sender | None:
    """The signed-in user, or the holder of a credential an area registered (`<kind> <secret>`: an
    elder's check-in link); None for neither."""
    raw = request.headers.get(CREDENTIAL_HEADER)
    if raw:
        kind, _sep, secret = raw.strip().partition(" ")
        resolver = ops.CREDENTIALS.get(kind)
        return await resolver(session, secret.strip()) if resolver else None
    user = current_user(request)
    if user is None:
        return None
    return ops.Sender(id=user.id, display_name=user.display_name, role=user.role.value, area_id=user.place_id)


def _device_id(request: Request) -> UUID | None:
    try:
        return UUID(request.headers.get(DEVICE_HEADER, ""))
    except ValueError:
        return None


def context(request: Request, settings: Settings, sender: ops.Sender) -> ops.Context:
    return ops.Context(
        sender=sender, server_clock=server_clock(request), now=lambda: datetime.now(UTC),
        uploads_dir=settings.uploads_dir, extras={"limits": TimeLimits.from_settings(settings)},
        user_agent=request.headers.get("user-agent"),
    )


def _refusal(request: Request, sender: ops.Sender | None) -> Response[dict[str, Any]] | None:
    """The whole-request checks every sync call shares: an account (or credential) that may sync, a device id."""
    if sender is None and CREDENTIAL_HEADER not in request.headers:
        return _error(401, "not_signed_in", _("Your session has ended. Sign in again to sync."))
    if sender is None or sender.role not in ops.senders():
        return _error(403, p.FORBIDDEN, _("Your account does not use offline sync."))
    if _device_id(request) is None:
        return _error(400, p.MALFORMED, _("Send JSON with the X-Shanzhi-Device header."))
    return None


def _result(outcome: engine.Outcome) -> dict[str, Any]:
    body: dict[str, Any] = {"mutation_id": str(outcome.mutation_id), "status": outcome.status}
    if outcome.version is not None:
        body["version"] = outcome.version
    if outcome.original:
        body["original"] = outcome.original
    if outcome.status == p.REJECTED:
        body["code"] = outcome.code
        body["message"] = outcome.error.translated() if outcome.error else ""
        body["errors"] = {e.field: e.translated() for e in outcome.errors if e.field}
    if outcome.conflict is not None:
        c = outcome.conflict
        detail = c.detail or {}
        reason = detail.get("reason")
        body["conflict"] = {
            "id": str(c.id), "kind": c.kind.value, "fields": c.fields, "applied": c.applied,
            "message": ServiceError(reason, **(detail.get("params") or {})).translated() if reason
            else _("Someone else changed this case while you were offline; both versions are kept for staff."),
        }
    return body


def _meta(request: Request) -> dict[str, str]:
    return {"server_hlc": server_clock(request).tick().pack(), "server_time": datetime.now(UTC).isoformat()}


# Public at the door: a push is from a signed-in user or carries a credential (docs/sync.md, "Authentication").
@post("/sync/push", opt=public() | text_body(MAX_PUSH_BYTES), request_max_body_size=MAX_PUSH_BYTES, status_code=200)
async def push(request: Request, db_session: NamedDependency[AsyncSession], settings: NamedDependency[Settings]) -> Response[dict[str, Any]]:
    sender = await _sender(request, db_session)
    refused = _refusal(request, sender)
    if refused is not None:
        return refused
    if "json" not in request.headers.get("content-type", ""):
        return _error(400, p.MALFORMED, _("Send JSON with the X-Shanzhi-Device header."))
    try:
        batch = p.decode_push(await request.body())
    except p.BatchError as error:
        status = 413 if error.code == p.BATCH_TOO_LARGE else 400
        return _error(status, error.code, error.translated())
    if batch.device_id != _device_id(request):
        return _error(400, p.MALFORMED, _("The batch's device_id is not the one in the X-Shanzhi-Device header."))
    try:
        assert sender is not None
        outcomes = await engine.push(db_session, batch, context(request, settings, sender))
    except engine.DeviceBoundError:
        await db_session.rollback()
        return _error(403, p.DEVICE_BOUND, _("This device is registered to another user. Sign in again to use it."))
    await db_session.commit()  # before answering: a result means committed
    # The photos of what is now stored were linked into uploads/: their staged copies can go.
    used = [sha for m, o in zip(batch.mutations, outcomes, strict=True) if o.status in {p.APPLIED, p.DUPLICATE} for sha in engine.photos_named(m)]
    photos.discard_staged(settings.uploads_dir / "incoming", used)
    return Response({"results": [_result(o) for o in outcomes], **_meta(request)}, status_code=200)


@get("/sync/pull", opt=signed_in())
async def pull(
    request: Request, db_session: NamedDependency[AsyncSession], settings: NamedDependency[Settings],
    cursor: FromQuery[str | None] = None, limit: FromQuery[int] = pulling.DEFAULT_LIMIT,
) -> Response[dict[str, Any]]:
    sender = await _sender(request, db_session) if current_user(request) is not None else None  # a pull needs an account
    refused = _refusal(request, sender)
    if refused is not None:
        return refused
    assert sender is not None
    mark_writer()  # a pull records the device (first contact, last pull time)
    ctx = context(request, settings, sender)
    try:
        device = await engine.bind_device(db_session, _device_id(request), ctx)  # type: ignore[arg-type]
    except engine.DeviceBoundError:
        await db_session.rollback()
        return _error(403, p.DEVICE_BOUND, _("This device is registered to another user. Sign in again to use it."))
    now = datetime.now(UTC)
    try:
        page = await pulling.pull(db_session, ctx, cursor=cursor, secret=settings.secret_key, now=now, limit=limit)
    except cursors.CursorError:
        await db_session.commit()
        return _error(410, p.RESYNC, _("Saved data is out of date; fetching everything again."))
    device.last_pull_at = now
    await db_session.commit()
    return Response(
        {"reset": page.reset, "records": page.records, "cursor": page.cursor, "more": page.more, **_meta(request)},
        headers={"Cache-Control": "no-store"},
    )


@get("/sync/schema.json", opt=public())
async def schema() -> Response[dict[str, Any]]:
    """The field schema of every operation and the data of every pull record (JSON Schema), for clients
    written from docs/sync.md."""
    return Response(ops.schema_document(), headers={"Cache-Control": "no-cache"})


@put("/sync/photos/{sha256:str}", opt=signed_in() | text_body(MAX_PHOTO_UPLOAD), request_max_body_size=MAX_PHOTO_UPLOAD, status_code=201)
async def upload_photo(request: Request, sha256: FromPath[str], settings: NamedDependency[Settings]) -> Response[dict[str, Any]]:
    user = current_user(request)
    sender = ops.Sender(id=user.id, display_name=user.display_name, role=user.role.value) if user is not None else None
    refused = _refusal(request, sender)
    if refused is not None:
        return refused
    try:
        created = await photos.stage_photo(settings.uploads_dir / "incoming", sha256, await request.body())
    except ServiceError as error:
        return _error(400, p.INVALID, error.translated())
    return Response({"sha256": sha256, "stored": created}, status_code=201 if created else 200)


route_handlers = [push, pull, schema, upload_photo]
