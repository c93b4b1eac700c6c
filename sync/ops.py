"""The sync op table: every offline operation and every pull source, registered by its area.

`sync/` owns the protocol, clocks, cursors, receipts, field stamps, conflicts and this table; it
imports no area's services. An area registers what its devices may send (an `Operation`: entity, op
name, field schema, who may send it, the service call) and what they download (a `PullSource`), and
the engine and the pull dispatch through here. docs/sync.md, "How to add a sync operation".
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from server.i18n import N_
from server.services.errors import ServiceError
from sync import protocol as p
from sync.hlc import Clock


@dataclass(frozen=True)
class Sender:
    """Who pushes or pulls: a signed-in user (role, area), or the holder of a credential (kind, subject)."""

    id: UUID
    display_name: str
    role: str  # a Role value, or a credential kind such as "checkin_token"
    area_id: UUID | None = None  # a grid worker's grid, a station operator's compound ...
    # For a credential holder: "<kind>:<subject id>" (an elder's check-in link …); None for a user.
    credential: str | None = None

    @property
    def user_id(self) -> UUID | None:
        """The account behind the sender (receipts, conflicts); None for a credential holder."""
        return None if self.credential else self.id


@dataclass
class Context:
    """One push or pull request: who sends it and what the services it reaches need."""

    sender: Sender
    server_clock: Clock
    now: Callable[[], datetime]
    uploads_dir: Path
    # Area-specific dependencies (time limits ...), filled by the route from the settings.
    extras: dict[str, Any] = field(default_factory=dict)
    user_agent: str | None = None

    @property
    def staging_dir(self) -> Path:
        return self.uploads_dir / "incoming"


class Rejected(Exception):
    """A mutation refused with a code of docs/sync.md and a message (msgid) in ServiceError form."""

    def __init__(self, code: str, error: ServiceError, errors: list[ServiceError] | None = None) -> None:
        super().__init__(error.message)
        self.code = code
        self.error = error
        self.errors = errors or []

    @classmethod
    def invalid(cls, problems: list[ServiceError], prefix: str = "") -> Rejected:
        """Field errors from a service; `prefix` names where they sit in the mutation (appeals.0.)."""
        named = [ServiceError(e.message, field=f"{prefix}{e.field}" if e.field else None, **e.params) for e in problems]
        return cls(p.INVALID, named[0], named)

    @classmethod
    def forbidden(cls, message: str, field: str | None = None) -> Rejected:
        error = ServiceError(message, field=field)
        return cls(p.FORBIDDEN, error, [error] if field else [])


@dataclass
class Applied:
    """What an operation's service call did: the record's version, and a conflict row when it made one."""

    version: int | None
    conflict: Any = None  # a SyncConflict


@dataclass
class Request:
    """One mutation as an operation sees it: decoded fields, when it was recorded, the batch's shared state."""

    session: AsyncSession
    mutation: p.Mutation
    fields: Any  # an instance of the operation's schema
    at: datetime  # recorded_at, checked (not older than 30 days, never in the future)
    ctx: Context
    batch: dict[str, Any]  # per-batch cache the operation's `prepare` filled
    # False on the batch's fast path: the engine flushes the whole batch once, so an operation may add
    # rows without flushing (ids set up front). True when the mutation runs alone in its own savepoint.
    isolated: bool = True


@dataclass(frozen=True)
class Operation:
    entity: str
    op: str
    schema: type[msgspec.Struct]  # the `fields` of the mutation; decoding is validation
    senders: frozenset[str]  # roles (or credential kinds) that may send it
    apply: Callable[[Request], Awaitable[Applied]]
    summary: str  # one line for docs/sync.md and the schema document
    # Loads what a whole batch of this operation needs, set-wise (targets, locks), into the batch cache.
    prepare: Callable[[AsyncSession, list[p.Mutation], Context, dict[str, Any]], Awaitable[None]] | None = None
    # Writes several records and may refuse after the first: always in a savepoint of its own.
    self_contained: bool = False
    # Photo hashes (uploaded before the push) the mutation uses; their staged copies go after commit.
    photos: Callable[[Any], list[str]] = lambda _fields: []


@dataclass(frozen=True)
class PullSource:
    """Records a device downloads: `query` returns a SELECT of rows in the sender's scope (the engine
    adds the change-feed window and the paging); `data` turns a row into the record's `data`."""

    entity: str
    senders: frozenset[str]
    model: Any  # the mapped class (it has `id` and `change_seq`)
    query: Callable[[Context, datetime], Any]
    data: Callable[[Any, Context, dict[str, Any]], dict[str, Any]]
    version: Callable[[Any], int] = lambda row: getattr(row, "version", 1)
    # Loads what a page of rows needs besides the rows (names of related records ...), set-wise.
    prepare: Callable[[AsyncSession, list[Any], Context], Awaitable[dict[str, Any]]] | None = None
    schema: type[msgspec.Struct] | None = None  # the record's `data`, for the schema document


