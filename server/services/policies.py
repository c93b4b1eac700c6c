"""The policy library (P1), QR policy guides (P2) and matching (P4): one write path for policies
(draft → publish → withdraw, every published revision kept), the public lists, and the one matching
rule of server/services/policy_facets.py applied to enterprises, guides and the reach figures.
docs/policies.md.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import Select, and_, case, distinct, func, literal, null, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.i18n import N_
from server.models import (
    Enterprise,
    Place,
    Policy,
    PolicyCategory,
    PolicyGuide,
    PolicyPush,
    PolicyQuestion,
    PolicyRevision,
    PolicyStatus,
    PushOutcome,
)
from server.services import policy_facets as facets
from server.services.appeals import utc_now
from server.services.errors import InvalidInput, ServiceError
from server.services.policy_facets import FACETS, Profile
from server.services.shared_cache import watch

CATEGORY_LABELS = {
    PolicyCategory.INDUSTRY_SUPPORT: N_("Industry support"),
    PolicyCategory.TAX: N_("Tax incentives"),
    PolicyCategory.TALENT: N_("Talent"),
    PolicyCategory.EMPLOYMENT: N_("Employment and start-ups"),
    PolicyCategory.SOCIAL_INSURANCE: N_("Social insurance subsidies"),
    PolicyCategory.QUALIFICATION: N_("Qualifications and licences"),
}
STATUS_LABELS = {PolicyStatus.DRAFT: N_("Draft"), PolicyStatus.PUBLISHED: N_("Published"), PolicyStatus.WITHDRAWN: N_("Withdrawn")}
OUTCOME_LABELS = {
    PushOutcome.PUSHED: N_("Pushed"),
    PushOutcome.APPLIED: N_("Applied"),
    PushOutcome.GRANTED: N_("Granted"),
    PushOutcome.INELIGIBLE: N_("Not eligible"),
}
CLOSING_SOON = timedelta(days=30)  # "即将截止": the deadline is within this many days
PAGE_SIZE = 20
MAX_TITLE = 120
MAX_SUMMARY = 600
MAX_LINE = 300
MAX_LINES = 30
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,46}[a-z0-9]$")
LISTS = ("conditions", "steps", "materials")


@dataclass
class PolicyContent:
    """What staff write: everything a published revision keeps (docs/policies.md, "A policy")."""

    title: str = ""
    summary: str = ""
    category: str = ""
    issuer: str = ""
    document_number: str = ""
    conditions: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    materials: list[str] = field(default_factory=list)
    time_limit: str = ""
    deadline: str = ""  # ISO date, or "" (see long_term)
    long_term: bool = False
    department: str = ""
    phone: str = ""
    source_url: str = ""
    industries: list[str] = field(default_factory=list)
    sizes: list[str] = field(default_factory=list)
    stages: list[str] = field(default_factory=list)
    place_kinds: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, data: dict[str, Any]) -> PolicyContent:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def deadline_date(self) -> date | None:
        try:
            return date.fromisoformat(self.deadline) if self.deadline else None
        except ValueError:
            return None


def lines(text: str | Sequence[str] | None) -> list[str]:
    """A textarea (one item per line) or a list, as trimmed non-empty lines; "1. " numbering removed."""
    items = text.splitlines() if isinstance(text, str) else list(text or [])
    return [re.sub(r"^\s*(?:\d+[.、)]|[-*•·])\s*", "", item).strip() for item in items if item and item.strip()]


def content_of(policy: Policy, *, pending: bool = True) -> PolicyContent:
    """What staff are editing: the pending edits of a published policy, or the policy itself
    (`pending=False`: always the policy as published)."""
    if pending and policy.pending:
        return PolicyContent.of(policy.pending)
    return PolicyContent(
        title=policy.title, summary=policy.summary, category=policy.category.value, issuer=policy.issuer,
        document_number=policy.document_number, conditions=list(policy.conditions), steps=list(policy.steps),
        materials=list(policy.materials), time_limit=policy.time_limit,
        deadline=policy.deadline.isoformat() if policy.deadline else "", long_term=policy.long_term,
        department=policy.department, phone=policy.phone, source_url=policy.source_url, **facets.lists_of(policy),
    )


def validate(content: PolicyContent, *, publishing: bool) -> list[ServiceError]:
    """A draft needs a title and a category; publishing needs what a reader needs to apply."""
    problems: list[ServiceError] = []
    title = content.title.strip()
    if not title:
        problems.append(ServiceError(N_("Please enter the policy's title."), field="title"))
    elif len(title) > MAX_TITLE:
        problems.append(ServiceError(N_("Please keep the title under %(n)d characters."), field="title", n=MAX_TITLE))
    if content.category not in {c.value for c in PolicyCategory}:
        problems.append(ServiceError(N_("Please choose a category."), field="category"))
    if len(content.summary) > MAX_SUMMARY:
        problems.append(ServiceError(N_("Please keep the summary under %(n)d characters."), field="summary", n=MAX_SUMMARY))
    for name in LISTS:
        items = getattr(content, name)
        if len(items) > MAX_LINES or any(len(item) > MAX_LINE for item in items):
            problems.append(ServiceError(N_("At most %(n)d lines, each under %(m)d characters."), field=name, n=MAX_LINES, m=MAX_LINE))
    if content.deadline and content.deadline_date() is None:
        problems.append(ServiceError(N_("Please enter the deadline as a date."), field="deadline"))
    if content.deadline and content.long_term:
        problems.append(ServiceError(N_("A policy has either a deadline or no deadline (long-term), not both."), field="deadline"))
    if content.source_url and not re.match(r"^https?://\S+$", content.source_url):
        problems.append(ServiceError(N_("The source link must start with http:// or https://."), field="source_url"))
    for facet in FACETS:
        if facet.unknown(getattr(content, facet.name)):
            problems.append(ServiceError(N_("Please choose one of the options."), field=facet.name))
    if publishing:
        if not content.conditions:
            problems.append(ServiceError(N_("A policy is published with its conditions: who can apply."), field="conditions"))
        if not content.steps:
            problems.append(ServiceError(N_("A policy is published with the steps to apply."), field="steps"))
        if not content.deadline and not content.long_term:
            problems.append(ServiceError(N_("Please give the deadline, or mark the policy as long-term."), field="deadline"))
        if not content.department.strip():
            problems.append(ServiceError(N_("Please name the responsible department."), field="department"))
        if not content.phone.strip():
            problems.append(ServiceError(N_("Please give a phone number for questions."), field="phone"))
    return problems


def _apply(policy: Policy, content: PolicyContent) -> None:
    policy.title = content.title.strip()
    policy.summary = content.summary.strip()
    policy.category = PolicyCategory(content.category)
    policy.issuer = content.issuer.strip()
    policy.document_number = content.document_number.strip()
    policy.conditions = lines(content.conditions)
    policy.steps = lines(content.steps)
    policy.materials = lines(content.materials)
    policy.time_limit = content.time_limit.strip()
    policy.deadline = content.deadline_date()
    policy.long_term = content.long_term
    policy.department = content.department.strip()
    policy.phone = content.phone.strip()
    policy.source_url = content.source_url.strip()
    facets.set_masks(policy, {f.name: getattr(content, f.name) for f in FACETS})


def _clean(content: PolicyContent) -> PolicyContent:
    for name in LISTS:
        setattr(content, name, lines(getattr(content, name)))
    return content


async def create_draft(session: AsyncSession, content: PolicyContent) -> Policy:
    content = _clean(content)
    problems = validate(content, publishing=False)
    if problems:
        raise InvalidPolicy(problems)
    policy = Policy(status=PolicyStatus.DRAFT, revision=0, version=1)
    _apply(policy, content)
    session.add(policy)
    await session.flush()
    return policy


async def save_draft(session: AsyncSession, policy: Policy, content: PolicyContent) -> Policy:
    """A draft is edited in place; a published policy keeps its public text until the edits are published."""
    content = _clean(content)
    problems = validate(content, publishing=False)
    if problems:
        raise InvalidPolicy(problems)
    if policy.status == PolicyStatus.PUBLISHED:
        policy.pending = content.as_dict()
    else:
        _apply(policy, content)
    policy.version += 1
    await session.flush()
    return policy


async def publish(session: AsyncSession, policy: Policy, *, actor_id: UUID | None, now: datetime) -> PolicyRevision:
    """Publish what staff wrote as the next revision (kept in policy_revision); 更新于 becomes now."""
    content = content_of(policy)
    problems = validate(content, publishing=True)
    if problems:
        raise InvalidPolicy(problems)
    _apply(policy, content)
    policy.pending = None
    policy.status = PolicyStatus.PUBLISHED
    policy.revision += 1
    policy.first_published_at = policy.first_published_at or now
    policy.revised_at = now
    policy.withdrawn_at = None
    policy.version += 1
    revision = PolicyRevision(policy_id=policy.id, revision=policy.revision, content=content.as_dict(), published_at=now,
                              published_by_id=actor_id)
    session.add(revision)
    await session.flush()
    return revision


async def withdraw(session: AsyncSession, policy: Policy, *, now: datetime) -> None:
    if policy.status != PolicyStatus.PUBLISHED:
        raise ServiceError(N_("Only a published policy can be withdrawn."))
    policy.status = PolicyStatus.WITHDRAWN
    policy.withdrawn_at = now
    policy.version += 1
    await session.flush()


class InvalidPolicy(InvalidInput):
    pass


# --- Reading: what is live, the public list, guides ---------------------------------------------------------


def local_today(tz: ZoneInfo, now: datetime) -> date:
    return now.astimezone(tz).date()


def today(tz: ZoneInfo) -> date:
    """Today in the subdistrict (deadlines are last days, Asia/Shanghai)."""
    return local_today(tz, utc_now())


# The public pages (routes/policies.py, web.shared_part) are computed again after a commit that wrote these.
PAGES_TOPIC = "policies"
for _model in (Policy, PolicyGuide, PolicyQuestion, Place):
    watch(_model, PAGES_TOPIC)


def is_expired(policy: Any, today: date) -> bool:
    """Past its last day (a long-term policy never expires)."""
    return not policy.long_term and policy.deadline is not None and policy.deadline < today


def closing_soon(policy: Any, today: date) -> bool:
    return policy.deadline is not None and today <= policy.deadline <= today + CLOSING_SOON


def live_clause(today: date) -> Any:
    """Published and not past its deadline: what lists, guides, matching and the field pull offer."""
    return and_(Policy.status == PolicyStatus.PUBLISHED, or_(Policy.long_term.is_(True), Policy.deadline.is_(None), Policy.deadline >= today))


def closing_first(today: date) -> tuple[Any, ...]:
    """The order of every policy list: closing within 30 days first (nearest deadline first), then
    everything else, newest revision first."""
    soon = and_(Policy.deadline.is_not(None), Policy.deadline >= today, Policy.deadline <= today + CLOSING_SOON)
    return (case((soon, 0), else_=1), case((soon, Policy.deadline), else_=None), Policy.revised_at.desc(), Policy.id)


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_clause(q: str) -> Any:
    words = [w for w in q.split() if w][:5]
    clauses = []
    for word in words:
        pattern = f"%{escape_like(word)}%"
        clauses.append(or_(*(column.like(pattern, escape="\\") for column in (
            Policy.title, Policy.summary, Policy.issuer, Policy.document_number, Policy.department))))
    return and_(*clauses) if clauses else and_(True)


@dataclass(frozen=True)
class PolicyCard:
    """A published policy as lists and pages show it: plain values, shareable between requests
    (the public pages keep them in a shared cache, server/services/shared_cache.py)."""

    id: UUID
    title: str
    summary: str
    category: PolicyCategory
    issuer: str
    deadline: date | None
    long_term: bool
    status: PolicyStatus
    revised_at: datetime | None
    first_published_at: datetime | None


def card_of(policy: Policy) -> PolicyCard:
    return PolicyCard(policy.id, policy.title, policy.summary, policy.category, policy.issuer, policy.deadline, policy.long_term,
                      policy.status, policy.revised_at, policy.first_published_at)


@dataclass
class PolicyPage:
    policies: list[PolicyCard]
    total: int
    page: int
    pages: int
    counts: dict[str, int]  # live policies per category (for the tabs)


async def public_list(session: AsyncSession, *, today: date, q: str = "", category: str = "", page: int = 1) -> PolicyPage:
    where = [live_clause(today), search_clause(q)]
    counts = dict((await session.execute(select(Policy.category, func.count()).where(*where).group_by(Policy.category))).all())
    if category in {c.value for c in PolicyCategory}:
        where.append(Policy.category == PolicyCategory(category))
    total = int(await session.scalar(select(func.count()).select_from(Policy).where(*where)) or 0)
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(1, page), pages)
    rows = await session.scalars(select(Policy).where(*where).order_by(*closing_first(today)).offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE))
    return PolicyPage([card_of(p) for p in rows], total, page, pages, {str(getattr(k, "value", k)): v for k, v in counts.items()})


def guide_masks(guide: PolicyGuide, place_kind: str | None) -> dict[str, int]:
    """A guide's audience; a guide for one place with no place type stated takes that place's type."""
    masks = facets.masks_of(guide)
    if place_kind and not masks["place_kinds"]:
        masks["place_kinds"] = facets.PLACE_KIND.bit(place_kind)
    return masks


def guide_query(masks: dict[str, int], today: date) -> Select[tuple[Policy]]:
    """The published, unexpired policies of a guide's audience, nearest deadline first (long-term last)."""
    return (
        select(Policy)
        .where(live_clause(today), facets.sql_overlaps(Policy, masks))
        .order_by(Policy.deadline.is_(None), Policy.deadline, Policy.revised_at.desc(), Policy.id)
    )


