"""The enterprise registry (P3) and policy pushes (P4): one write path for enterprises (form, CSV
import, demo), the credit-code rule, CSV in and out, and recording pushes and their outcomes.
docs/policies.md.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.i18n import N_
from server.models import Enterprise, Place, Policy, PolicyPush, PolicyStatus, PushOutcome, Role, User
from server.models.places import LEAF_KINDS
from server.services import credit_code, exports, policies
from server.services import policy_facets as facets
from server.services.errors import InvalidInput, ServiceError

LIAISON_LEVELS = {
    "leader": N_("Subdistrict leadership"),  # 街道领导班子
    "cppcc": N_("CPPCC member"),  # 政协委员
    "section_head": N_("Section head"),  # 科室负责人
    "community": N_("Community worker"),  # 社区工作人员
}
MAX_NAME = 200
MAX_CONTACT = 60
MAX_PHONE = 32
MAX_REASON = 500
MAX_AMOUNT = 10**11  # yuan
PAGE_SIZE = 50


@dataclass
class EnterpriseInput:
    credit_code: str = ""
    name: str = ""
    industry: str = ""
    size: str = ""
    stage: str = ""
    registered_on: str = ""  # ISO date or ""
    place_id: UUID | None = None
    is_key: bool = False
    contact_name: str = ""
    contact_phone: str = ""
    grid_worker_id: UUID | None = None
    liaisons: dict[str, str] = field(default_factory=dict)


class InvalidEnterprise(InvalidInput):
    pass


def code_problem(code: str) -> ServiceError | None:
    found = credit_code.problem(code)
    return ServiceError(found.message, field="credit_code", **found.params) if found else None


async def validate(session: AsyncSession, data: EnterpriseInput, *, existing: Enterprise | None = None,
                   places: dict[UUID, Place] | None = None, workers: set[UUID] | None = None) -> list[ServiceError]:
    """Every problem with the input; `places` / `workers` let an import check thousands of rows set-wise."""
    problems: list[ServiceError] = []
    code = credit_code.normalise(data.credit_code)
    wrong = code_problem(code)
    if wrong:
        problems.append(wrong)
    elif existing is None or existing.credit_code != code:
        other = await session.scalar(select(Enterprise.name).where(Enterprise.credit_code == code))
        if other is not None:
            problems.append(ServiceError(N_("This credit code is already registered, to %(name)s."), field="credit_code", name=other))
    name = data.name.strip()
    if not name:
        problems.append(ServiceError(N_("Please enter the enterprise's name."), field="name"))
    elif len(name) > MAX_NAME:
        problems.append(ServiceError(N_("Please keep the name under %(n)d characters."), field="name", n=MAX_NAME))
    for value, facet, name_ in ((data.industry, facets.INDUSTRY, "industry"), (data.size, facets.SIZE, "size"), (data.stage, facets.STAGE, "stage")):
        if value and value not in facet.values:
            problems.append(ServiceError(N_("Please choose one of the options."), field=name_))
    if data.registered_on:
        try:
            date.fromisoformat(data.registered_on)
        except ValueError:
            problems.append(ServiceError(N_("Please enter the registration date as a date (YYYY-MM-DD)."), field="registered_on"))
    if data.place_id is not None:
        place = places.get(data.place_id) if places is not None else await session.get(Place, data.place_id)
        if place is None or place.kind not in LEAF_KINDS:
            problems.append(ServiceError(N_("Please choose a building, park, compound or street."), field="place_id"))
    if data.grid_worker_id is not None:
        known = data.grid_worker_id in workers if workers is not None else await session.scalar(
            select(User.id).where(User.id == data.grid_worker_id, User.role == Role.GRID_WORKER)) is not None
        if not known:
            problems.append(ServiceError(N_("Please choose a grid worker."), field="grid_worker_id"))
    if len(data.contact_name.strip()) > MAX_CONTACT or len(data.contact_phone.strip()) > MAX_PHONE:
        problems.append(ServiceError(N_("The contact is too long."), field="contact_name"))
    if any(level not in LIAISON_LEVELS for level in data.liaisons):
        problems.append(ServiceError(N_("Please choose one of the options."), field="liaisons"))
    return problems


def _apply(enterprise: Enterprise, data: EnterpriseInput) -> None:
    enterprise.credit_code = credit_code.normalise(data.credit_code)
    enterprise.name = data.name.strip()
    enterprise.industry = data.industry or None
    enterprise.size = data.size or None
    enterprise.stage = data.stage or None
    enterprise.registered_on = date.fromisoformat(data.registered_on) if data.registered_on else None
    enterprise.place_id = data.place_id
    enterprise.is_key = data.is_key
    enterprise.contact_name = data.contact_name.strip() or None
    enterprise.contact_phone = data.contact_phone.strip() or None
    enterprise.grid_worker_id = data.grid_worker_id
    enterprise.liaisons = {k: v.strip() for k, v in data.liaisons.items() if v and v.strip()}


async def save(session: AsyncSession, data: EnterpriseInput, enterprise: Enterprise | None = None) -> Enterprise:
    problems = await validate(session, data, existing=enterprise)
    if problems:
        raise InvalidEnterprise(problems)
    if enterprise is None:
        enterprise = Enterprise(version=1)
        session.add(enterprise)
    else:
        enterprise.version += 1
    _apply(enterprise, data)
    await session.flush()
    return enterprise


# --- Listing -------------------------------------------------------------------------------------------------


@dataclass
class EnterpriseFilter:
    q: str = ""
    industry: str = ""
    size: str = ""
    stage: str = ""
    place_id: UUID | None = None
    key_only: bool = False
    worker_id: UUID | None = None
    page: int = 1


def filter_clause(f: EnterpriseFilter) -> list[Any]:
    where: list[Any] = []
    if f.q.strip():
        pattern = f"%{policies.escape_like(f.q.strip())}%"
        where.append(or_(Enterprise.name.like(pattern, escape="\\"), Enterprise.credit_code.like(pattern.upper(), escape="\\")))
    for value, column in ((f.industry, Enterprise.industry), (f.size, Enterprise.size), (f.stage, Enterprise.stage)):
        if value:
            where.append(column == value)
    if f.place_id:
        where.append(Enterprise.place_id == f.place_id)
    if f.key_only:
        where.append(Enterprise.is_key.is_(True))
    if f.worker_id:
        where.append(Enterprise.grid_worker_id == f.worker_id)
    return where


async def listing(session: AsyncSession, f: EnterpriseFilter) -> tuple[list[Enterprise], int, int]:
    where = filter_clause(f)
    total = int(await session.scalar(select(func.count()).select_from(Enterprise).where(*where)) or 0)
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(1, f.page), pages)
    rows = await session.scalars(select(Enterprise).where(*where).order_by(Enterprise.is_key.desc(), Enterprise.name, Enterprise.id)
                                 .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE))
    return list(rows), total, page


# --- CSV import and export -------------------------------------------------------------------------------------

# The documented columns (docs/policies.md, "Importing enterprises"), in order. Export writes the same.
COLUMNS = ("credit_code", "name", "industry", "size", "stage", "registered_on", "place_code", "is_key",
           "contact_name", "contact_phone", "grid_worker", "liaison_leader", "liaison_cppcc", "liaison_section_head",
           "liaison_community")
REQUIRED = ("credit_code", "name")
TRUE = {"1", "true", "yes", "y", "是", "重点"}
MAX_IMPORT_ROWS = 20000


@dataclass
class RowProblem:
    line: int  # the line number in the file (the header is line 1)
    message: str  # translated
    column: str | None = None


@dataclass
class ImportReport:
    rows: int = 0
    created: int = 0
    updated: int = 0
    problems: list[RowProblem] = field(default_factory=list)
    written: bool = False


def decode_csv(raw: bytes) -> str:
    """UTF-8 with or without a BOM (Excel writes one); anything else is refused with a clear message."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ServiceError(N_("The file is not UTF-8 text. In Excel, save it as “CSV UTF-8”.")) from None


