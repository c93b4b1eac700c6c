"""晨曦信号's offline operation (docs/sync.md, docs/morning-signal.md): an elder's press of "我很好" made with
no network is queued in the phone's outbox and pushed when a signal returns, with the time it was
pressed (`recorded_at`). The elder has no account: the push carries the personal link's token as its
credential (`X-Shanzhi-Credential: checkin_token <token>`), registered here in the sync op table.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.i18n import N_
from server.models import CheckIn, CheckInMethod, Elder, ElderHelper
from server.services import morning_signal
from server.services.errors import ServiceError
from sync import ops
from sync.ops import Applied, Rejected, Request

CHECKIN_TOKEN = "checkin_token"


class CheckInFields(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Nothing but the press itself: when it was pressed is the mutation's `recorded_at`."""


async def resolve_token(session: AsyncSession, secret: str) -> ops.Sender | None:
    """The elder a check-in link belongs to (None for an unknown, reissued or ended one)."""
    elder = await morning_signal.by_token(session, secret)
    if elder is None:
        return None
    return ops.Sender(id=elder.id, display_name="", role=CHECKIN_TOKEN, credential=f"{CHECKIN_TOKEN}:{elder.id}")


async def press(request: Request) -> Applied:
    elder = await request.session.get(Elder, request.ctx.sender.id)
    if elder is None or elder.ended_at is not None:
        raise Rejected.forbidden(N_("This check-in link is no longer valid."))
    tz = request.ctx.extras["limits"].tz
    try:
        await morning_signal.check_in(request.session, elder, at=request.at, method=CheckInMethod.SELF, by_user_id=None,
                                      now=request.ctx.now(), tz=tz, checkin_id=request.mutation.entity_id)
    except ServiceError as error:
        raise Rejected.invalid([error]) from None
    return Applied(1)


ops.register_credential(CHECKIN_TOKEN, resolve_token)
ops.register(ops.Operation(
    "morning_signal", "checkin", CheckInFields, frozenset({CHECKIN_TOKEN}), press, self_contained=True,
    summary="An elder's morning signal (我很好 · 报平安), pressed at recorded_at; sent with the check-in link as credential.",
))


# --- A helper signalling for an elder of their chain, offline too ---------------------------------------------

GRID_WORKER = frozenset({"grid_worker"})
# Everyone who can be in a chain with an account: the grid worker (field app), the building head and
# volunteers (the board, pwa/js/signals.js).
CHAIN_HELPERS = frozenset({"grid_worker", "building_head", "volunteer"})


class CheckInForFields(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    elder_id: UUID
    method: CheckInMethod  # in_person (见面), phone (电话) or other (其他); never self
    note: str | None = None


async def check_in_for(request: Request) -> Applied:
    """After seeing or calling the elder: a signal on their behalf, at the time it was recorded on the phone."""
    fields: CheckInForFields = request.fields
    if fields.method == CheckInMethod.SELF:
        raise Rejected.invalid([ServiceError(N_("Please choose one of the options."), field="method")])
    in_chain = await request.session.scalar(select(ElderHelper.id).where(
        ElderHelper.elder_id == fields.elder_id, ElderHelper.user_id == request.ctx.sender.id))
    elder = await request.session.get(Elder, fields.elder_id) if in_chain else None
    if elder is None or elder.ended_at is not None:
        raise Rejected.forbidden(N_("You are not in this elder's chain."), field="elder_id")
    try:
        await morning_signal.check_in(request.session, elder, at=request.at, method=fields.method, by_user_id=request.ctx.sender.id,
                                      now=request.ctx.now(), tz=request.ctx.extras["limits"].tz, note=(fields.note or "")[:500],
                                      checkin_id=request.mutation.entity_id)
    except ServiceError as error:
        raise Rejected.invalid([error]) from None
    return Applied(1)


class ElderData(msgspec.Struct):
    name: str
    address: str
    phone: str | None
    window_start: str
    window_end: str
    last_signal_at: str | None


async def _elder_extra(session: AsyncSession, rows: list[Elder], _ctx: ops.Context) -> dict[str, Any]:
    last = dict((await session.execute(
        select(CheckIn.elder_id, func.max(CheckIn.at)).where(CheckIn.elder_id.in_([e.id for e in rows])).group_by(CheckIn.elder_id)
    )).all())
    return {"last": last}


def _elder_data(elder: Elder, _ctx: ops.Context, extra: dict[str, Any]) -> dict[str, Any]:
    last = extra["last"].get(elder.id)
    return {"name": elder.name, "address": elder.address, "phone": elder.phone, "window_start": elder.window_start.strftime("%H:%M"),
            "window_end": elder.window_end.strftime("%H:%M"), "last_signal_at": last.isoformat() if last else None}


ops.register(ops.Operation(
    "morning_signal", "checkin_for", CheckInForFields, CHAIN_HELPERS, check_in_for, self_contained=True,
    summary="A helper's signal on behalf of an elder of their chain (见面 / 电话 / 其他), at recorded_at: grid workers, building heads, volunteers.",
))
# The elders whose chain the worker is in (their chain sees name, address and phone); a check-in moves
# the elder in the change feed (`version`), so the phone learns the last signal.
ops.register_pull(ops.PullSource(
    "elder", GRID_WORKER, Elder,
    lambda ctx, _now: select(Elder).where(Elder.ended_at.is_(None), Elder.id.in_(
        select(ElderHelper.elder_id).where(ElderHelper.user_id == ctx.sender.id))),
    _elder_data, prepare=_elder_extra, schema=ElderData,
))
