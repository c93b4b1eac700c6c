"""The policy service's part of the demo (X7, P1-P6) at the seed's scale: 96 published policies since
2025, 32 QR guides, a few hundred enterprises with valid credit codes, three years of visits and
policy pushes (~365 visits, ~213 pushes, the 山东物业创新产业园 award of 31万元 as a granted outcome),
80+ 政策直通车 and the other events, and answered questions. Deterministic; loaded once."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from server.models import (
    Appeal,
    AppealChannel,
    CommunityEvent,
    Enterprise,
    EventKind,
    Place,
    Policy,
    PolicyCategory,
    PolicyGuide,
    PolicyPush,
    PolicyQuestion,
    PolicyRevision,
    PolicyStatus,
    PushOutcome,
    QuestionStatus,
    User,
    Visit,
    VisitPurpose,
    VisitSubject,
)
from server.services import credit_code, policies
from server.services import demo_policy_content as content
from server.services import policy_facets as facets
from server.settings import Settings

SEED = 13
ENTERPRISES_AT = {  # place name -> (how many, industries to draw from, individual shops?)
    "鲁粮集团办公楼": (110, "IIIJJLLLMMKF", False),
    "山东物业创新产业园": (90, "KKKKMMIICLE", False),
    "解放路沿街商铺": (100, "FFFHHHHOOR", True),
}
AWARD_ENTERPRISE = "山东泉城红领物业服务有限公司"
AWARD_YUAN = 310_000
VISITS = 365
PUSHES = 213
DAYS = 3 * 365


@dataclass
class DemoPolicyReport:
    policies: int
    guides: int
    enterprises: int
    visits: int
    pushes: int
    events: int


def _at(day: date, tz: Any, hour: int = 10, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=tz).astimezone(UTC)


def _facets_of(item: dict[str, Any]) -> dict[str, list[str]]:
    return {f.name: list(item.get(f.name) or []) for f in facets.FACETS}


def _policy_content(item: dict[str, Any]) -> policies.PolicyContent:
    return policies.PolicyContent(
        title=item["title"], summary=item["summary"], category=item["category"], issuer=item["issuer"],
        document_number=item["document_number"], conditions=list(item["conditions"]), steps=list(item["steps"]),
        materials=list(item["materials"]), time_limit=item["time_limit"],
        deadline=item["deadline"].isoformat() if item.get("deadline") else "", long_term=bool(item.get("long_term")),
        department=item["department"], phone=item["phone"], source_url=item["source_url"], **_facets_of(item),
    )


def _add_policy(session: AsyncSession, item: dict[str, Any], published: datetime, staff_id: UUID | None) -> Policy:
    data = _policy_content(item)
    policy = Policy(id=uuid7(), status=PolicyStatus.PUBLISHED, revision=1, version=2, first_published_at=published,
                    revised_at=published, category=PolicyCategory(data.category), title=data.title)
    policies._apply(policy, data)  # noqa: SLF001 - the one place a demo writes a policy without the publish clock
    session.add(policy)
    session.add(PolicyRevision(policy_id=policy.id, revision=1, content=data.as_dict(), published_at=published,
                               published_by_id=staff_id))
    return policy


async def load_demo_policies(session: AsyncSession, settings: Settings, *, end: datetime) -> DemoPolicyReport:
    rng = random.Random(SEED)
    tz = settings.tz
    today = end.astimezone(tz).date()
    places = {p.name: p for p in await session.scalars(select(Place))}
    users = {u.username: u for u in await session.scalars(select(User))}
    staff = users.get("staff")
    grid = users.get("grid")
    staff_id = staff.id if staff else None

    # Policies: 96 published editions; a few revised once since, one withdrawn, two drafts.
    editions = content.editions(rng)
    made: list[tuple[Policy, dict[str, Any]]] = []
    for item in editions:
        published = _at(item["published_on"], tz, 9 + rng.randrange(8), rng.randrange(60))
        made.append((_add_policy(session, item, published, staff_id), item))
    for policy, item in rng.sample(made, 8):
        revised = min(policy.revised_at + timedelta(days=rng.randrange(10, 120)), end - timedelta(days=1))  # type: ignore[operator]
        data = policies.content_of(policy)
        data.materials = [*data.materials, "申请人书面承诺书（新增）"]
        policies._apply(policy, data)  # noqa: SLF001
        policy.revision, policy.revised_at, policy.version = 2, revised, 3
        session.add(PolicyRevision(policy_id=policy.id, revision=2, content=data.as_dict(), published_at=revised, published_by_id=staff_id))
    # A 2024 edition, superseded and withdrawn in 2025 (not one of the 96 published since 2025).
    old = dict(editions[3], title=editions[3]["title"].replace("2025", "2024"), deadline=date(2025, 6, 30), long_term=False)
    withdrawn = _add_policy(session, old, _at(date(2024, 12, 16), tz), staff_id)
    withdrawn.status, withdrawn.withdrawn_at = PolicyStatus.WITHDRAWN, _at(date(2025, 3, 3), tz)
    for item in rng.sample(content.PROGRAMMES, 2):
        draft = policies.PolicyContent.of({**item, "title": f"（草稿）{item['title']}", "deadline": "", "long_term": False})
        policy = Policy(id=uuid7(), status=PolicyStatus.DRAFT, revision=0, version=1, category=PolicyCategory(draft.category), title=draft.title)
        policies._apply(policy, draft)  # noqa: SLF001
        session.add(policy)

    # QR guides (the seed's 32), scanned for months.
    for g in content.GUIDES:
        guide = PolicyGuide(slug=g["slug"], name=g["name"], description=g.get("description", ""),
                            place_id=places[g["place"]].id if g.get("place") in places else None,
                            scan_count=rng.randrange(40, 900))
        facets.set_masks(guide, _facets_of(g))
        session.add(guide)

    # Enterprises with valid credit codes over the demo's building, park and street.
    codes: set[str] = set()
    names: set[str] = set()
    enterprises: list[Enterprise] = []

    def new_code(individual: bool) -> str:
        while True:
            body = "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(8))
            code = credit_code.make_code("9", "2" if individual else "1", "370102", credit_code.organisation_code(body))
            if code not in codes:
                codes.add(code)
                return code

    def contact() -> tuple[str, str]:
        return (rng.choice(content.CONTACT_SURNAMES) + rng.choice(content.GIVEN_NAMES),
                f"1{rng.choice('3578')}{rng.randrange(10**9):09d}")

    for place_name, (count, industries, individual) in ENTERPRISES_AT.items():
        place = places.get(place_name)
        if place is None:
            continue
        for _ in range(count):
            industry = rng.choice(industries)
            name = content.enterprise_name(rng, industry, individual)
            while name in names:
                name = content.enterprise_name(rng, industry, individual)
            names.add(name)
            stage = "new" if rng.random() < 0.15 else ("growing" if individual or rng.random() < 0.7 else "above_scale")
            size = "micro" if individual else rng.choice(["micro", "small", "small", "medium", "large"] if stage == "above_scale" else ["micro", "small", "small", "medium"])
            registered = today - timedelta(days=rng.randrange(20, 360) if stage == "new" else rng.randrange(400, 7000))
            key = stage == "above_scale" and rng.random() < 0.6 or (not individual and rng.random() < 0.08)
            person, phone = contact()
            liaisons = {"community": rng.choice(content.LIAISON_NAMES["community"])}
            if key:
                liaisons |= {level: rng.choice(content.LIAISON_NAMES[level]) for level in ("leader", "cppcc", "section_head")}
            enterprises.append(Enterprise(
                id=uuid7(), credit_code=new_code(individual), name=name, industry=industry, size=size, stage=stage,
                registered_on=registered, place_id=place.id, is_key=key, contact_name=person, contact_phone=phone,
                # The economy grid worker (经济网格员) of the demo also serves the park.
                grid_worker_id=grid.id if grid and place_name == "山东物业创新产业园" else None, liaisons=liaisons, version=1,
            ))
    park = places.get("山东物业创新产业园")
    award_enterprise = None
    if park is not None:
        person, phone = contact()
        award_enterprise = Enterprise(
            id=uuid7(), credit_code=new_code(False), name=AWARD_ENTERPRISE, industry="K", size="medium", stage="growing",
            registered_on=date(2016, 5, 12), place_id=park.id, is_key=True, contact_name=person, contact_phone=phone,
            grid_worker_id=grid.id if grid else None, version=1,
            liaisons={level: content.LIAISON_NAMES[level][0] for level in ("leader", "cppcc", "section_head", "community")},
        )
        enterprises.append(award_enterprise)
    session.add_all(enterprises)
    await session.flush()

    # Three years of visits (key enterprises most often) and the policies pushed on them.
    kinds = {p.id: p.kind.value for p in places.values()}
    start = today - timedelta(days=DAYS)
    weights = [6 if e.is_key else 1 for e in enterprises]
    visit_days = sorted(start + timedelta(days=rng.randrange(DAYS - 2)) for _ in range(VISITS - 1))
    live_on = [(p, item["published_on"]) for p, item in made]
    pushes = 0
    visits: list[Visit] = []
    rows: list[PolicyPush] = []
    for n, day in enumerate(visit_days):
        enterprise = rng.choices(enterprises, weights)[0]
        at = _at(day, tz, 9 + rng.randrange(8), rng.randrange(60))
        visit = Visit(id=uuid7(), worker_id=grid.id if grid else None, place_id=enterprise.place_id, enterprise_id=enterprise.id,
                      subject_kind=VisitSubject.ENTERPRISE, subject_name=enterprise.name,
                      purpose=VisitPurpose.FIRST if enterprise.last_visited_at is None else VisitPurpose.RETURN,
                      notes=rng.choice(["了解经营情况，宣讲惠企政策。", "协助梳理申报材料。", "回访政策落实情况。", "企业反映用工需求，已记录。"]),
                      policies=[], visited_at=at, version=1)
        visits.append(visit)
        enterprise.last_visited_at = at
        profile = policies.profile_of(enterprise, kinds.get(enterprise.place_id))  # type: ignore[arg-type]
        matching = [p for p, published_on in live_on if published_on <= day and facets.matches(p, profile)
                    and (p.long_term or p.deadline is None or p.deadline >= day)]
        left = PUSHES - pushes
        share = left / max(1, VISITS - 1 - n)
        count = min(len(matching), int(share) + (1 if rng.random() < share - int(share) else 0))
        for policy in rng.sample(matching, count):
            rows.append(_push(rng, enterprise, policy, visit, at, end, grid.id if grid else None))
            pushes += 1
    session.add_all(visits)
    if award_enterprise is not None:
        award = next((p for p, item in made if item.get("amount_hint") == AWARD_YUAN and item["published_on"].year == 2025), None)
        award = award or next((p for p, item in made if item.get("amount_hint") == AWARD_YUAN), None)
        if award is not None:
            day = max(award.first_published_at.astimezone(tz).date() + timedelta(days=12), start)  # type: ignore[union-attr]
            at = _at(day, tz, 15)
            visit = Visit(id=uuid7(), worker_id=grid.id if grid else None, place_id=award_enterprise.place_id,
                          enterprise_id=award_enterprise.id, subject_kind=VisitSubject.ENTERPRISE, subject_name=AWARD_ENTERPRISE,
                          purpose=VisitPurpose.FIRST, notes="企业经营扩张急需资金：街道与社区上门服务，协助整理申报材料、对接区级部门。",
                          policies=[], visited_at=at, version=1)
            session.add(visit)
            award_enterprise.last_visited_at = max(award_enterprise.last_visited_at or at, at)
            rows.append(PolicyPush(
                enterprise_id=award_enterprise.id, policy_id=award.id, visit_id=visit.id, pushed_by_id=grid.id if grid else None,
                pushed_at=at, matched=True, outcome=PushOutcome.GRANTED, amount_yuan=AWARD_YUAN,
                outcome_note="成功申领区级红领物业奖励31万元", outcome_at=at + timedelta(days=45), outcome_by_id=staff_id, version=2,
            ))
            visits.append(visit)
    session.add_all(rows)

    events = _events(session, rng, places, tz, today, end)
    await session.flush()
    await _link_event_appeals(session, events)
    _questions(session, rng, made, staff_id, end)
    await session.flush()
    return DemoPolicyReport(len(made), len(content.GUIDES), len(enterprises), len(visits), len(rows), len(events))


def _push(rng: random.Random, enterprise: Enterprise, policy: Policy, visit: Visit, at: datetime, end: datetime,
          staff_id: UUID | None) -> PolicyPush:
    roll = rng.random()
    outcome = (PushOutcome.GRANTED if roll < 0.22 else PushOutcome.APPLIED if roll < 0.55
               else PushOutcome.INELIGIBLE if roll < 0.65 else PushOutcome.PUSHED)
    hint = next((p.get("amount_hint") for p in content.PROGRAMMES if p["title"] in policy.title), None)
    amount = None
    if outcome == PushOutcome.GRANTED:
        amount = int(hint or rng.choice([5000, 10000, 20000, 30000, 50000])) if rng.random() < 0.9 else rng.randrange(2, 40) * 1000
    outcome_at = min(at + timedelta(days=rng.randrange(7, 60)), end) if outcome != PushOutcome.PUSHED else None
    return PolicyPush(enterprise_id=enterprise.id, policy_id=policy.id, visit_id=visit.id, pushed_by_id=staff_id, pushed_at=at,
                      matched=True, outcome=outcome, amount_yuan=amount, outcome_at=outcome_at,
                      outcome_by_id=staff_id if outcome_at else None, version=2 if outcome_at else 1)


EVENT_COUNTS = {EventKind.POLICY_EXPRESS: 84, EventKind.OPEN_DAY: 7, EventKind.OPEN_MIC: 8, EventKind.FACE_TO_FACE: 12, EventKind.XINGHUO: 10}
EVENT_PLACES = {
    EventKind.POLICY_EXPRESS: ["鲁粮集团办公楼", "山东物业创新产业园", "解放路沿街商铺"],
    EventKind.OPEN_DAY: ["解放路街道"], EventKind.OPEN_MIC: ["鲁粮集团办公楼", "山东物业创新产业园"],
    EventKind.FACE_TO_FACE: ["东舍坊小区", "文华园小区"], EventKind.XINGHUO: ["东舍坊社区", "文华园社区"],
}


def _events(session: AsyncSession, rng: random.Random, places: dict[str, Place], tz: Any, today: date, end: datetime) -> list[CommunityEvent]:
    """The seed's events since 2025 (80+ 政策直通车, 15 开放日/开放麦, 20+ 民生面对面/星火小屋), and three to come."""
    made = []
    first = date(2025, 1, 8)
    span = (today - first).days
    for kind, count in EVENT_COUNTS.items():
        topics = content.EVENT_TOPICS[kind.value]
        for i in range(count):
            day = first + timedelta(days=rng.randrange(span))
            topic = topics[i % len(topics)]
            place = places.get(rng.choice(EVENT_PLACES[kind]))
            made.append(CommunityEvent(
                id=uuid7(), kind=kind, topic=topic, starts_at=_at(day, tz, rng.choice([9, 10, 14, 15]), rng.choice([0, 30])),
                place_id=place.id if place else None, venue=place.name if place else "", host=rng.choice(content.EVENT_HOSTS),
                supervisors=rng.sample(content.SUPERVISOR_NAMES, 2 if kind in (EventKind.OPEN_DAY, EventKind.OPEN_MIC) else 1),
                attendance=rng.randrange(15, 120), minutes=content.minutes_for(kind.value, topic, rng), photos=[],
            ))
    for offset, kind in ((5, EventKind.POLICY_EXPRESS), (12, EventKind.FACE_TO_FACE), (19, EventKind.OPEN_MIC)):
        place = places.get(EVENT_PLACES[kind][0])
        made.append(CommunityEvent(
            id=uuid7(), kind=kind, topic=content.EVENT_TOPICS[kind.value][0], starts_at=_at(today + timedelta(days=offset), tz, 14, 30),
            place_id=place.id if place else None, venue=place.name if place else "", host=content.EVENT_HOSTS[0],
            supervisors=content.SUPERVISOR_NAMES[:2], attendance=None, minutes=None, photos=[],
        ))
    session.add_all(made)
    return made