async def import_csv(session: AsyncSession, text: str, *, dry_run: bool = False) -> ImportReport:
    """All or nothing: every row is checked first; one bad row and nothing is written (the report lists
    every bad row with its line number and reason). A row whose credit code is registered updates it."""
    report = ImportReport()
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    reader.fieldnames = header
    missing = [c for c in REQUIRED if c not in header]
    unknown = [c for c in header if c not in COLUMNS]
    if missing or unknown:
        report.problems.append(RowProblem(1, ServiceError(
            N_("The header must name the documented columns; missing: %(missing)s; unknown: %(unknown)s."),
            missing=", ".join(missing) or "-", unknown=", ".join(unknown) or "-").translated()))
        return report
    places = {p.id: p for p in await session.scalars(select(Place))}
    place_by_code = {p.code: p for p in places.values()}
    workers = dict((await session.execute(select(User.username, User.id).where(User.role == Role.GRID_WORKER))).all())
    existing = {e.credit_code: e for e in await session.scalars(select(Enterprise))}
    seen: dict[str, int] = {}
    parsed: list[tuple[int, EnterpriseInput]] = []
    for row in reader:
        line = reader.line_num
        report.rows += 1
        if report.rows > MAX_IMPORT_ROWS:
            report.problems.append(RowProblem(line, ServiceError(N_("At most %(n)d rows per file."), n=MAX_IMPORT_ROWS).translated()))
            break
        if None in row:
            report.problems.append(RowProblem(line, ServiceError(N_("This row has more cells than the header.")).translated()))
            continue
        cell = {k: exports.plain((v or "").strip()) for k, v in row.items()}
        row_problems: list[ServiceError] = []
        place_id = None
        if cell.get("place_code"):
            place = place_by_code.get(cell["place_code"])
            if place is None:
                row_problems.append(ServiceError(N_("No place has the code %(code)s."), field="place_code", code=cell["place_code"]))
            else:
                place_id = place.id
        worker_id = None
        if cell.get("grid_worker"):
            worker_id = workers.get(cell["grid_worker"])
            if worker_id is None:
                row_problems.append(ServiceError(N_("No grid worker has the user name %(name)s."), field="grid_worker", name=cell["grid_worker"]))
        data = EnterpriseInput(
            credit_code=cell.get("credit_code", ""), name=cell.get("name", ""), industry=cell.get("industry", "").upper(),
            size=cell.get("size", ""), stage=cell.get("stage", ""), registered_on=cell.get("registered_on", ""),
            place_id=place_id, is_key=cell.get("is_key", "").lower() in TRUE, contact_name=cell.get("contact_name", ""),
            contact_phone=cell.get("contact_phone", ""), grid_worker_id=worker_id,
            liaisons={level: cell.get(f"liaison_{level}", "") for level in LIAISON_LEVELS},
        )
        code = credit_code.normalise(data.credit_code)
        target = existing.get(code)
        row_problems += [p for p in await validate(session, data, existing=target or _Unsaved(code), places=places,
                                                    workers=set(workers.values()))]
        if code and code in seen:
            row_problems.append(ServiceError(N_("The same credit code is on line %(line)d."), field="credit_code", line=seen[code]))
        seen.setdefault(code, line)
        for problem in row_problems:
            report.problems.append(RowProblem(line, problem.translated(), problem.field))
        if not row_problems:
            parsed.append((line, data))
    if report.problems or dry_run:
        report.created = sum(1 for _, d in parsed if credit_code.normalise(d.credit_code) not in existing)
        report.updated = len(parsed) - report.created
        return report
    for _line, data in parsed:
        target = existing.get(credit_code.normalise(data.credit_code))
        if target is None:
            target = Enterprise(version=1)
            session.add(target)
            report.created += 1
        else:
            target.version += 1
            report.updated += 1
        _apply(target, data)
    await session.flush()
    report.written = True
    return report