# (session, ctx, the batch cache the operations filled, [(mutation, outcome), ...])
BatchHook = Callable[[AsyncSession, Context, dict[str, Any], list[tuple[p.Mutation, Any]]], Awaitable[None]]

# Credential kinds an area accepts instead of a session (X-Shanzhi-Credential: "<kind> <secret>"): the
# resolver returns the Sender the secret stands for, or None for an unknown or revoked one.
CredentialResolver = Callable[[AsyncSession, str], Awaitable[Sender | None]]
CREDENTIALS: dict[str, CredentialResolver] = {}

OPERATIONS: dict[tuple[str, str], Operation] = {}
PULL_SOURCES: dict[str, PullSource] = {}
AFTER_BATCH: list[BatchHook] = []


def register(operation: Operation) -> Operation:
    key = (operation.entity, operation.op)
    if key in OPERATIONS:
        msg = f"sync operation {key} is registered twice"
        raise ValueError(msg)
    OPERATIONS[key] = operation
    return operation


def register_pull(source: PullSource) -> PullSource:
    if source.entity in PULL_SOURCES:
        msg = f"pull source {source.entity!r} is registered twice"
        raise ValueError(msg)
    PULL_SOURCES[source.entity] = source
    return source


def register_credential(kind: str, resolver: CredentialResolver) -> None:
    if kind in CREDENTIALS:
        msg = f"credential kind {kind!r} is registered twice"
        raise ValueError(msg)
    CREDENTIALS[kind] = resolver


def after_batch(hook: BatchHook) -> BatchHook:
    """Run `hook(session, ctx, cache, [(mutation, outcome), ...])` after a push's mutations, before the commit."""
    AFTER_BATCH.append(hook)
    return hook


def senders() -> frozenset[str]:
    """Every role or credential that may push or pull something."""
    return frozenset(s for op in OPERATIONS.values() for s in op.senders) | frozenset(
        s for source in PULL_SOURCES.values() for s in source.senders
    )


# --- Decoding a mutation's fields into its schema ---------------------------------------------------------

_AT = re.compile(r"at `\$((?:\.[A-Za-z_][A-Za-z0-9_]*|\[\d+\])*)`")
_MISSING = re.compile(r"missing required field `([^`]+)`")


def _field_path(message: str) -> str | None:
    """`$.appeals[0].category` → `appeals.0.category` (how docs/sync.md names a field inside a mutation)."""
    found = _AT.search(message)
    path = found.group(1) if found else ""
    missing = _MISSING.search(message)
    parts = [part for part in re.split(r"\.|\[|\]", path) if part]
    if missing:
        parts.append(missing.group(1))
    return ".".join(parts) or None


def decode_fields(operation: Operation, fields: dict[str, Any]) -> Any:
    """The mutation's fields as the operation's schema; Rejected(invalid) naming the field otherwise."""
    try:
        return msgspec.convert(fields, type=operation.schema, strict=True)
    except msgspec.ValidationError as error:
        text = str(error)
        name = _field_path(text)
        if "Object contains unknown field" in text:
            raise Rejected(p.MALFORMED, ServiceError(N_("This change is damaged and cannot be read."))) from None
        message = N_("Please choose one of the options.") if "Invalid enum value" in text else N_("This value is not valid.")
        problem = ServiceError(message, field=name)
        raise Rejected(p.INVALID, problem, [problem]) from None


def schema_document(operations: Iterable[Operation] | None = None) -> dict[str, Any]:
    """JSON Schema of every registered operation's fields and pull record (served at /sync/schema.json)."""
    ops = list(operations or OPERATIONS.values())
    types = [op.schema for op in ops] + [s.schema for s in PULL_SOURCES.values() if s.schema is not None]
    schemas, components = msgspec.json.schema_components(types, ref_template="#/components/{name}")
    pull_schemas = iter(schemas[len(ops):])
    return {
        "protocol": "docs/sync.md",
        "operations": [
            {"entity": op.entity, "op": op.op, "senders": sorted(op.senders), "summary": op.summary, "fields": schema}
            for op, schema in zip(ops, schemas, strict=False)
        ],
        "pull": [
            {"entity": source.entity, "senders": sorted(source.senders), "data": next(pull_schemas)}
            for source in PULL_SOURCES.values() if source.schema is not None
        ],
        "components": components,
    }
