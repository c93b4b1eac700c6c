"""The station's offline drop-off (docs/sync.md, docs/boards.md "recycling"): the operator weighs and saves
with no network; the drop-off waits in the phone's outbox and is pushed when the network is back, with the
time save was pressed (`recorded_at`), and applied once (its id is the mutation's `entity_id`). The card
number is checked when it arrives: an unknown card is refused (`invalid`, field `card`) and shown to the
operator on the drop-off page.
"""

from __future__ import annotations

from uuid import UUID

import msgspec

from server.i18n import N_
from server.models import RecyclingStation
from server.services import recycling
from server.services.errors import ServiceError
from sync import ops
from sync.ops import Applied, Rejected, Request

STATION_OPERATOR = frozenset({"station_operator"})


class DropoffLine(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    category_id: UUID
    kg: str  # as typed ("3.2"): parsed by the same rules as the form


class DropoffFields(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    station_id: UUID
    card: str  # the card number as typed or scanned
    lines: list[DropoffLine]


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
    "recycling", "dropoff", DropoffFields, STATION_OPERATOR, dropoff, self_contained=True,
    summary="A drop-off weighed at the station (card number, lines of category and kg), at recorded_at; its id is entity_id.",
))
