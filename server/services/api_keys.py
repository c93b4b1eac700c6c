"""Open311 API keys (A9): created by an admin or on the command line, stored only as a SHA-256 hash."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.i18n import N_
from server.models import ApiKey
from server.services.appeals import Clock, utc_now
from server.services.errors import ServiceError

KEY_PREFIX = "sz311_"
KEY_BYTES = 24  # 192 bits
SHOWN_PREFIX_LENGTH = 12  # what the admin page shows to tell keys apart: "sz311_" and six characters
MAX_NAME = 64


def _hash(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


async def create(session: AsyncSession, name: str) -> tuple[ApiKey, str]:
    """A new key for the client called `name`: the row, and the plaintext key, which is never stored."""
    name = (name or "").strip()
    if not name:
        raise ServiceError(N_("Please name the system that will use the key."), field="name")
    if len(name) > MAX_NAME:
        raise ServiceError(N_("Please keep the name under %(n)d characters."), field="name", n=MAX_NAME)
    plaintext = KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)
    key = ApiKey(name=name, prefix=plaintext[:SHOWN_PREFIX_LENGTH], key_hash=_hash(plaintext))
    session.add(key)
    await session.flush()
    return key, plaintext


async def verify(session: AsyncSession, plaintext: str | None) -> ApiKey | None:
    """The active key matching `plaintext`, or None for a missing, unknown or revoked key."""
    if not plaintext or len(plaintext) > 128:
        return None
    digest = _hash(plaintext.strip())
    key = await session.scalar(select(ApiKey).where(ApiKey.key_hash == digest))
    if key is None or key.revoked_at is not None or not hmac.compare_digest(key.key_hash, digest):
        return None
    return key


async def revoke(session: AsyncSession, key_id: UUID, *, clock: Clock = utc_now) -> ApiKey | None:
    """Revoke a key (idempotent); None when there is no such key."""
    key = await session.get(ApiKey, key_id)
    if key is None:
        return None
    if key.revoked_at is None:
        key.revoked_at = clock()
        await session.flush()
    return key


async def list_keys(session: AsyncSession) -> list[ApiKey]:
    return list(await session.scalars(select(ApiKey).order_by(ApiKey.revoked_at.is_not(None), ApiKey.created_at.desc())))