class _Unsaved:
    """Stands for "the row's own code": a code checked against the registry, not against itself."""

    def __init__(self, code: str) -> None:
        self.credit_code = code


async def export_csv(session: AsyncSession, f: EnterpriseFilter | None = None) -> str:
    """The registry as CSV that Excel opens (UTF-8 with BOM, CRLF, no cell read as a formula), in the
    import's columns."""
    places = dict((await session.execute(select(Place.id, Place.code))).all())
    workers = dict((await session.execute(select(User.id, User.username))).all())
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    query = select(Enterprise).where(*filter_clause(f or EnterpriseFilter())).order_by(Enterprise.name, Enterprise.id)
    for e in await session.scalars(query):
        writer.writerow([exports.cell(value) for value in (
            e.credit_code, e.name, e.industry or "", e.size or "", e.stage or "",
            e.registered_on.isoformat() if e.registered_on else "", places.get(e.place_id, "") if e.place_id else "",
            "1" if e.is_key else "0", e.contact_name or "", e.contact_phone or "",
            workers.get(e.grid_worker_id, "") if e.grid_worker_id else "",
            *((e.liaisons or {}).get(level, "") for level in LIAISON_LEVELS),
        )])
    return out.getvalue()


# --- Pushes (政策上门) and outcomes -------------------------------------------------------------------------------


