"""Pull cursors: opaque to the client, signed by the server, bound to one user and their grid, and expiring.

A cursor holds, per entity type, the (updated_at, id) of the last record delivered. Anything the
client could forge or keep too long is refused as `CursorError`, which the route answers with
410 "resync from scratch".
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID

VERSION = 1
MAX_AGE = timedelta(days=7)


class CursorError(Exception):
    """Unknown, tampered with, expired, or someone else's cursor: the client must resync from scratch."""


@dataclass
class Cursor:
    user_id: UUID
    grid_id: UUID | None
    issued_at: datetime
    # entity -> (updated_at, id) of the last record delivered
    marks: dict[str, tuple[datetime, UUID]] = field(default_factory=dict)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: str, payload: bytes) -> bytes:
    return hmac.new(secret.encode(), b"shanzhi-sync-cursor:" + payload, hashlib.sha256).digest()[:16]


def encode(cursor: Cursor, secret: str) -> str:
    body = {
        "v": VERSION,
        "u": cursor.user_id.hex,
        "g": cursor.grid_id.hex if cursor.grid_id else "",
        "i": int(cursor.issued_at.timestamp()),
        "m": {entity: [at.isoformat(), ident.hex] for entity, (at, ident) in sorted(cursor.marks.items())},
    }
    payload = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    return f"{_b64(payload)}.{_b64(_sign(secret, payload))}"


def decode(text: str, secret: str, *, user_id: UUID, grid_id: UUID | None, now: datetime) -> Cursor:
    try:
        payload_text, signature_text = text.split(".", 1)
        payload = _unb64(payload_text)
        if not hmac.compare_digest(_unb64(signature_text), _sign(secret, payload)):
            raise CursorError("bad signature")
        body = json.loads(payload)
        if body.get("v") != VERSION:
            raise CursorError("old version")
        cursor = Cursor(
            user_id=UUID(body["u"]),
            grid_id=UUID(body["g"]) if body["g"] else None,
            issued_at=datetime.fromtimestamp(body["i"], UTC),
            marks={entity: (datetime.fromisoformat(at), UUID(ident)) for entity, (at, ident) in body["m"].items()},
        )
    except CursorError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise CursorError("unreadable") from error
    if cursor.user_id != user_id or cursor.grid_id != grid_id:
        raise CursorError("another user's or grid's cursor")
    if now - cursor.issued_at > MAX_AGE:
        raise CursorError("expired")
    return cursor