GUIDE_LIMIT = 100  # a guide page lists at most this many (nearest deadline first) and says how many more


async def _guide_masks(session: AsyncSession, guide: PolicyGuide) -> dict[str, int]:
    place_kind = None
    if guide.place_id:
        place = await session.get(Place, guide.place_id)
        place_kind = place.kind.value if place else None
    return guide_masks(guide, place_kind)


async def guide_policies(session: AsyncSession, guide: PolicyGuide, today: date) -> list[Policy]:
    """Every policy a guide lists (tests, posters, the reach of a guide)."""
    return list(await session.scalars(guide_query(await _guide_masks(session, guide), today)))


async def guide_page(session: AsyncSession, guide: PolicyGuide, today: date, *, limit: int = GUIDE_LIMIT) -> tuple[list[PolicyCard], int]:
    """The first `limit` policies of a guide and how many it lists in all (a bounded page at any scale)."""
    query = guide_query(await _guide_masks(session, guide), today)
    total = int(await session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0)
    return [card_of(p) for p in await session.scalars(query.limit(limit))], total


@dataclass
class GuideInput:
    slug: str = ""
    name: str = ""
    description: str = ""
    place_id: UUID | None = None
    industries: list[str] = field(default_factory=list)
    sizes: list[str] = field(default_factory=list)
    stages: list[str] = field(default_factory=list)
    place_kinds: list[str] = field(default_factory=list)


