"""The wire format of the sync protocol (docs/sync.md), as msgspec structs: decoding is validation."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec

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


class BatchError(Exception):
    """The whole batch is refused (nothing applied): `code` is one of the whole-request codes of docs/sync.md."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(detail or code)
        self.code = code
        self.detail = detail


def decode_push(body: bytes) -> PushRequest:
    """Parse and check a push body; BatchError("malformed") on any shape problem."""
    try:
        batch = msgspec.json.decode(body, type=PushRequest)
    except msgspec.ValidationError as error:
        raise BatchError(MALFORMED, str(error)) from error
    except msgspec.DecodeError as error:
        raise BatchError(MALFORMED, "not JSON") from error
    if len(batch.mutations) > MAX_BATCH:
        raise BatchError(BATCH_TOO_LARGE, f"at most {MAX_BATCH} mutations per batch")
    last = 0
    for mutation in batch.mutations:
        if mutation.device_id != batch.device_id:
            raise BatchError(MALFORMED, "every mutation must carry the batch's device_id")
        if mutation.seq <= last:
            raise BatchError(MALFORMED, "seq must increase strictly within a batch")
        last = mutation.seq
    return batch
