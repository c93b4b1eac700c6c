"""Which cases a grid worker may see and edit: one rule, written once as SQL and once in Python (and a
table test holds them equal, tests/integration/test_appeal_scope.py).

A grid worker sees a case that is assigned to them, that they collected, or that is at a place of
their grid (the grid itself or a place under it). The same rule decides the ledger, the case page,
the sync pull, which cases a worker's phone may edit and the field app's list of them
(/field/appeals/edit); what workflow actions they may take on it
is the transition table's (appeal_workflow: ASSIGNED_WORKER, ASSIGNED_OR_COLLECTING)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, false, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.models import Appeal, Place


def grid_places_clause(grid_id: UUID | None) -> Any:
    """The ids of the grid and the places under it, as a subquery."""
    return select(Place.id).where(or_(Place.id == grid_id, Place.parent_id == grid_id))


async def grid_place_ids(session: AsyncSession, grid_id: UUID | None) -> set[UUID]:
    """The grid itself and the places under it: where its worker works."""
    if grid_id is None:
        return set()
    return set(await session.scalars(grid_places_clause(grid_id)))


def worker_cases(worker_id: UUID, grid_id: UUID | None) -> ColumnElement[bool]:
    """The cases this grid worker may see and edit, as a WHERE condition."""
    in_grid = Appeal.place_id.in_(grid_places_clause(grid_id)) if grid_id is not None else false()
    return or_(Appeal.assignee_id == worker_id, Appeal.created_by_id == worker_id, in_grid)


def worker_sees(appeal: Any, worker_id: UUID, grid_places: Collection[UUID]) -> bool:
    """The same rule for a case already loaded (`grid_places`: grid_place_ids of the worker's grid)."""
    return appeal.assignee_id == worker_id or appeal.created_by_id == worker_id or (
        appeal.place_id is not None and appeal.place_id in grid_places
    )


def responsible_cases(worker_id: UUID) -> ColumnElement[bool]:
    """The worker's own cases (assigned to them, or collected by them): the field home's list."""
    return or_(Appeal.assignee_id == worker_id, Appeal.created_by_id == worker_id)
