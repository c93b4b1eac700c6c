"""Mediation cases (L6, 行走的矛盾调解室): register and edit cases, record sessions and outcomes, and the
public counts. docs/boards.md, "canteen" (mediation part).

Who: staff and admins register, edit and see every case; a mediator is a staff member, an admin or a
volunteer, and a volunteer sees and works on the cases they mediate only. Parties, summary and session
notes are private to them; the public sees counts by type and outcome, never a case.

Status follows the record: 已受理 (open) until a session is held, 调解中 (in progress) with sessions,
已结案 (closed) once an outcome is recorded (clearing the outcome reopens the case).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from server.i18n import N_, gettext
from server.models import MediationCase, MediationKind, MediationOutcome, MediationSession, MediationStatus, Place, Role, User
from server.services import overview
from server.services.errors import InvalidInput, ServiceError, past_day
from server.services.exports import csv_bytes
from server.services.shared_cache import watch

KIND_LABELS = {
    MediationKind.NEIGHBOURS: N_("Neighbour dispute"),  # 邻里纠纷
    MediationKind.PROPERTY: N_("Property management dispute"),  # 物业纠纷
    MediationKind.FAMILY: N_("Family conflict"),  # 家庭矛盾
    MediationKind.NOISE: N_("Noise nuisance"),  # 噪音扰民
    MediationKind.LEAK: N_("Water leak"),  # 漏水
    MediationKind.PARKING: N_("Parking"),  # 停车
    MediationKind.OTHER: N_("Other"),
}
OUTCOME_LABELS = {
    MediationOutcome.SUCCESS: N_("Settled"),  # 调解成功
    MediationOutcome.PARTIAL: N_("Partly settled"),  # 部分达成
    MediationOutcome.FAILED: N_("Not settled"),  # 未达成
    MediationOutcome.REFERRED: N_("Referred on"),  # 转办
}
STATUS_LABELS = {
    MediationStatus.OPEN: N_("Registered"),  # 已受理
    MediationStatus.IN_PROGRESS: N_("Mediating"),  # 调解中
    MediationStatus.CLOSED: N_("Concluded"),  # 已结案
}
RESOLVED = (MediationOutcome.SUCCESS, MediationOutcome.PARTIAL)  # 化解: settled in full or in part
MEDIATOR_ROLES = (Role.ADMIN, Role.STAFF, Role.VOLUNTEER)
SEES_ALL = (Role.ADMIN, Role.STAFF)
MAX_PARTIES = 6
MAX_TEXT = 5000
PAGE_SIZE = 30
PHONE_RE = re.compile(r"^[0-9+\-() ]{5,20}$")


# The public counts page (/mediation) is shared between visitors until a commit writes one of these.
PUBLIC_TOPIC = "mediation_public"
watch(MediationCase, PUBLIC_TOPIC)
watch(MediationSession, PUBLIC_TOPIC)


class InvalidCase(InvalidInput):
    pass


@dataclass
class Party:
    name: str = ""
    phone: str = ""


@dataclass
class CaseInput:
    kind: str = ""
    opened_on: str = ""
    place_id: UUID | None = None
    summary: str = ""
    parties: list[Party] = field(default_factory=list)
    mediator_id: UUID | None = None


@dataclass
class SessionInput:
    held_on: str = ""
    venue: str = ""
    notes: str = ""


async def mediators(session: AsyncSession) -> list[User]:
    return list(await session.scalars(select(User).where(User.role.in_(MEDIATOR_ROLES), User.is_active.is_(True))
                                      .order_by(User.role, User.display_name, User.id)))


REFERENCE_LOCK_BASE = 0x5348_5A4D_0000  # + the year: the advisory lock key of that year's case numbering (appeals use their own)


async def _next_reference(session: AsyncSession, year: int) -> str:
    """TJ<year>-<n>: one more than the year's highest number (numerically: TJ2026-1000 follows TJ2026-999,
    and the demo's TJ2026-1007 counts as 1007). On PostgreSQL the transactions that register a case take
    turns until commit (SQLite's writers already do), so two staff registering at once get two numbers."""
    prefix = f"TJ{year}-"
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": REFERENCE_LOCK_BASE + year})
    # Longest first, then highest: the order of the numbers (as text, "TJ2026-999" sorts after "TJ2026-1000").
    candidates = await session.scalars(select(MediationCase.reference).where(MediationCase.reference.like(f"{prefix}%"))
                                       .order_by(func.length(MediationCase.reference).desc(), MediationCase.reference.desc())
                                       .limit(20))
    last = max((int(ref.removeprefix(prefix)) for ref in candidates if ref.removeprefix(prefix).isdecimal()
                and ref.removeprefix(prefix).isascii()), default=0)
    return f"{prefix}{last + 1:03d}"


async def save_case(session: AsyncSession, data: CaseInput, *, today: date, case: MediationCase | None = None) -> MediationCase:
    """Register a case or change its details (InvalidCase with every problem, nothing written)."""
    problems: list[ServiceError] = []
    if data.kind not in {k.value for k in MediationKind}:
        problems.append(ServiceError(N_("Please choose one of the options."), field="kind"))
    opened_on = past_day(data.opened_on, "opened_on", today, problems)
    parties = [Party(p.name.strip(), p.phone.strip()) for p in data.parties if p.name.strip() or p.phone.strip()]
    if not parties:
        problems.append(ServiceError(N_("Please name at least one party."), field="parties"))
    elif len(parties) > MAX_PARTIES:
        problems.append(ServiceError(N_("At most %(n)d parties."), field="parties", n=MAX_PARTIES))
    for party in parties:
        if not party.name:
            problems.append(ServiceError(N_("Each party needs a name."), field="parties"))
            break
        if len(party.name) > 60:
            problems.append(ServiceError(N_("Please keep each name under %(n)d characters."), field="parties", n=60))
            break
        if party.phone and not PHONE_RE.match(party.phone):
            problems.append(ServiceError(N_("This phone number does not look right."), field="parties"))
            break
    summary = data.summary.strip()
    if not summary:
        problems.append(ServiceError(N_("Please describe the dispute."), field="summary"))
    elif len(summary) > MAX_TEXT:
        problems.append(ServiceError(N_("Please keep the text under %(n)d characters."), field="summary", n=MAX_TEXT))
    if data.place_id is not None and await session.get(Place, data.place_id) is None:
        problems.append(ServiceError(N_("This place does not exist."), field="place_id"))
    if data.mediator_id is not None:
        mediator = await session.get(User, data.mediator_id)
        if mediator is None or mediator.role not in MEDIATOR_ROLES or not mediator.is_active:
            problems.append(ServiceError(N_("Please choose a mediator from the list."), field="mediator_id"))
    if problems:
        raise InvalidCase(problems)
    assert opened_on is not None
    if case is None:
        case = MediationCase(reference=await _next_reference(session, opened_on.year), status=MediationStatus.OPEN, outcome_note="")
        session.add(case)
    else:
        case.version += 1
    case.kind, case.opened_on, case.place_id, case.summary = MediationKind(data.kind), opened_on, data.place_id, summary
    case.parties = [{"name": p.name, "phone": p.phone} for p in parties]
    case.mediator_id = data.mediator_id
    await session.flush()
    return case


async def add_session(session: AsyncSession, case: MediationCase, data: SessionInput, *, mediator_id: UUID | None,
                      today: date) -> MediationSession:
    problems: list[ServiceError] = []
    held_on = past_day(data.held_on, "held_on", today, problems)
    if held_on is not None and held_on < case.opened_on:
        problems.append(ServiceError(N_("A session cannot be held before the case was registered."), field="held_on"))
    if len(data.venue.strip()) > 200:
        problems.append(ServiceError(N_("Please keep the place under %(n)d characters."), field="venue", n=200))
    notes = data.notes.strip()
    if not notes:
        problems.append(ServiceError(N_("Please write what was discussed or agreed."), field="notes"))
    elif len(notes) > MAX_TEXT:
        problems.append(ServiceError(N_("Please keep the text under %(n)d characters."), field="notes", n=MAX_TEXT))
    if problems:
        raise InvalidCase(problems)
    assert held_on is not None
    row = MediationSession(case_id=case.id, held_on=held_on, venue=data.venue.strip(), notes=notes, mediator_id=mediator_id)
    session.add(row)
    if case.status is MediationStatus.OPEN:
        case.status = MediationStatus.IN_PROGRESS
    case.version += 1
    await session.flush()
    return row


async def record_outcome(session: AsyncSession, case: MediationCase, outcome: str, note: str, closed_on: str, *, today: date) -> MediationCase:
    """Conclude a case with its outcome, or reopen it (outcome "")."""
    problems: list[ServiceError] = []
    if outcome and outcome not in {o.value for o in MediationOutcome}:
        problems.append(ServiceError(N_("Please choose one of the options."), field="outcome"))
    day = None
    if outcome:
        day = past_day(closed_on, "closed_on", today, problems)
        if day is not None and day < case.opened_on:
            problems.append(ServiceError(N_("A case cannot be concluded before it was registered."), field="closed_on"))
    if len(note.strip()) > MAX_TEXT:
        problems.append(ServiceError(N_("Please keep the text under %(n)d characters."), field="outcome_note", n=MAX_TEXT))
    if problems:
        raise InvalidCase(problems)
    if outcome:
        case.outcome, case.closed_on, case.status = MediationOutcome(outcome), day, MediationStatus.CLOSED
    else:
        has_sessions = await session.scalar(select(MediationSession.id).where(MediationSession.case_id == case.id).limit(1))
        case.outcome, case.closed_on = None, None
        case.status = MediationStatus.IN_PROGRESS if has_sessions else MediationStatus.OPEN
    case.outcome_note = note.strip()
    case.version += 1
    await session.flush()
    return case


def may_see(role: Role, user_id: UUID, case: MediationCase) -> bool:
    """Staff and admins see every case; a volunteer the cases they mediate."""
    return role in SEES_ALL or (role in MEDIATOR_ROLES and case.mediator_id == user_id)


@dataclass
class CaseFilter:
    status: str = ""
    kind: str = ""
    page: int = 1


async def listing(session: AsyncSession, f: CaseFilter, *, mediator_id: UUID | None) -> tuple[list[MediationCase], int, int, int]:
    """(cases, total, page, pages): every case, or one mediator's."""
    conditions: list[Any] = []
    if mediator_id is not None:
        conditions.append(MediationCase.mediator_id == mediator_id)
    if f.status in {s.value for s in MediationStatus}:
        conditions.append(MediationCase.status == MediationStatus(f.status))
    if f.kind in {k.value for k in MediationKind}:
        conditions.append(MediationCase.kind == MediationKind(f.kind))
    total = int(await session.scalar(select(func.count()).select_from(MediationCase).where(*conditions)) or 0)
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(1, f.page), pages)
    rows = list(await session.scalars(select(MediationCase).where(*conditions)
                                      .order_by(MediationCase.opened_on.desc(), MediationCase.reference.desc())
                                      .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)))
    return rows, total, page, pages


