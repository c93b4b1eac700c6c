"""Accounts: staff-side users with exactly one role each (residents and enterprises need none)."""

from __future__ import annotations

import enum
from datetime import datetime
from uuid import UUID

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import Boolean, Enum, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from server.models.base import AuditedBase


class Role(enum.StrEnum):
    ADMIN = "admin"
    STAFF = "staff"
    GRID_WORKER = "grid_worker"
    DEPARTMENT = "department"
    SUPERVISOR = "supervisor"
    BUILDING_HEAD = "building_head"
    RESIDENT_REP = "resident_rep"
    STATION_OPERATOR = "station_operator"
    CANTEEN_MANAGER = "canteen_manager"
    VOLUNTEER = "volunteer"


class User(AuditedBase):
    __tablename__ = "user_account"

    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(
        Enum(Role, native_enum=False, length=32, values_callable=lambda e: [m.value for m in e]),
        index=True,
    )
    # The part of the tree a user works in: a grid for a grid worker, a compound for a building head.
    place_id: Mapped[UUID | None] = mapped_column(ForeignKey("place.id", ondelete="SET NULL"), default=None)
    # For department users: the district department they act for.
    department_id: Mapped[UUID | None] = mapped_column(ForeignKey("department.id", ondelete="SET NULL"), default=None)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