async def save_guide(session: AsyncSession, data: GuideInput, guide: PolicyGuide | None = None) -> PolicyGuide:
    problems: list[ServiceError] = []
    slug = data.slug.strip().lower()
    if not SLUG.match(slug):
        problems.append(ServiceError(N_("Use 3 to 48 lower-case letters, digits or hyphens for the address."), field="slug"))
    elif await session.scalar(select(PolicyGuide.id).where(PolicyGuide.slug == slug, PolicyGuide.id != (guide.id if guide else None))):
        problems.append(ServiceError(N_("Another guide already has this address."), field="slug"))
    if not data.name.strip():
        problems.append(ServiceError(N_("Please give the guide a name."), field="name"))
    for facet in FACETS:
        if facet.unknown(getattr(data, facet.name)):
            problems.append(ServiceError(N_("Please choose one of the options."), field=facet.name))
    if data.place_id is None and not any(getattr(data, f.name) for f in FACETS):
        problems.append(ServiceError(N_("A guide is for an audience: choose at least one industry, size, stage, place type or a place."),
                                     field="audience"))
    if data.place_id is not None and await session.get(Place, data.place_id) is None:
        problems.append(ServiceError(N_("This place does not exist."), field="place_id"))
    if problems:
        raise InvalidPolicy(problems)
    guide = guide or PolicyGuide(scan_count=0)
    guide.slug, guide.name, guide.description, guide.place_id = slug, data.name.strip(), data.description.strip(), data.place_id
    facets.set_masks(guide, {f.name: getattr(data, f.name) for f in FACETS})
    session.add(guide)
    await session.flush()
    return guide


