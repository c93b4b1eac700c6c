"""One rule for which cases a grid worker may see and edit (server/services/appeal_scope.py), as a table:
every combination of (assigned, collected, at a place of the grid / of another grid / nowhere) gives the
same answer as SQL (ledger, case page, pull) and in Python (a phone's edit), and the case page, the
pull, a sync edit and the field app's list of cases to edit follow it."""

from __future__ import annotations

import itertools
import re
from uuid import UUID

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.models import Appeal, AppealChannel, AppealStatus, PlaceKind, Role, SubmitterKind, User
from server.services import accounts, appeal_scope, places
from server.services.appeals import utc_now
from tests.integration.sync_world import Device, push_results

# (assigned to the worker, collected by the worker, where) -> may the worker see and edit it?
WHERE = ("grid", "other_grid", "none")
EXPECTED = {
    (assigned, collected, where): assigned or collected or where == "grid"
    for assigned, collected, where in itertools.product([False, True], [False, True], WHERE)
}


async def _arrange(db: AsyncSession) -> tuple[User, dict[tuple[bool, bool, str], UUID]]:
    sub = await places.create_place(db, kind=PlaceKind.SUBDISTRICT, name="解放路街道")
    community = await places.create_place(db, kind=PlaceKind.COMMUNITY, name="东舍坊社区", parent=sub)
    grid = await places.create_place(db, kind=PlaceKind.GRID, name="东舍坊第一网格", parent=community)
    other = await places.create_place(db, kind=PlaceKind.GRID, name="东舍坊第二网格", parent=community)
    compound = await places.create_place(db, kind=PlaceKind.RESIDENTIAL_COMPOUND, name="东舍坊小区", parent=grid)
    building = await places.create_place(db, kind=PlaceKind.BUSINESS_BUILDING, name="鲁粮集团办公楼", parent=other)
    worker = await accounts.create_user(db, username="wang", password="password-1", role=Role.GRID_WORKER, display_name="王网格", place_id=grid.id)
    colleague = await accounts.create_user(db, username="zhang", password="password-1", role=Role.GRID_WORKER, display_name="张网格", place_id=other.id)
    cases = {}
    now = utc_now()
    for n, key in enumerate(EXPECTED):
        assigned, collected, where = key
        appeal = Appeal(
            reference=f"2026-{n + 1:05d}", tracking_code=f"code-{n}", channel=AppealChannel.VISIT, submitter_kind=SubmitterKind.RESIDENT,
            category="facilities", description="楼道灯坏了三天，晚上很黑", status=AppealStatus.RECEIVED, received_at=now,
            response_due_at=now, resolve_due_at=now, place_id={"grid": compound.id, "other_grid": building.id, "none": None}[where],
            assignee_id=worker.id if assigned else colleague.id, created_by_id=worker.id if collected else colleague.id,
        )
        db.add(appeal)
        await db.flush()
        cases[key] = appeal.id
    await db.commit()
    return worker, cases


async def test_the_rule_is_the_same_in_sql_and_in_python(db: AsyncSession) -> None:
    worker, cases = await _arrange(db)
    grid_places = await appeal_scope.grid_place_ids(db, worker.place_id)
    in_sql = set(await db.scalars(select(Appeal.id).where(appeal_scope.worker_cases(worker.id, worker.place_id))))
    rows = {a.id: a for a in await db.scalars(select(Appeal))}
    for key, appeal_id in cases.items():
        assert (appeal_id in in_sql) is EXPECTED[key], key
        assert appeal_scope.worker_sees(rows[appeal_id], worker.id, grid_places) is EXPECTED[key], key


@pytest.mark.parametrize("key", [k for k in EXPECTED if k[2] == "grid" and not k[0] and not k[1]] + [(False, False, "other_grid")])
async def test_the_case_page_follows_the_rule(key: tuple[bool, bool, str], db: AsyncSession, client, web) -> None:  # type: ignore[no-untyped-def]
    """A case at a place of the worker's grid opens for them (the phone pulls it too); one of another grid does not."""
    worker, cases = await _arrange(db)
    await web.login("wang", "password-1")
    reference = await db.scalar(select(Appeal.reference).where(Appeal.id == cases[key]))
    response = await client.get(f"/appeals/{reference}")
    assert response.status_code == (200 if EXPECTED[key] else 403)


async def test_the_pull_a_sync_edit_and_the_edit_list_follow_the_rule(db: AsyncSession, client, web) -> None:  # type: ignore[no-untyped-def]
    """The phone downloads exactly the cases of the rule, may edit exactly those (the others are
    `forbidden`), and /field/appeals/edit lists exactly those (open ones): not only the worker's own."""
    worker, cases = await _arrange(db)
    allowed = {str(cases[key]) for key in EXPECTED if EXPECTED[key]}
    await web.login("wang", "password-1")
    phone = Device()
    pulled = (await client.get("/sync/pull", headers=phone.headers)).json()
    assert not pulled["more"]
    assert {r["id"] for r in pulled["records"] if r["entity"] == "appeal"} == allowed

    page = await client.get("/field/appeals/edit")
    assert page.status_code == 200
    assert set(re.findall(r'<option value="([0-9a-f-]{36})"', page.text)) == allowed

    edits = {key: phone.mutation("appeal", "update", {"location_detail": "3号楼2单元门口"}, entity_id=cases[key], base_version=1) for key in EXPECTED}
    results = await push_results(client, phone, *edits.values())
    for key, result in zip(edits, results, strict=True):
        if EXPECTED[key]:
            assert result["status"] == "applied", (key, result)
        else:
            assert (result["status"], result["code"]) == ("rejected", "forbidden"), (key, result)
    changed = set(await db.scalars(select(Appeal.id).where(Appeal.location_detail == "3号楼2单元门口").execution_options(populate_existing=True)))
    assert {str(i) for i in changed} == allowed
