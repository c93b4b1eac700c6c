"""A small subdistrict for sync tests: two grids, three grid workers, staff; and a device that makes mutations
the way the browser outbox does (its own ids, per-device seq, a hybrid logical clock)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from server.db import make_alchemy_config, session_scope
from server.models import Place, PlaceKind, Role
from server.services import accounts, places
from server.settings import Settings
from sync.hlc import Clock

PASSWORD = "sync-test-password"


@dataclass
class World:
    grid: Place
    compound: Place
    shop: Place
    other_grid: Place
    building: Place
    users: dict[str, UUID]  # username -> id: grid, grid2 (same grid), other (grid 2), staff


async def build_world(session: AsyncSession) -> World:
    sub = await places.create_place(session, kind=PlaceKind.SUBDISTRICT, name="解放路街道", parent=None)
    community = await places.create_place(session, kind=PlaceKind.COMMUNITY, name="东舍坊社区", parent=sub)
    grid = await places.create_place(session, kind=PlaceKind.GRID, name="东舍坊第一网格", parent=community)
    other_grid = await places.create_place(session, kind=PlaceKind.GRID, name="东舍坊第二网格", parent=community)
    compound = await places.create_place(session, kind=PlaceKind.RESIDENTIAL_COMPOUND, name="东舍坊小区", parent=grid)
    shop = await places.create_place(session, kind=PlaceKind.STREET_SHOP, name="解放路沿街商铺", parent=grid)
    building = await places.create_place(session, kind=PlaceKind.BUSINESS_BUILDING, name="鲁粮集团办公楼", parent=other_grid)
    users = {}
    for username, name, role, place in [
        ("grid", "王网格", Role.GRID_WORKER, grid),
        ("grid2", "张网格", Role.GRID_WORKER, grid),
        ("other", "赵网格", Role.GRID_WORKER, other_grid),
        ("staff", "李主任", Role.STAFF, sub),
    ]:
        user = await accounts.create_user(
            session, username=username, password=PASSWORD, role=role, display_name=name, place_id=place.id
        )
        users[username] = user.id
    return World(grid, compound, shop, other_grid, building, users)


async def make_world(settings: Settings) -> World:
    config = make_alchemy_config(settings)
    try:
        async with session_scope(config) as session:
            return await build_world(session)
    finally:
        await config.get_engine().dispose()


@dataclass
class Device:
    """A phone: makes mutations like pwa/js/outbox.js does."""

    id: UUID = field(default_factory=uuid.uuid4)
    seq: int = 0
    clock: Clock | None = None

    def __post_init__(self) -> None:
        if self.clock is None:
            self.clock = Clock(str(self.id))

    def mutation(
        self, entity: str, op: str, fields: dict[str, Any], *, entity_id: UUID | None = None,
        base_version: int | None = None, recorded_at: datetime | None = None,
    ) -> dict[str, Any]:
        assert self.clock is not None
        self.seq += 1
        return {
            "mutation_id": str(uuid.uuid4()),
            "device_id": str(self.id),
            "seq": self.seq,
            "entity": entity,
            "entity_id": str(entity_id or uuid.uuid4()),
            "op": op,
            "fields": fields,
            "base_version": base_version,
            "hlc": self.clock.tick().pack(),
            "recorded_at": (recorded_at or datetime.now(UTC)).isoformat(),
        }

    def batch(self, *mutations: dict[str, Any]) -> dict[str, Any]:
        return {"device_id": str(self.id), "mutations": list(mutations)}

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Shanzhi-Device": str(self.id)}


def appeal_fields(description: str = "楼道灯坏了三天，晚上很黑", *, place: Place | None = None, **extra: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "submitter_kind": "resident",
        "category": "facilities",
        "description": description,
        "place_id": str(place.id) if place else None,
        "photos": [],
    }
    fields.update(extra)
    return fields


async def push_results(client: Any, device: Any, *mutations: dict[str, Any]) -> list[dict[str, Any]]:
    """`mutations` pushed as one batch of `device` through the app; the per-mutation results (the push must answer 200)."""
    response = await client.post("/sync/push", json=device.batch(*mutations), headers=device.headers)
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results
