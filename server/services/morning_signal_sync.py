"""晨曦信号's offline operation (docs/sync.md, docs/morning-signal.md): an elder's press of "我很好" made with
no network is queued in the phone's outbox and pushed when a signal returns, with the time it was
pressed (`recorded_at`). The elder has no account: the push carries the personal link's token as its
credential (`X-Shanzhi-Credential: checkin_token <token>`), registered here in the sync op table.
"""

from __future__ import annotations

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.i18n import N_
from server.models import CheckInMethod, Elder
from server.services import morning_signal
from server.services.errors import ServiceError
from sync import ops
from sync.ops import Applied, Rejected, Request

CHECKIN_TOKEN = "checkin_token"


class CheckInFields(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Nothing but the press itself: when it was pressed is the mutation's `recorded_at`."""


async def resolve_token(session: AsyncSession, secret: str) -> ops.Sender | None:
    """The elder a check-in link belongs to (None for an unknown, reissued or ended one)."""
    if not 16 <= len(secret) <= 64:
        return None
    elder = await session.scalar(select(Elder).where(Elder.token == secret, Elder.ended_at.is_(None)))
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