# --- Matching enterprises and policies ---------------------------------------------------------------------------


def profile_of(enterprise: Enterprise, place_kind: str | None) -> Profile:
    return Profile(enterprise.industry, enterprise.size, enterprise.stage, place_kind)


def enterprise_match(policy_cls: Any = Policy) -> Any:
    """`matches` in SQL between `policy_cls` and Enterprise joined to its Place (outer)."""
    return facets.sql_matches(policy_cls, Enterprise.industry, Enterprise.size, Enterprise.stage, Place.kind)


def _matching_enterprise(enterprise: Enterprise, place_kind: str | None) -> Any:
    profile = profile_of(enterprise, place_kind)
    return facets.sql_matches(Policy, _literal(profile.industry), _literal(profile.size), _literal(profile.stage), _literal(profile.place_kind))


async def matched_policies(
    session: AsyncSession, enterprise: Enterprise, today: date, *, limit: int | None = None, unpushed_first: bool = False
) -> list[Policy]:
    """The live policies an enterprise matches, closing soon first (those not pushed to it yet first, if asked)."""
    place = await session.get(Place, enterprise.place_id) if enterprise.place_id else None
    query = select(Policy).where(live_clause(today), _matching_enterprise(enterprise, place.kind.value if place else None))
    order = list(closing_first(today))
    if unpushed_first:
        pushed = select(PolicyPush.policy_id).where(PolicyPush.enterprise_id == enterprise.id)
        order.insert(0, Policy.id.in_(pushed))
    return list(await session.scalars(query.order_by(*order).limit(limit)))


