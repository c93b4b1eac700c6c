"""Accounts: creating users, checking passwords (argon2), and the role catalogue shown to people."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import cache
from uuid import UUID

from argon2 import PasswordHasher, extract_parameters, profiles
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.i18n import N_
from server.models import Role, User
from server.offloop import Slots
from server.services.errors import ServiceError

# Named argon2 parameter sets (settings.password_hashing). "strong" is RFC 9106's low-memory profile
# (argon2id, 3 passes, 64 MiB, 4 lanes), argon2-cffi's default; "cheapest" exists for test suites only.
# A hash carries its own parameters, so either verifies under any profile; signing in with a hash
# weaker than the configured profile re-hashes it.
HASHING_PROFILES = {"strong": profiles.RFC_9106_LOW_MEMORY, "cheapest": profiles.CHEAPEST}
DEFAULT_HASHING = "strong"
# At most this many hashes at once per process (each "strong" one takes 64 MiB and a core for about
# 0.25 s); one waiting its turn holds no thread (server/offloop.py).
HASH_SLOTS = Slots(2)
_profile = DEFAULT_HASHING


def use_hashing(profile: str) -> None:
    """Hash new passwords with this profile (from settings; create_app and the CLI call it)."""
    global _profile
    if profile not in HASHING_PROFILES:
        msg = f"unknown password hashing profile {profile!r}; one of {', '.join(HASHING_PROFILES)}"
        raise ValueError(msg)
    _profile = profile


@cache
def hasher_for(profile: str) -> PasswordHasher:
    return PasswordHasher.from_parameters(HASHING_PROFILES[profile])


@cache
def _dummy_hash(profile: str) -> str:
    # Verified against when the username is unknown, so both paths cost the same argon2 work.
    return hasher_for(profile).hash("shanzhi-timing-equaliser")


def _hash_blocking(password: str) -> str:
    return hasher_for(_profile).hash(password)


def _verify_blocking(password_hash: str | None, password: str) -> tuple[bool, bool]:
    """(the password matches, the hash should be renewed); runs in a worker thread."""
    hasher = hasher_for(_profile)
    try:
        hasher.verify(password_hash or _dummy_hash(_profile), password)
    except (VerificationError, InvalidHashError):
        return False, False
    return password_hash is not None, password_hash is not None and _weaker_than_configured(password_hash)


def _weaker_than_configured(password_hash: str) -> bool:
    """Renew a hash on sign-in only to make it stronger (a cheaper profile never downgrades a hash)."""
    wanted = HASHING_PROFILES[_profile]
    try:
        has = extract_parameters(password_hash)
    except InvalidHashError:
        return True
    return has.type != wanted.type or has.time_cost < wanted.time_cost or has.memory_cost < wanted.memory_cost

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


async def hash_password(password: str) -> str:
    """An argon2 hash of the password, computed off the event loop (it is CPU work by design)."""
    return await HASH_SLOTS.run(_hash_blocking, password)


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
        password_hash=await hash_password(password),
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
    matches, renew = await HASH_SLOTS.run(_verify_blocking, user.password_hash if user else None, password)
    if not matches or user is None or not user.is_active:
        return None
    if renew:
        user.password_hash = await hash_password(password)
    user.last_login_at = datetime.now(UTC)
    await session.flush()
    return user


async def list_users(session: AsyncSession) -> list[User]:
    return list(await session.scalars(select(User).order_by(User.role, User.username)))
