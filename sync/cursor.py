"""Pull cursors: opaque to the client, signed by the server, bound to one user and their grid, and expiring.

A cursor holds the change number from which the next pull starts (`low`: every record written by a
transaction numbered `low` or later is delivered again, see server/models/feed.py) and, while a pull
is paged, the watermark it will move to and per entity type the (change_seq, id) of the last record
delivered. Anything the client could forge or keep too long is refused as `CursorError`, which the
route answers with 410 "resync from scratch".
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID

VERSION = 2  # 1: (updated_at, id) marks with a 5-second overlap, which missed slow transactions
MAX_AGE = timedelta(days=7)


class CursorError(Exception):
    """Unknown, tampered with, expired, or someone else's cursor: the client must resync from scratch."""


@dataclass
class Cursor:
    user_id: UUID
    grid_id: UUID | None
    issued_at: datetime
    low: int = 0  # deliver records whose change_seq >= low
    watermark: int | None = None  # while paging: where `low` moves once the last page is out
    # entity -> (change_seq, id) of the last record delivered in this paged pull
    marks: dict[str, tuple[int, UUID]] = field(default_factory=dict)


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
        "l": cursor.low,
        "w": cursor.watermark,
        "m": {entity: [seq, ident.hex] for entity, (seq, ident) in sorted(cursor.marks.items())},
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
            low=int(body["l"]),
            watermark=None if body["w"] is None else int(body["w"]),
            marks={entity: (int(seq), UUID(ident)) for entity, (seq, ident) in body["m"].items()},
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