async def matched_count(session: AsyncSession, enterprise: Enterprise, today: date) -> int:
    place = await session.get(Place, enterprise.place_id) if enterprise.place_id else None
    query = select(func.count()).select_from(Policy).where(live_clause(today), _matching_enterprise(enterprise, place.kind.value if place else None))
    return int(await session.scalar(query) or 0)


def _literal(value: str | None) -> Any:
    return literal(value) if value is not None else null()


class _Masks:
    """One policy's masks as SQL literals, for `sql_matches` against every enterprise."""

    def __init__(self, masks: dict[str, int]) -> None:
        for name, column in facets.MASK_COLUMNS.items():
            setattr(self, column, literal(masks[name]))


def _masks_literal(policy: Policy) -> Any:
    return _Masks(facets.masks_of(policy))


@dataclass
class Reach:
    """A policy's funnel (应享尽享): enterprises matched → reached by a push → applied → granted."""

    policy: Policy
    matched: int = 0
    pushed: int = 0
    applied: int = 0
    granted: int = 0
    amount_yuan: int = 0
    off_match: int = 0  # pushes to enterprises it did not match (pushed with a reason)


async def reach(session: AsyncSession, *, today: date, policy_ids: Sequence[UUID] | None = None) -> list[Reach]:
    """Per published policy (live first), in three set-wise queries: matched counts come from one join of
    policies × enterprises on the matching rule, the funnel from one grouped pass over pushes."""
    where = [Policy.status != PolicyStatus.DRAFT]
    if policy_ids is not None:
        where.append(Policy.id.in_(policy_ids))
    policies = list(await session.scalars(select(Policy).where(*where).order_by(*closing_first(today))))
    ids = [p.id for p in policies]
    # Enterprises grouped by profile first (a few hundred at most: industry × size × stage × place type),
    # so the join on the matching rule is policies × profiles, not policies × enterprises.
    profiles = (
        select(Enterprise.industry, Enterprise.size, Enterprise.stage, Place.kind.label("kind"), func.count().label("n"))
        .select_from(Enterprise).outerjoin(Place, Place.id == Enterprise.place_id)
        .group_by(Enterprise.industry, Enterprise.size, Enterprise.stage, Place.kind)
        .subquery()
    )
    matched = dict((await session.execute(
        select(Policy.id, func.sum(profiles.c.n))
        .select_from(Policy).join(profiles, facets.sql_matches(Policy, profiles.c.industry, profiles.c.size, profiles.c.stage, profiles.c.kind))
        .where(Policy.id.in_(ids))
        .group_by(Policy.id)
    )).all()) if ids else {}
    done = (PushOutcome.APPLIED, PushOutcome.GRANTED)
    funnel = {row[0]: row[1:] for row in (await session.execute(
        select(
            PolicyPush.policy_id,
            func.count(distinct(PolicyPush.enterprise_id)),
            func.count(distinct(case((PolicyPush.outcome.in_(done), PolicyPush.enterprise_id)))),
            func.count(distinct(case((PolicyPush.outcome == PushOutcome.GRANTED, PolicyPush.enterprise_id)))),
            func.coalesce(func.sum(case((PolicyPush.outcome == PushOutcome.GRANTED, PolicyPush.amount_yuan), else_=0)), 0),
            func.count(distinct(case((PolicyPush.matched.is_(False), PolicyPush.enterprise_id)))),
        ).where(PolicyPush.policy_id.in_(ids)).group_by(PolicyPush.policy_id)
    )).all()} if ids else {}
    result = []
    for policy in policies:
        pushed, applied, granted, amount, off = funnel.get(policy.id, (0, 0, 0, 0, 0))
        result.append(Reach(policy, int(matched.get(policy.id, 0)), int(pushed), int(applied), int(granted), int(amount), int(off)))
    return result