@dataclass
class PushInput:
    policy_id: UUID
    reason: str | None = None  # needed when the enterprise does not match the policy


async def place_kind_of(session: AsyncSession, enterprise: Enterprise) -> str | None:
    if enterprise.place_id is None:
        return None
    kind = await session.scalar(select(Place.kind).where(Place.id == enterprise.place_id))
    return kind.value if kind else None


async def push(
    session: AsyncSession, enterprise: Enterprise, items: Sequence[PushInput], *, actor_id: UUID | None, at: datetime,
    visit_id: UUID | None = None, require_reason: bool = True, field_name: str = "policy_ids",
) -> list[PolicyPush]:
    """Record policies pushed to an enterprise. A policy must be published (a withdrawn or expired one may
    still be pushed from a phone that had it offline). A policy the enterprise does not match is pushed only
    with a reason (`require_reason`); it is kept as an off-match push, shown apart on the reach page."""
    ids = [i.policy_id for i in items]
    found = {p.id: p for p in await session.scalars(select(Policy).where(Policy.id.in_(ids)))} if ids else {}
    profile = policies.profile_of(enterprise, await place_kind_of(session, enterprise))
    problems: list[ServiceError] = []
    rows: list[PolicyPush] = []
    for item in items:
        policy = found.get(item.policy_id)
        if policy is None or policy.status == PolicyStatus.DRAFT:
            problems.append(ServiceError(N_("This policy is not in the published library."), field=field_name))
            continue
        matched = facets.matches(policy, profile)
        reason = (item.reason or "").strip() or None
        if not matched and require_reason and not reason:
            problems.append(ServiceError(N_("%(name)s does not match “%(title)s”: give a reason to push it anyway."),
                                         field=field_name, name=enterprise.name, title=policy.title))
            continue
        if reason and len(reason) > MAX_REASON:
            problems.append(ServiceError(N_("Please keep the reason under %(n)d characters."), field=field_name, n=MAX_REASON))
            continue
        rows.append(PolicyPush(enterprise_id=enterprise.id, policy_id=policy.id, visit_id=visit_id, pushed_by_id=actor_id,
                               pushed_at=at, matched=matched, reason=None if matched else reason, outcome=PushOutcome.PUSHED, version=1))
    if problems:
        raise InvalidEnterprise(problems)
    session.add_all(rows)
    if visit_id is not None and (enterprise.last_visited_at is None or at > enterprise.last_visited_at):
        enterprise.last_visited_at = at  # a push from the office is not a visit
    enterprise.version += 1  # moves it in the change feed: its worker's phone learns what was pushed
    await session.flush()
    return rows


async def record_outcome(session: AsyncSession, row: PolicyPush, outcome: str, *, amount: str | int | None, note: str | None,
                         actor_id: UUID | None, at: datetime) -> PolicyPush:
    problems: list[ServiceError] = []
    try:
        chosen = PushOutcome(outcome)
    except ValueError:
        chosen = None
        problems.append(ServiceError(N_("Please choose one of the options."), field="outcome"))
    yuan: int | None = None
    if chosen == PushOutcome.GRANTED:
        text = str(amount or "").replace(",", "").replace("，", "").strip()
        try:
            yuan = int(text) if text else None
        except ValueError:
            yuan = -1
        if yuan is None or yuan < 0 or yuan > MAX_AMOUNT:
            problems.append(ServiceError(N_("Please enter the granted amount in whole yuan."), field="amount"))
    if note and len(note) > MAX_REASON:
        problems.append(ServiceError(N_("Please keep the note under %(n)d characters."), field="note", n=MAX_REASON))
    if problems:
        raise InvalidEnterprise(problems)
    assert chosen is not None
    row.outcome = chosen
    row.amount_yuan = yuan
    row.outcome_note = (note or "").strip() or None
    row.outcome_at = at
    row.outcome_by_id = actor_id
    row.version += 1
    enterprise = await session.get(Enterprise, row.enterprise_id)
    if enterprise is not None:
        enterprise.version += 1  # the enterprise moves in the change feed: its worker's phone learns the outcome
    await session.flush()
    return row