async def sessions_of(session: AsyncSession, case_id: UUID) -> list[MediationSession]:
    return list(await session.scalars(select(MediationSession).where(MediationSession.case_id == case_id)
                                      .order_by(MediationSession.held_on, MediationSession.created_at)))


# --- Public counts ---------------------------------------------------------------------------------------


@dataclass
class PublicCounts:
    year: int
    total: int  # registered this year
    concluded: int
    resolved: int  # settled in full or in part
    in_hand: int
    by_kind: list[tuple[MediationKind, int]]
    by_outcome: list[tuple[MediationOutcome, int]]
    all_time: int


async def public_counts(session: AsyncSession, now: datetime, tz: ZoneInfo) -> PublicCounts:
    """Counts of this year's cases (registered from 1 January, the subdistrict's date): by type, by outcome."""
    year = now.astimezone(tz).year
    in_year = [MediationCase.opened_on >= date(year, 1, 1), MediationCase.opened_on < date(year + 1, 1, 1)]
    kinds = dict((await session.execute(select(MediationCase.kind, func.count()).where(*in_year).group_by(MediationCase.kind))).all())
    outcomes = dict((await session.execute(select(MediationCase.outcome, func.count()).where(*in_year, MediationCase.outcome.is_not(None))
                                           .group_by(MediationCase.outcome))).all())
    total = sum(int(n) for n in kinds.values())
    concluded = sum(int(n) for n in outcomes.values())
    return PublicCounts(
        year=year, total=total, concluded=concluded,
        resolved=sum(int(outcomes.get(o, 0)) for o in RESOLVED), in_hand=total - concluded,
        by_kind=[(k, int(kinds[k])) for k in MediationKind if kinds.get(k)],
        by_outcome=[(o, int(outcomes[o])) for o in MediationOutcome if outcomes.get(o)],
        all_time=int(await session.scalar(select(func.count()).select_from(MediationCase)) or 0),
    )