async def reached_enterprises(session: AsyncSession, policy: Policy, *, limit: int = 500) -> list[tuple[Enterprise, PolicyPush | None]]:
    """The enterprises a policy matches, each with its latest push of the policy (None: not reached yet),
    those not reached first."""
    latest = (
        select(PolicyPush.enterprise_id, func.max(PolicyPush.pushed_at).label("at"))
        .where(PolicyPush.policy_id == policy.id).group_by(PolicyPush.enterprise_id).subquery()
    )
    matched = (
        select(Enterprise.id).outerjoin(Place, Place.id == Enterprise.place_id)
        .where(facets.sql_matches(_masks_literal(policy), Enterprise.industry, Enterprise.size, Enterprise.stage, Place.kind))
    )
    pushed_ids = select(PolicyPush.enterprise_id).where(PolicyPush.policy_id == policy.id)
    rows = (await session.execute(
        select(Enterprise, PolicyPush)
        .outerjoin(latest, latest.c.enterprise_id == Enterprise.id)
        .outerjoin(PolicyPush, and_(PolicyPush.enterprise_id == Enterprise.id, PolicyPush.policy_id == policy.id,
                                    PolicyPush.pushed_at == latest.c.at))
        .where(or_(Enterprise.id.in_(matched), Enterprise.id.in_(pushed_ids)))
        .order_by(PolicyPush.id.is_not(None), Enterprise.name)
        .limit(limit)
    )).all()
    return [(e, p) for e, p in rows]
