"""The policy service's demo data holds what issue 13 and docs/policies.md ("Demo data") promise: 96
policies published since 2025, the seed's 32 guides over 商务楼宇, 产业园区 and 沿街商铺, a few hundred
enterprises at the demo's building, park and street, every one with a valid credit code, three years of
visits and pushes, 80+ 政策直通车 held, and the 山东物业创新产业园 case: 山东泉城红领物业服务有限公司's
区级红领物业奖励 of 31万元 recorded as a granted outcome. Read from the shared demo snapshot."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.models import (
    CommunityEvent,
    Enterprise,
    EventKind,
    Place,
    Policy,
    PolicyGuide,
    PolicyPush,
    PolicyStatus,
    PushOutcome,
    Visit,
)
from server.services import credit_code, demo, policies
from server.services import policy_facets as facets
from server.services.appeals import utc_now
from server.settings import Settings

DEMO_PLACES = {"鲁粮集团办公楼", "山东物业创新产业园", "解放路沿街商铺"}
GUIDE_PLACE_KINDS = {"business_building", "industrial_park", "street_shop"}  # 商务楼宇, 产业园区, 沿街商铺
AWARD_ENTERPRISE = "山东泉城红领物业服务有限公司"
AWARD_PLACE = "山东物业创新产业园"


async def test_every_demo_enterprise_has_a_valid_credit_code(db: AsyncSession, demo_data: demo.DemoReport) -> None:
    rows = (await db.execute(select(Enterprise.name, Enterprise.credit_code, Place.name).outerjoin(Place, Place.id == Enterprise.place_id))).all()
    assert 200 <= len(rows) < 1000  # "a few hundred"
    problems = {code: credit_code.problem(code) for _, code, _ in rows}
    invalid = [(name, code, problem.rule) for name, code, _ in rows if (problem := problems[code]) is not None]
    assert not invalid, f"{len(invalid)} demo enterprises have invalid credit codes, e.g. {invalid[:3]}"
    assert len({code for _, code, _ in rows}) == len(rows)
    assert {place for _, _, place in rows} == DEMO_PLACES


async def test_the_red_collar_property_award_is_a_granted_push(db: AsyncSession, demo_data: demo.DemoReport, settings: Settings) -> None:
    enterprise = await db.scalar(select(Enterprise).where(Enterprise.name == AWARD_ENTERPRISE))
    assert enterprise is not None, "the demo has 山东泉城红领物业服务有限公司"
    place = await db.get(Place, enterprise.place_id)
    assert place is not None and place.name == AWARD_PLACE
    award = (await db.execute(
        select(PolicyPush, Policy).join(Policy, Policy.id == PolicyPush.policy_id)
        .where(PolicyPush.enterprise_id == enterprise.id, PolicyPush.outcome == PushOutcome.GRANTED, PolicyPush.amount_yuan == 310_000)
    )).all()
    assert len(award) == 1, "one granted push of 310,000 yuan"
    push, policy = award[0]
    assert "红领物业" in policy.title and "奖励" in policy.title and policy.status == PolicyStatus.PUBLISHED
    # Pushed on a visit, recorded as matched, and the enterprise does match the policy by the rule.
    assert push.visit_id is not None and await db.get(Visit, push.visit_id) is not None
    assert push.outcome_at is not None and push.outcome_at > push.pushed_at
    assert push.matched and facets.matches(policy, policies.profile_of(enterprise, place.kind.value))

    # The reach figures of that policy count it: granted, with its amount.
    today = policies.local_today(settings.tz, utc_now())
    (reach,) = await policies.reach(db, today=today, policy_ids=[policy.id])
    assert reach.granted >= 1 and reach.amount_yuan >= 310_000


async def test_policies_guides_visits_and_pushes_at_the_seeds_scale(db: AsyncSession, demo_data: demo.DemoReport,
                                                                      settings: Settings) -> None:
    first_published = list(await db.scalars(select(Policy.first_published_at).where(Policy.status == PolicyStatus.PUBLISHED)))
    assert len(first_published) == 96
    assert min(at.astimezone(settings.tz).date() for at in first_published if at) >= date(2025, 1, 1)  # type: ignore[union-attr]

    guides = list(await db.scalars(select(PolicyGuide)))
    assert len(guides) == 32
    kinds_of_place = dict((await db.execute(select(Place.id, Place.kind))).all())
    covered: set[str] = set()
    for guide in guides:
        kinds = set(facets.lists_of(guide)["place_kinds"])
        if guide.place_id:
            kinds.add(kinds_of_place[guide.place_id].value)
        assert kinds <= GUIDE_PLACE_KINDS, (guide.slug, kinds)
        covered |= kinds
    assert covered == GUIDE_PLACE_KINDS

    # Three years of visits to the registry's enterprises (~365) and pushes (~213), every push to a policy published by then.
    visited = list(await db.scalars(select(Visit.visited_at).where(Visit.enterprise_id.is_not(None))))
    assert 330 <= len(visited) <= 400
    assert max(visited) - min(visited) > timedelta(days=2 * 365)
    pushes = (await db.execute(select(PolicyPush.pushed_at, Policy.first_published_at).join(Policy, Policy.id == PolicyPush.policy_id))).all()
    assert 190 <= len(pushes) <= 240
    local = settings.tz
    assert all(published is not None and published.astimezone(local).date() <= pushed.astimezone(local).date()
               for pushed, published in pushes)


async def test_more_than_eighty_policy_express_events_were_held(db: AsyncSession, demo_data: demo.DemoReport, settings: Settings) -> None:
    now = utc_now()
    held = list(await db.scalars(select(CommunityEvent.starts_at).where(
        CommunityEvent.kind == EventKind.POLICY_EXPRESS, CommunityEvent.starts_at < now)))
    assert len(held) >= 80  # 80+ 政策直通车
    assert min(at.astimezone(settings.tz).date() for at in held) >= date(2025, 1, 1)  # since 2025
    upcoming = await db.scalar(select(func.count()).select_from(CommunityEvent).where(CommunityEvent.starts_at >= now))
    assert upcoming == 3  # "and three to come"