async def export_counts_csv(session: AsyncSession) -> bytes:
    """Counts per month (of registration) and type: registered, then by outcome, and still in hand. No case, no party."""
    rows = (await session.execute(select(MediationCase.opened_on, MediationCase.kind, MediationCase.outcome, func.count())
                                  .group_by(MediationCase.opened_on, MediationCase.kind, MediationCase.outcome))).all()
    table: dict[tuple[str, MediationKind], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for opened_on, kind, outcome, n in rows:  # counted per day in SQL, folded into months here
        cell = table[(opened_on.strftime("%Y-%m"), MediationKind(kind))]
        cell["total"] += int(n)
        cell[MediationOutcome(outcome).value if outcome else "open"] += int(n)
    header = [gettext("Month"), gettext("Type"), gettext("Registered"), *(gettext(OUTCOME_LABELS[o]) for o in MediationOutcome),
              gettext("In hand")]
    lines = [[month, gettext(KIND_LABELS[kind]), c["total"], *(c[o.value] for o in MediationOutcome), c["open"]]
             for (month, kind), c in sorted(table.items(), key=lambda item: (item[0][0], list(MediationKind).index(item[0][1])))]
    return csv_bytes(header, lines)


@overview.contributes(MediationCase)
async def mediation_figures(session: AsyncSession, now: datetime, tz: ZoneInfo) -> dict[str, Any]:
    """Every mediation case recorded (the seed: 18 this year), and how many were settled in full or in part."""
    return {
        "mediation_cases": int(await session.scalar(select(func.count()).select_from(MediationCase)) or 0),
        "mediation_cases_resolved": int(await session.scalar(select(func.count()).select_from(MediationCase)
                                                             .where(MediationCase.outcome.in_(RESOLVED))) or 0),
    }
