"""Accounts: creating users, checking passwords (argon2), and the role catalogue shown to people."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from uuid import UUID

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.i18n import N_
from server.models import Role, User
from server.services.errors import ServiceError

_hasher = PasswordHasher()
# Verified against when the username is unknown, so both paths cost the same argon2 work.
_DUMMY_HASH = _hasher.hash("shanzhi-timing-equaliser")

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,63}$")
MIN_PASSWORD_LENGTH = 8

ROLE_LABELS: dict[Role, str] = {
    Role.ADMIN: N_("Administrator"),
    Role.STAFF: N_("Subdistrict staff"),
    Role.GRID_WORKER: N_("Grid worker"),
    Role.DEPARTMENT: N_("District department"),
    Role.SUPERVISOR: N_("Supervisor"),
    Role.BUILDING_HEAD: N_("Building head"),
    Role.RESIDENT_REP: N_("Resident representative"),
    Role.STATION_OPERATOR: N_("Recycling station operator"),
    Role.CANTEEN_MANAGER: N_("Canteen manager"),
    Role.VOLUNTEER: N_("Volunteer"),
}


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def normalise_username(username: str) -> str:
    return username.strip().lower()


async def get_user_by_username(session: AsyncSession, username: str) -> User | None:
    return await session.scalar(select(User).where(User.username == normalise_username(username)))


async def create_user(
    session: AsyncSession,
    *,
    username: str,
    password: str,
    role: Role,
    display_name: str,
    place_id: UUID | None = None,
    department_id: UUID | None = None,
) -> User:
    username = normalise_username(username)
    if not USERNAME_RE.match(username):
        raise ServiceError(
            N_("A username is 2 to 64 lowercase letters, digits, dots, dashes or underscores."), field="username"
        )
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ServiceError(N_("A password needs at least %(n)d characters."), field="password", n=MIN_PASSWORD_LENGTH)
    if not display_name.strip():
        raise ServiceError(N_("Please enter a display name."), field="display_name")
    if await get_user_by_username(session, username) is not None:
        raise ServiceError(N_("The username %(username)s is taken."), field="username", username=username)
    user = User(
        username=username,
        display_name=display_name.strip(),
        password_hash=hash_password(password),
        role=role,
        place_id=place_id,
        department_id=department_id,
    )
    session.add(user)
    await session.flush()
    return user


async def authenticate(session: AsyncSession, username: str, password: str) -> User | None:
    """The active user with this username and password, or None. Upgrades old hashes on the way."""
    user = await get_user_by_username(session, username)
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.is_active:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = datetime.now(UTC)
    await session.flush()
    return user


async def list_users(session: AsyncSession) -> list[User]:
    return list(await session.scalars(select(User).order_by(User.role, User.username)))
