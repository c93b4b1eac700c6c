"""政策上门 through the sync API (docs/sync.md 1.1, docs/policies.md): the pull carries the worker's
enterprises and the published policies, a visit pushes policies to an enterprise once whatever the
retries, off-match pushes from an older phone copy are kept and flagged, scope is enforced, and the
reach figures and the worker's work list follow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.models import Enterprise, Policy, PolicyPush, Visit
from server.services import credit_code, enterprises, policies
from server.services.policies import PolicyContent
from server.settings import Settings
from tests.helpers import Web
from tests.integration.sync_world import PASSWORD, Device, World, make_world
from tests.integration.sync_world import push_results as _push


def code(n: int) -> str:
    return credit_code.make_code("9", "1", "370102", credit_code.organisation_code(f"{n:08d}"))


def content(title: str, **extra: object) -> PolicyContent:
    return PolicyContent(
        title=title, summary="示例", category="employment", conditions=["在历下区注册"], steps=["提交申请"],
        materials=["营业执照"], long_term="deadline" not in extra, department="历下区人社局", phone="0531-88888888",
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture
async def world(settings: Settings) -> World:
    return await make_world(settings)


@pytest.fixture
async def registry(world: World, db: AsyncSession) -> dict[str, UUID]:
    """Two shops in the worker's grid, one firm in the other grid; four policies (one for shops, one for
    IT firms, one for everyone, one still a draft)."""
    now = datetime.now(UTC)
    made: dict[str, UUID] = {}
    for name, (place, industry, stage, key) in {
        "面馆": (world.shop, "H", "new", True), "小超市": (world.shop, "F", "growing", False), "软件公司": (world.building, "I", "growing", True),
    }.items():
        e = await enterprises.save(db, enterprises.EnterpriseInput(
            credit_code=code(len(made) + 1), name=name, industry=industry, size="micro", stage=stage, place_id=place.id, is_key=key))
        made[name] = e.id
    for title, extra in {"沿街商铺补贴": {"place_kinds": ["street_shop"]}, "软件企业奖励": {"industries": ["I"]}, "稳岗返还": {}}.items():
        policy = await policies.create_draft(db, content(title, **extra))
        await policies.publish(db, policy, actor_id=None, now=now)
        made[title] = policy.id
    made["草稿政策"] = (await policies.create_draft(db, content("草稿政策"))).id
    await db.commit()
    return made



async def _pull(client: AsyncTestClient, device: Device) -> list[dict]:
    response = await client.get("/sync/pull", headers=device.headers)
    assert response.status_code == 200, response.text
    return response.json()["records"]


def visit(device: Device, enterprise: UUID, policy_ids: list[UUID], **extra: object) -> dict:
    fields = {"subject_kind": "enterprise", "subject_name": "", "purpose": "first", "enterprise_id": str(enterprise),
              "policy_ids": [str(p) for p in policy_ids], "appeals": [], **extra}
    return device.mutation("visit", "create", fields)


async def test_the_pull_carries_the_workers_enterprises_and_the_published_policies(
    client: AsyncTestClient, web: Web, world: World, registry: dict[str, UUID]
) -> None:
    await web.login("grid", PASSWORD)
    records = await _pull(client, Device())
    names = {r["data"]["name"] for r in records if r["entity"] == "enterprise"}
    assert names == {"面馆", "小超市"}  # the firm in the other grid is not this worker's
    shop = next(r for r in records if r["entity"] == "enterprise" and r["data"]["name"] == "面馆")
    assert shop["data"]["place_kind"] == "street_shop" and shop["data"]["pushed_policy_ids"] == []
    titles = {r["data"]["title"] for r in records if r["entity"] == "policy"}
    assert titles == {"沿街商铺补贴", "软件企业奖励", "稳岗返还"}  # never a draft
    shops_policy = next(r for r in records if r["entity"] == "policy" and r["data"]["title"] == "沿街商铺补贴")
    assert shops_policy["data"]["place_kinds"] == ["street_shop"] and shops_policy["data"]["industries"] == []


async def test_a_visit_pushes_two_policies_once_whatever_the_retries(
    client: AsyncTestClient, web: Web, world: World, registry: dict[str, UUID], db: AsyncSession
) -> None:
    await web.login("grid", PASSWORD)
    phone = Device()
    await _pull(client, phone)
    mutation = visit(phone, registry["面馆"], [registry["沿街商铺补贴"], registry["稳岗返还"]])
    assert [r["status"] for r in await _push(client, phone, mutation)] == ["applied"]
    assert [r["status"] for r in await _push(client, phone, mutation)] == ["duplicate"]
    rows = list(await db.scalars(select(PolicyPush).where(PolicyPush.enterprise_id == registry["面馆"])))
    assert {r.policy_id for r in rows} == {registry["沿街商铺补贴"], registry["稳岗返还"]} and all(r.matched for r in rows)
    saved = await db.get(Visit, UUID(mutation["entity_id"]))
    assert saved is not None and saved.subject_name == "面馆" and saved.enterprise_id == registry["面馆"]
    assert saved.place_id == world.shop.id  # the enterprise's place, since the phone sent none
    # The next pull tells the phone what was pushed, so its work list drops the shop.
    records = await _pull(client, phone)
    shop = next(r for r in records if r["entity"] == "enterprise" and r["data"]["name"] == "面馆")
    assert set(shop["data"]["pushed_policy_ids"]) == {str(registry["沿街商铺补贴"]), str(registry["稳岗返还"])}
    assert shop["data"]["last_visited_at"] is not None
    reach = {r.policy.title: r for r in await policies.reach(db, today=datetime.now(UTC).date())}
    assert (reach["沿街商铺补贴"].matched, reach["沿街商铺补贴"].pushed) == (2, 1)
    assert (reach["稳岗返还"].matched, reach["稳岗返还"].pushed) == (3, 1)


async def test_an_off_match_push_from_an_older_copy_is_kept_and_flagged(
    client: AsyncTestClient, web: Web, world: World, registry: dict[str, UUID], db: AsyncSession
) -> None:
    await web.login("grid", PASSWORD)
    phone = Device()
    mutation = visit(phone, registry["小超市"], [registry["软件企业奖励"]], policy_reasons={str(registry["软件企业奖励"]): "老板在筹备软件业务"})
    assert [r["status"] for r in await _push(client, phone, mutation)] == ["applied"]
    row = await db.scalar(select(PolicyPush).where(PolicyPush.enterprise_id == registry["小超市"]))
    assert row is not None and row.matched is False and row.reason == "老板在筹备软件业务"
    reach = {r.policy.title: r for r in await policies.reach(db, today=datetime.now(UTC).date())}
    assert reach["软件企业奖励"].off_match == 1


async def test_scope_and_unknown_policies_are_refused_and_nothing_is_written(
    client: AsyncTestClient, web: Web, world: World, registry: dict[str, UUID], db: AsyncSession
) -> None:
    await web.login("grid", PASSWORD)
    phone = Device()
    other_grid = await _push(client, phone, visit(phone, registry["软件公司"], [registry["稳岗返还"]]))
    assert other_grid[0]["status"] == "rejected" and other_grid[0]["code"] == "forbidden"
    assert "enterprise_id" in other_grid[0]["errors"]
    draft = await _push(client, phone, visit(phone, registry["面馆"], [registry["草稿政策"]]))
    assert draft[0]["status"] == "rejected" and draft[0]["code"] == "invalid"
    assert "policy_ids" in draft[0]["errors"]
    assert await db.scalar(select(func.count()).select_from(PolicyPush)) == 0
    assert await db.scalar(select(func.count()).select_from(Visit)) == 0


async def test_the_work_list_follows_new_policies_and_visits(world: World, registry: dict[str, UUID], db: AsyncSession) -> None:
    """Key and newly registered enterprises never visited, or with matching policies not pushed yet."""
    worker = world.users["grid"]
    grid = {world.grid.id, world.shop.id, world.compound.id}
    today = datetime.now(UTC).date()
    items, total = await enterprises.work_list(db, worker, grid, today)
    assert [(i.enterprise.name, i.never_visited, i.unpushed_count) for i in items] == [("面馆", True, 2)] and total == 1
    shop = await db.get(Enterprise, registry["面馆"])
    assert shop is not None
    await enterprises.push(db, shop, [enterprises.PushInput(registry["沿街商铺补贴"]), enterprises.PushInput(registry["稳岗返还"])],
                           actor_id=worker, at=datetime.now(UTC))
    # Pushed from the office: nothing left to push, but the shop was never visited.
    assert [(i.never_visited, i.unpushed_count) for i in (await enterprises.work_list(db, worker, grid, today))[0]] == [(True, 0)]
    shop.last_visited_at = datetime.now(UTC)
    assert await enterprises.work_list(db, worker, grid, today) == ([], 0)
    # Staff publish a new policy for shops: the shop is back on the list, with that one policy.
    policy = await policies.create_draft(db, content("商铺消费券", place_kinds=["street_shop"]))
    await policies.publish(db, policy, actor_id=None, now=datetime.now(UTC))
    items, _total = await enterprises.work_list(db, worker, grid, today)
    assert [(i.enterprise.name, [p.title for p in i.unpushed]) for i in items] == [("面馆", ["商铺消费券"])]
    # An expired policy is not work to do.
    stale = await policies.create_draft(db, content("过期政策", deadline=(today - timedelta(days=1)).isoformat()))
    await policies.publish(db, stale, actor_id=None, now=datetime.now(UTC))
    assert [p.title for p in (await enterprises.work_list(db, worker, grid, today))[0][0].unpushed] == ["商铺消费券"]
    assert await db.scalar(select(func.count()).select_from(Policy)) == 6


async def test_a_worker_records_an_outcome_offline_and_the_reach_counts_it(
    client: AsyncTestClient, web: Web, world: World, registry: dict[str, UUID], db: AsyncSession
) -> None:
    await web.login("grid", PASSWORD)
    phone = Device()
    await _push(client, phone, visit(phone, registry["面馆"], [registry["沿街商铺补贴"]]))
    records = await _pull(client, phone)
    pushed = next(r for r in records if r["entity"] == "policy_push")
    assert pushed["data"]["outcome"] == "pushed" and pushed["data"]["policy_id"] == str(registry["沿街商铺补贴"])
    push_id = UUID(pushed["id"])

    # Granted without an amount: refused, with the field named; nothing recorded.
    refused = await _push(client, phone, phone.mutation("policy_push", "outcome", {"outcome": "granted"}, entity_id=push_id,
                                                        base_version=pushed["version"]))
    assert refused[0]["status"] == "rejected" and "amount" in refused[0]["errors"]
    granted_at = datetime.now(UTC) - timedelta(hours=2)
    done = await _push(client, phone, phone.mutation("policy_push", "outcome", {"outcome": "granted", "amount_yuan": 30000, "note": "已到账"},
                                                     entity_id=push_id, base_version=pushed["version"], recorded_at=granted_at))
    assert done[0]["status"] == "applied"
    reach = {r.policy.title: r for r in await policies.reach(db, today=datetime.now(UTC).date())}
    assert (reach["沿街商铺补贴"].granted, reach["沿街商铺补贴"].amount_yuan) == (1, 30000)

    # An older outcome from another phone (recorded before the grant, sent after) does not undo it: kept as a conflict.
    other = Device()
    late = await _push(client, other, other.mutation("policy_push", "outcome", {"outcome": "applied"}, entity_id=push_id,
                                                     base_version=pushed["version"], recorded_at=granted_at - timedelta(hours=1)))
    assert late[0]["status"] == "conflict"
    db.expire_all()
    row = await db.get(PolicyPush, push_id)
    assert row is not None and row.outcome.value == "granted" and row.amount_yuan == 30000


async def test_outcomes_only_for_the_workers_own_enterprises(
    client: AsyncTestClient, web: Web, world: World, registry: dict[str, UUID], db: AsyncSession, settings: Settings
) -> None:
    firm = await db.get(Enterprise, registry["软件公司"])
    assert firm is not None
    [row] = await enterprises.push(db, firm, [enterprises.PushInput(registry["软件企业奖励"])], actor_id=None, at=datetime.now(UTC))
    await db.commit()
    await web.login("grid", PASSWORD)
    phone = Device()
    answer = await _push(client, phone, phone.mutation("policy_push", "outcome", {"outcome": "applied"}, entity_id=row.id, base_version=1))
    assert answer[0]["status"] == "rejected" and answer[0]["code"] == "forbidden"
    assert all(r["entity"] != "policy_push" for r in await _pull(client, phone))
