"""The wire format of the sync protocol (docs/sync.md), as msgspec structs: decoding is validation."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec

from server.i18n import N_
from server.services.errors import ServiceError

MAX_BATCH = 500

# Result statuses, one per mutation.
APPLIED = "applied"
DUPLICATE = "duplicate"
CONFLICT = "conflict"
REJECTED = "rejected"

# Rejection codes.
INVALID = "invalid"
FORBIDDEN = "forbidden"
NOT_FOUND = "not_found"
PHOTO_MISSING = "photo_missing"
TOO_OLD = "too_old"
CLOCK_AHEAD = "clock_ahead"
UNKNOWN_OPERATION = "unknown_operation"
MALFORMED = "malformed"
# Whole-request codes (besides malformed).
BATCH_TOO_LARGE = "batch_too_large"
DEVICE_BOUND = "device_bound_to_other_user"
RESYNC = "resync"

Seq = Annotated[int, msgspec.Meta(ge=1, le=2**53)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
Stamp = Annotated[str, msgspec.Meta(min_length=20, max_length=96)]


class Mutation(msgspec.Struct, kw_only=True):
    mutation_id: UUID
    device_id: UUID
    seq: Seq
    entity: Name
    entity_id: UUID
    op: Name
    hlc: Stamp
    fields: dict[str, Any] = msgspec.field(default_factory=dict)
    base_version: int | None = None
    recorded_at: datetime | None = None


class PushRequest(msgspec.Struct, kw_only=True):
    device_id: UUID
    mutations: list[Mutation]


class BatchError(ServiceError):
    """The whole batch is refused (nothing applied): `code` is one of the whole-request codes of docs/sync.md;
    the message (a msgid) says why, in the user's language."""

    def __init__(self, code: str, message: str, **params: object) -> None:
        super().__init__(message, **params)
        self.code = code


_AT = re.compile(r" - at `([^`]+)`$")
_MISSING = re.compile(r"missing required field `([^`]+)`")


def _where(error: msgspec.ValidationError) -> str:
    """Where in the body msgspec found the problem, as a JSON path (`$.mutations[0].hlc`)."""
    text = str(error)
    at, missing = _AT.search(text), _MISSING.search(text)
    path = at.group(1) if at else "$"
    return f"{path}.{missing.group(1)}" if missing else path


def decode_push(body: bytes) -> PushRequest:
    """Parse and check a push body; BatchError("malformed") on any shape problem."""
    try:
        batch = msgspec.json.decode(body, type=PushRequest)
    except msgspec.ValidationError as error:
        raise BatchError(MALFORMED, N_("The batch does not have the documented shape (at %(path)s)."), path=_where(error)) from error
    except msgspec.DecodeError as error:
        raise BatchError(MALFORMED, N_("The batch is not JSON.")) from error
    if len(batch.mutations) > MAX_BATCH:
        raise BatchError(BATCH_TOO_LARGE, N_("At most %(n)d changes per batch; send the rest in the next batch."), n=MAX_BATCH)
    last = 0
    for mutation in batch.mutations:
        if mutation.device_id != batch.device_id:
            raise BatchError(MALFORMED, N_("Every change in a batch must carry the batch's device_id."))
        if mutation.seq <= last:
            raise BatchError(MALFORMED, N_("The seq numbers must increase strictly within a batch."))
        last = mutation.seq
    return batch
