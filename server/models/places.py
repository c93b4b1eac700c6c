"""Places as a tree: subdistrict -> community (社区) -> grid (网格) -> place (楼宇, 园区, 小区, 商铺)."""

from __future__ import annotations

import enum
from uuid import UUID

from sqlalchemy import Enum, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.models.base import AuditedBase
from server.models.feed import ChangeFeed


class PlaceKind(enum.StrEnum):
    SUBDISTRICT = "subdistrict"
    COMMUNITY = "community"
    GRID = "grid"
    BUSINESS_BUILDING = "business_building"  # 商务楼宇
    INDUSTRIAL_PARK = "industrial_park"  # 产业园区
    RESIDENTIAL_COMPOUND = "residential_compound"  # 小区
    STREET_SHOP = "street_shop"  # 沿街商铺


LEAF_KINDS = frozenset(
    {
        PlaceKind.BUSINESS_BUILDING,
        PlaceKind.INDUSTRIAL_PARK,
        PlaceKind.RESIDENTIAL_COMPOUND,
        PlaceKind.STREET_SHOP,
    }
)

# The one rule of the tree: which kind may hang under which.
PARENT_KIND: dict[PlaceKind, PlaceKind | None] = {
    PlaceKind.SUBDISTRICT: None,
    PlaceKind.COMMUNITY: PlaceKind.SUBDISTRICT,
    PlaceKind.GRID: PlaceKind.COMMUNITY,
    **{kind: PlaceKind.GRID for kind in LEAF_KINDS},
}


class Place(ChangeFeed, AuditedBase):
    __tablename__ = "place"

    kind: Mapped[PlaceKind] = mapped_column(
        Enum(PlaceKind, native_enum=False, length=32, values_callable=lambda e: [m.value for m in e]),
        index=True,
    )
    name: Mapped[str] = mapped_column(String(120))
    # Short, unambiguous public code for QR links (/suggest/<code>, policy guides).
    code: Mapped[str] = mapped_column(String(12), unique=True)
    parent_id: Mapped[UUID | None] = mapped_column(ForeignKey("place.id", ondelete="RESTRICT"), index=True)
    address: Mapped[str | None] = mapped_column(String(255), default=None)

    parent: Mapped[Place | None] = relationship(remote_side="Place.id", lazy="raise")
