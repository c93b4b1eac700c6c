"""Field visits (走访, F2): the "1" of 1+N+1. A visit records whom a grid worker saw, the policies pushed,
and the N appeals collected on the spot, all or nothing. Used by the sync push (and any future form)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.i18n import N_
from server.models import Appeal, Enterprise, Place, Visit, VisitPurpose, VisitSubject
from server.services import appeals, enterprises
from server.services.appeals import Actor, AppealInput, Clock, InvalidAppeal, utc_now
from server.services.deadlines import TimeLimits
from server.services.errors import ServiceError

MAX_SUBJECT = 120
MAX_NOTES = 2000
MAX_POLICIES = 20
MAX_POLICY = 120
MAX_APPEALS = 20

VISIT_SUBJECT_LABELS = {VisitSubject.ENTERPRISE: N_("Enterprise"), VisitSubject.HOUSEHOLD: N_("Household")}
VISIT_PURPOSE_LABELS = {VisitPurpose.FIRST: N_("First visit"), VisitPurpose.RETURN: N_("Return visit")}


@dataclass
class VisitInput:
    subject_kind: VisitSubject
    subject_name: str
    purpose: VisitPurpose
    place_id: UUID | None = None
    notes: str | None = None
    policies: Sequence[str] = ()  # free texts (phones older than the policy library)
    enterprise_id: UUID | None = None  # the enterprise of the registry visited
    pushes: Sequence[enterprises.PushInput] = ()  # policies of the library pushed to it (政策上门)
    # The N appeals collected on the spot, each with the id the device gave it.
    appeals: Sequence[tuple[UUID, AppealInput]] = field(default_factory=list)


class InvalidVisit(InvalidAppeal):
    """Every problem with a visit and its appeals; appeal fields are named `appeals.<i>.<field>`."""


def validate_visit(data: VisitInput) -> list[ServiceError]:
    problems: list[ServiceError] = []
    name = (data.subject_name or "").strip()
    if not name and data.enterprise_id is None:
        problems.append(ServiceError(N_("Please enter the enterprise or household visited."), field="subject_name"))
    elif len(name) > MAX_SUBJECT:
        problems.append(ServiceError(N_("Please keep the name under %(n)d characters."), field="subject_name", n=MAX_SUBJECT))
    if len((data.notes or "").strip()) > MAX_NOTES:
        problems.append(ServiceError(N_("Please keep the note under %(n)d characters."), field="notes", n=MAX_NOTES))
    policies = [p.strip() for p in data.policies if p and p.strip()]
    if len(policies) > MAX_POLICIES or any(len(p) > MAX_POLICY for p in policies):
        problems.append(
            ServiceError(N_("At most %(n)d policies, each under %(m)d characters."), field="policies", n=MAX_POLICIES, m=MAX_POLICY)
        )
    if data.pushes and data.enterprise_id is None:
        problems.append(ServiceError(N_("Choose the enterprise the policies were pushed to."), field="enterprise_id"))
    if len(data.pushes) > MAX_POLICIES:
        problems.append(ServiceError(N_("At most %(n)d policies per visit."), field="policy_ids", n=MAX_POLICIES))
    if len(data.appeals) > MAX_APPEALS:
        problems.append(ServiceError(N_("At most %(n)d appeals per visit."), field="appeals", n=MAX_APPEALS))
    for index, (_id, appeal) in enumerate(data.appeals):
        for problem in appeals.validate_input(appeal):
            problems.append(ServiceError(problem.message, field=f"appeals.{index}.{problem.field}", **problem.params))
    return problems


async def record_visit(
    session: AsyncSession,
    data: VisitInput,
    *,
    actor: Actor,
    limits: TimeLimits,
    uploads_dir: Path,
    clock: Clock = utc_now,
    visit_id: UUID | None = None,
    allowed_places: set[UUID] | None = None,
    notify_staff: bool = True,
) -> tuple[Visit, list[Appeal]]:
    """Record a visit and its N appeals together; any problem refuses the whole visit and changes nothing.

    `allowed_places`: when given, the visit and its appeals must be at one of these places (the worker's grid).
    The caller runs this inside a transaction or savepoint, so a failure part-way leaves no trace."""
    problems = validate_visit(data)
    place_ids = {data.place_id, *(a.place_id for _, a in data.appeals)} - {None}
    if allowed_places is not None and not place_ids <= allowed_places:
        problems.append(ServiceError(N_("This place is not in your grid."), field="place_id"))
    enterprise = await session.get(Enterprise, data.enterprise_id) if data.enterprise_id else None
    if data.enterprise_id is not None:
        if enterprise is None:
            problems.append(ServiceError(N_("This enterprise is not in the registry."), field="enterprise_id"))
        elif allowed_places is not None and enterprise.place_id not in allowed_places and enterprise.grid_worker_id != actor.user_id:
            problems.append(ServiceError(N_("This enterprise is not in your grid."), field="enterprise_id"))
    if problems:
        raise InvalidVisit(problems)
    now = clock()
    visit = Visit(
        worker_id=actor.user_id,
        place_id=data.place_id or (enterprise.place_id if enterprise else None),
        enterprise_id=enterprise.id if enterprise else None,
        subject_kind=VisitSubject.ENTERPRISE if enterprise else data.subject_kind,
        subject_name=(data.subject_name or "").strip() or (enterprise.name if enterprise else ""),
        purpose=data.purpose,
        notes=(data.notes or "").strip() or None,
        policies=[p.strip() for p in data.policies if p and p.strip()],
        visited_at=now,
    )
    if visit_id is not None:
        visit.id = visit_id
    session.add(visit)
    await session.flush()
    if enterprise is not None:
        # From the field a policy the enterprise no longer matches (the phone's copy was older) is kept,
        # marked off-match: refusing it would refuse the whole visit (docs/policies.md, "Pushes").
        try:
            await enterprises.push(session, enterprise, data.pushes, actor_id=actor.user_id, at=now, visit_id=visit.id,
                                   require_reason=False)
        except enterprises.InvalidEnterprise as error:
            raise InvalidVisit(error.problems) from error
        if enterprise.last_visited_at is None or now > enterprise.last_visited_at:
            enterprise.last_visited_at = now
    collected: list[Appeal] = []
    for index, (appeal_id, appeal) in enumerate(data.appeals):
        appeal.visit_id = visit.id
        try:
            collected.append(await appeals.submit(
                session, appeal, actor=actor, limits=limits, uploads_dir=uploads_dir, clock=clock, appeal_id=appeal_id,
                notify_staff=notify_staff,
            ))
        except InvalidAppeal as error:
            raise InvalidVisit(
                [ServiceError(p.message, field=f"appeals.{index}.{p.field}", **p.params) for p in error.problems]
            ) from error
    return visit, collected