async def _link_event_appeals(session: AsyncSession, events: list[CommunityEvent]) -> None:
    """The demo's appeals of channel 活动现场 point to the latest event held before they arrived."""
    held = sorted((e for e in events if e.attendance is not None), key=lambda e: e.starts_at)
    rows = (await session.execute(select(Appeal.id, Appeal.received_at).where(Appeal.channel == AppealChannel.EVENT))).all()
    for appeal_id, received in rows:
        before = [e for e in held if e.starts_at <= received]
        if before:
            await session.execute(update(Appeal).where(Appeal.id == appeal_id).values(event_id=before[-1].id))


def _questions(session: AsyncSession, rng: random.Random, made: list[tuple[Policy, dict[str, Any]]], staff_id: UUID | None, end: datetime) -> None:
    for n, (programme, question, answer) in enumerate(content.QUESTIONS):
        target = next((p for p, item in made if item.get("programme") == programme and p.status == PolicyStatus.PUBLISHED), None)
        if target is None:
            continue
        asked = end - timedelta(days=rng.randrange(2, 300))
        is_open = n % 5 == 4
        session.add(PolicyQuestion(
            policy_id=target.id, tracking_code=f"demo-{n:02d}-{rng.randrange(16**12):012x}", question=question,
            enterprise_name=None, contact_name=rng.choice(content.CONTACT_SURNAMES) + "先生", contact_phone=None, asked_at=asked,
            status=QuestionStatus.OPEN if is_open else QuestionStatus.ANSWERED,
            answer=None if is_open else answer, answered_at=None if is_open else asked + timedelta(hours=rng.randrange(2, 30)),
            answered_by_id=None if is_open else staff_id, is_faq=not is_open, faq_question=None if is_open else question,
        ))


async def has_policy_demo(session: AsyncSession) -> bool:
    return await session.scalar(select(Policy.id).limit(1)) is not None


__all__ = ["DemoPolicyReport", "has_policy_demo", "load_demo_policies"]
