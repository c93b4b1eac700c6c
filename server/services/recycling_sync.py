"""The station's offline drop-off (docs/sync.md, docs/boards.md "recycling"): the operator weighs and saves
with no network; the drop-off waits in the phone's outbox and is pushed when the network is back, with the
time save was pressed (`recorded_at`), and applied once (its id is the mutation's `entity_id`). The card
number is checked when it arrives: an unknown card is refused (`invalid`, field `card`) and shown to the
operator on the drop-off page.

Lock order (server/services/recycling.py, "Lock order"): a push applies all its drop-offs in one
transaction, so `prepare` locks every station the batch names, in id order, before any household; each
drop-off then locks its station (already held) and its household. Two phones pushing cards A, B and
B, A of one station at once queue up at the station row instead of deadlocking on the households.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.i18n import N_
from server.models import RecyclingStation
from server.services import recycling
from server.services.errors import ServiceError
from sync import ops
from sync import protocol as p
from sync.ops import Applied, Context, Rejected, Request

STATION_OPERATOR = frozenset({"station_operator"})


class DropoffLine(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    category_id: UUID
    kg: str  # as typed ("3.2"): parsed by the same rules as the form


class DropoffFields(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    station_id: UUID
    card: str  # the card number as typed or scanned
    lines: list[DropoffLine]


def _station_id(mutation: p.Mutation) -> UUID | None:
    try:
        return UUID(str(mutation.fields.get("station_id")))
    except ValueError:
        return None


async def prepare(session: AsyncSession, mutations: list[p.Mutation], ctx: Context, _cache: dict[str, Any]) -> None:
    """Lock the batch's stations (those of the sender's compound), in id order, before any household."""
    ids = {station_id for station_id in map(_station_id, mutations) if station_id is not None}
    if ids and ctx.sender.area_id is not None:
        mine = await session.scalars(select(RecyclingStation.id).where(RecyclingStation.id.in_(ids),
                                                                        RecyclingStation.place_id == ctx.sender.area_id))
        await recycling.lock_stations(session, list(mine))


async def dropoff(request: Request) -> Applied:
    fields: DropoffFields = request.fields
    sender = request.ctx.sender
    station = await request.session.get(RecyclingStation, fields.station_id)
    if station is None or station.place_id is None or station.place_id != sender.area_id:
        raise Rejected.forbidden(N_("You do not work at this station."), field="station_id")
    try:
        await recycling.record_dropoff(
            request.session, station, card=fields.card[:32],
            lines=[recycling.LineInput(line.category_id, line.kg[:16]) for line in fields.lines[: recycling.MAX_LINES + 1]],
            at=request.at, by_user_id=sender.user_id, dropoff_id=request.mutation.entity_id,
        )
    except recycling.InvalidRecycling as invalid:
        raise Rejected.invalid(invalid.problems) from None
    except ServiceError as error:
        raise Rejected.invalid([error]) from None
    return Applied(1)


ops.register(ops.Operation(
    "recycling", "dropoff", DropoffFields, STATION_OPERATOR, dropoff, prepare=prepare, self_contained=True,
    summary="A drop-off weighed at the station (card number, lines of category and kg), at recorded_at; its id is entity_id.",
))
