"""The place tree: creating places under the right parent, public codes, and reading subtrees."""

from __future__ import annotations

import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.i18n import N_
from server.models import PARENT_KIND, Place, PlaceKind
from server.services.errors import ServiceError

# No 0/O, 1/I/L: codes are read off posters and typed on phones.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 6

PLACE_KIND_LABELS: dict[PlaceKind, str] = {
    PlaceKind.SUBDISTRICT: N_("Subdistrict"),
    PlaceKind.COMMUNITY: N_("Community"),
    PlaceKind.GRID: N_("Grid"),
    PlaceKind.BUSINESS_BUILDING: N_("Business building"),
    PlaceKind.INDUSTRIAL_PARK: N_("Industrial park"),
    PlaceKind.RESIDENTIAL_COMPOUND: N_("Residential compound"),
    PlaceKind.STREET_SHOP: N_("Street-front shops"),
}


def new_place_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(code: str) -> str:
    return code.strip().upper()


async def get_place_by_code(session: AsyncSession, code: str) -> Place | None:
    return await session.scalar(select(Place).where(Place.code == normalise_code(code)))


async def create_place(
    session: AsyncSession,
    *,
    kind: PlaceKind,
    name: str,
    parent: Place | None = None,
    address: str | None = None,
    code: str | None = None,
) -> Place:
    expected_parent = PARENT_KIND[kind]
    if (parent.kind if parent else None) != expected_parent:
        raise ServiceError(N_("This kind of place cannot be placed there in the tree."), field="parent")
    if not name.strip():
        raise ServiceError(N_("Please enter a name."), field="name")
    if code is None:
        code = new_place_code()
        while await get_place_by_code(session, code) is not None:
            code = new_place_code()
    elif await get_place_by_code(session, code) is not None:
        raise ServiceError(N_("The code %(code)s is already used."), field="code", code=code)
    place = Place(
        kind=kind,
        name=name.strip(),
        parent_id=parent.id if parent else None,
        address=address,
        code=normalise_code(code),
    )
    session.add(place)
    await session.flush()
    return place


@dataclass
class PlaceNode:
    place: Place
    children: list[PlaceNode] = field(default_factory=list)

    def count(self, *kinds: PlaceKind) -> int:
        """How many places of these kinds are below this node (the node itself not counted)."""
        return sum((child.place.kind in kinds) + child.count(*kinds) for child in self.children)


async def place_tree(session: AsyncSession, root_id: UUID | None = None) -> list[PlaceNode]:
    """The whole tree (or the subtree under root_id) in one query, children sorted by name."""
    places = list(await session.scalars(select(Place).order_by(Place.name)))
    by_parent: dict[UUID | None, list[Place]] = defaultdict(list)
    for place in places:
        by_parent[place.parent_id].append(place)

    def build(place: Place) -> PlaceNode:
        return PlaceNode(place, [build(child) for child in by_parent[place.id]])

    if root_id is None:
        return [build(place) for place in by_parent[None]]
    root = next((p for p in places if p.id == root_id), None)
    return [build(root)] if root else []