async def pushes_of(session: AsyncSession, enterprise_ids: Iterable[UUID]) -> dict[UUID, list[PolicyPush]]:
    ids = list(enterprise_ids)
    found: dict[UUID, list[PolicyPush]] = {i: [] for i in ids}
    if ids:
        for row in await session.scalars(select(PolicyPush).where(PolicyPush.enterprise_id.in_(ids)).order_by(PolicyPush.pushed_at.desc())):
            found[row.enterprise_id].append(row)
    return found


# --- A grid worker's enterprises and work list ---------------------------------------------------------------------


def worker_scope(worker_id: UUID, grid_places: Any) -> Any:
    """The enterprises a grid worker serves: at a place of the grid, or assigned to the worker by name."""
    return or_(Enterprise.place_id.in_(grid_places), Enterprise.grid_worker_id == worker_id)


@dataclass
class WorkItem:
    """An enterprise the worker should visit (docs/policies.md, "The field work list")."""

    enterprise: Enterprise
    never_visited: bool
    unpushed_count: int  # live policies it matches that were never pushed to it
    unpushed: list[Policy]  # the first of them, closing soonest first


def _unpushed_matches(today: date) -> Any:
    """Live policies matching the Enterprise (joined to its Place) that were never pushed to it, as a SELECT of policies."""
    pushed = select(PolicyPush.id).where(PolicyPush.enterprise_id == Enterprise.id, PolicyPush.policy_id == Policy.id)
    return select(Policy).where(policies.live_clause(today), policies.enterprise_match(), ~pushed.exists())


async def work_list(session: AsyncSession, worker_id: UUID, grid_places: Any, today: date, *, limit: int = 10,
                    policies_shown: int = 5) -> tuple[list[WorkItem], int]:
    """The first `limit` enterprises to visit (never visited first, then the longest unvisited) and how many
    there are in all: key and newly registered enterprises never visited or with matching live policies not
    pushed yet, in SQL, so it stays one bounded query at any scale."""
    unpushed = _unpushed_matches(today).with_only_columns(Policy.id).correlate(Enterprise, Place)
    where = [
        worker_scope(worker_id, grid_places),
        or_(Enterprise.is_key.is_(True), Enterprise.stage == "new"),
        or_(Enterprise.last_visited_at.is_(None), unpushed.exists()),
    ]
    base = select(Enterprise).outerjoin(Place, Place.id == Enterprise.place_id).where(*where)
    total = int(await session.scalar(select(func.count()).select_from(base.subquery())) or 0)
    rows = list(await session.scalars(
        # Never visited first, then the longest unvisited; ties by id (the phone sorts the same way, no collation).
        base.order_by(Enterprise.last_visited_at.is_not(None), Enterprise.last_visited_at, Enterprise.id).limit(limit)))
    items = []
    for enterprise in rows:
        matching = (
            _unpushed_matches(today).join_from(Policy, Enterprise, Enterprise.id == enterprise.id)
            .outerjoin(Place, Place.id == Enterprise.place_id)
        )
        count = int(await session.scalar(select(func.count()).select_from(matching.subquery())) or 0)
        first = list(await session.scalars(matching.order_by(*policies.closing_first(today)).limit(policies_shown)))
        items.append(WorkItem(enterprise, enterprise.last_visited_at is None, count, first))
    return items, total


async def of_worker(session: AsyncSession, worker_id: UUID, grid_places: Any, *, limit: int = 1000) -> list[Enterprise]:
    return list(await session.scalars(select(Enterprise).where(worker_scope(worker_id, grid_places)).order_by(Enterprise.name).limit(limit)))


@dataclass(frozen=True)
class PushLine:
    push: PolicyPush
    enterprise_name: str
    policy_title: str


async def pushes_of_worker(session: AsyncSession, worker_id: UUID, grid_places: Any, *, limit: int = 200) -> list[PushLine]:
    """Pushes to the enterprises a worker serves, those without an outcome first, newest first."""
    rows = await session.execute(
        select(PolicyPush, Enterprise.name, Policy.title)
        .join(Enterprise, Enterprise.id == PolicyPush.enterprise_id).join(Policy, Policy.id == PolicyPush.policy_id)
        .where(worker_scope(worker_id, grid_places))
        .order_by((PolicyPush.outcome == PushOutcome.PUSHED).desc(), PolicyPush.pushed_at.desc())
        .limit(limit)
    )
    return [PushLine(push, name, title) for push, name, title in rows.all()]
