"""A scale data set for benchmarks (issue 11): `shanzhi demo --scale N` grows the demo to N times its
cases, through bulk statements, in seconds.

Each copy of the demo's cases (with their timelines, summons and return visits) is moved back in time
by a few hours more than the previous one, so every copy keeps the demo's own mix of channels, categories, statuses and
deadlines; copies of open cases become overdue, as unattended cases do. One more grid worker per five
copies joins the four grids, each with a registered phone (sync device), and takes over its share of the copies of the
demo grid worker's cases. Photos are not copied (they are files). The policy service grows with it: N copies of the policies (with
their revisions), the enterprises (each copy with new valid credit codes) and their pushes. So do the livelihood ledgers
(issue 15): N copies of the projects (with their milestones), the mediation cases (with their sessions) and the recycling
households with their whole ledger (drop-offs and their lines, redemptions, points entries: every copy's balances are
the sums of its entries). The canteen stays one canteen (one ledger a day).
"""

from __future__ import annotations

import random
import secrets
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import Table, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.models import (
    Appeal,
    AppealEvent,
    Enterprise,
    Place,
    PlaceKind,
    Policy,
    PolicyPush,
    PolicyRevision,
    ReturnVisit,
    Role,
    Summons,
    SyncDevice,
    User,
)
from server.models.feed import next_change_seq
from server.services import accounts, credit_code
from server.services.appeals import TRACKING_BYTES
from server.settings import Settings

CHUNK = 1000
HOURS_PER_COPY = 7  # copy k is moved k*7 hours back: x1000 spans the demo's year plus ten months
COPIES_PER_WORKER = 5  # one more grid worker per five copies: 200 at x1000 (about 69,000 cases)


@dataclass(frozen=True)
class ScaleReport:
    appeals: int
    events: int
    grid_workers: int
    devices: int
    policies: int = 0
    enterprises: int = 0
    livelihood_rows: int = 0


def _uuid7() -> UUID:
    """A UUIDv7 (RFC 9562): 48-bit milliseconds, version, random; ids of copies sort after the demo's."""
    millis = int(datetime.now(UTC).timestamp() * 1000)
    value = (millis << 80) | (0x7 << 76) | (secrets.randbits(12) << 64) | (0b10 << 62) | secrets.randbits(62)
    return UUID(int=value)


def _chunks(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for i in range(0, len(rows), CHUNK):
        yield rows[i : i + CHUNK]


async def _insert(session: AsyncSession, table: Table, rows: list[dict[str, Any]]) -> None:
    for chunk in _chunks(rows):
        await session.execute(insert(table), chunk)


def _shift(row: dict[str, Any], delta: timedelta) -> dict[str, Any]:
    return {k: (v - delta if isinstance(v, datetime) else v) for k, v in row.items()}


async def _rows(session: AsyncSession, table: Table) -> list[dict[str, Any]]:
    return [dict(row) for row in (await session.execute(select(table))).mappings()]


async def _next_numbers(session: AsyncSession) -> dict[str, int]:
    """The last reference number used per year ("2025-00042" -> {"2025": 42})."""
    last: dict[str, int] = defaultdict(int)
    for reference in await session.scalars(select(Appeal.reference)):
        year, number = reference.split("-", 1)
        last[year] = max(last[year], int(number))
    return last


async def scale_demo(session: AsyncSession, factor: int, settings: Settings) -> ScaleReport:
    """Grow the loaded demo to `factor` times its cases (the demo itself is copy 0)."""
    if factor < 2:
        return ScaleReport(0, 0, 0, 0)
    appeal_t, event_t = Appeal.__table__, AppealEvent.__table__
    summons_t, visit_t = Summons.__table__, ReturnVisit.__table__
    appeals, events = await _rows(session, appeal_t), await _rows(session, event_t)
    summons, visits = await _rows(session, summons_t), await _rows(session, visit_t)
    numbers = await _next_numbers(session)
    demo_workers = set(await session.scalars(select(User.id).where(User.role == Role.GRID_WORKER)))
    # The new grid workers take over the copies of the demo worker's cases, one copy each in turn, so a
    # worker holds about as many cases as the demo's (a grid worker's home and sync at a realistic size).
    new_workers, devices = await _grid_workers(session, factor // COPIES_PER_WORKER)
    seq = await session.run_sync(lambda sync_session: next_change_seq(sync_session.connection()))
    tz = settings.tz

    new_appeals: list[dict[str, Any]] = []
    new_events: list[dict[str, Any]] = []
    new_summons: list[dict[str, Any]] = []
    new_visits: list[dict[str, Any]] = []
    for copy in range(1, factor):
        delta = timedelta(hours=copy * HOURS_PER_COPY)
        appeal_ids: dict[UUID, UUID] = {}
        event_ids: dict[UUID, UUID] = {}
        for row in sorted(appeals, key=lambda r: r["received_at"]):
            new = _shift(row, delta)
            appeal_ids[row["id"]] = new["id"] = _uuid7()
            year = str(new["received_at"].astimezone(tz).year)
            numbers[year] += 1
            new["reference"] = f"{year}-{numbers[year]:05d}"
            new["tracking_code"] = secrets.token_urlsafe(TRACKING_BYTES)
            new["change_seq"] = seq
            if new_workers and new["assignee_id"] in demo_workers:
                new["assignee_id"] = new_workers[copy % len(new_workers)]
            new_appeals.append(new)
        for row in events:
            new = _shift(row, delta)
            event_ids[row["id"]] = new["id"] = _uuid7()
            new["appeal_id"] = appeal_ids[row["appeal_id"]]
            if new["dedupe_key"]:  # "overdue:response:<case id>:0": the copy's own case id
                new["dedupe_key"] = new["dedupe_key"].replace(str(row["appeal_id"]), str(new["appeal_id"]))
            new_events.append(new)
        for row in summons:
            new = _shift(row, delta)
            new["id"] = _uuid7()
            new["appeal_id"] = appeal_ids[row["appeal_id"]]
            new["whistle_event_id"] = event_ids[row["whistle_event_id"]]
            new_summons.append(new)
        for row in visits:
            new = _shift(row, delta)
            new["id"] = _uuid7()
            new["appeal_id"] = appeal_ids[row["appeal_id"]]
            new_visits.append(new)
    await _insert(session, appeal_t, new_appeals)
    await _insert(session, event_t, new_events)
    await _insert(session, summons_t, new_summons)
    await _insert(session, visit_t, new_visits)
    policies, firms = await _scale_policy_service(session, factor, seq)
    livelihood = await _copy_tables(session, factor, LIVELIHOOD)

    return ScaleReport(len(new_appeals), len(new_events), len(new_workers), devices, policies, firms, livelihood)


async def _scale_policy_service(session: AsyncSession, factor: int, seq: int) -> tuple[int, int]:
    """Copies of the demo's policies (with their revisions), enterprises (new valid credit codes) and their
    pushes: the policy pages, guides, matching and the reach page at N times the subdistrict."""
    policy_t, revision_t = Policy.__table__, PolicyRevision.__table__
    firm_t, push_t = Enterprise.__table__, PolicyPush.__table__
    policies, revisions = await _rows(session, policy_t), await _rows(session, revision_t)
    firms, pushes = await _rows(session, firm_t), await _rows(session, push_t)
    codes = set(await session.scalars(select(Enterprise.credit_code)))
    rng = random.Random(factor)
    new_policies: list[dict[str, Any]] = []
    new_revisions: list[dict[str, Any]] = []
    new_firms: list[dict[str, Any]] = []
    new_pushes: list[dict[str, Any]] = []
    for copy in range(1, factor):
        policy_ids: dict[UUID, UUID] = {}
        firm_ids: dict[UUID, UUID] = {}
        for row in policies:
            policy_ids[row["id"]] = new_id = _uuid7()
            new_policies.append({**row, "id": new_id, "title": f"{row['title']}（{copy + 1}）", "change_seq": seq})
        for row in revisions:
            new_revisions.append({**row, "id": _uuid7(), "policy_id": policy_ids[row["policy_id"]]})
        for row in firms:
            code = row["credit_code"]
            while code in codes:
                body = "".join(rng.choice(credit_code.ALPHABET[:10] + "ABCDEFGH") for _ in range(8))
                code = credit_code.make_code("9", row["credit_code"][1], "370102", credit_code.organisation_code(body))
            codes.add(code)
            firm_ids[row["id"]] = new_id = _uuid7()
            new_firms.append({**row, "id": new_id, "credit_code": code, "name": f"{row['name']}（{copy + 1}）", "change_seq": seq})
        for row in pushes:
            new_pushes.append({**row, "id": _uuid7(), "enterprise_id": firm_ids[row["enterprise_id"]],
                               "policy_id": policy_ids[row["policy_id"]], "visit_id": None, "change_seq": seq})
    await _insert(session, policy_t, new_policies)
    await _insert(session, revision_t, new_revisions)
    await _insert(session, firm_t, new_firms)
    await _insert(session, push_t, new_pushes)
    return len(new_policies), len(new_firms)


@dataclass(frozen=True)
class Copied:
    """A table copied N times: its rows get new ids, their references to tables copied before (or to
    itself) follow to the same copy, and `fresh(row, copy)` replaces what must stay unique."""

    table: str
    fresh: Any = None
    first: Any = None  # sort key putting rows referenced by others of the same table first


def _next_in_series(reference: str, copy: int) -> str:
    prefix, number = reference.rsplit("-", 1)
    return f"{prefix}-{copy * 1000 + int(number)}"


LIVELIHOOD = [
    Copied("project", lambda row, copy: {"title": f"{row['title']}（{copy + 1}）"}),
    Copied("project_milestone"),
    Copied("project_signoff"),  # a copied project awaiting acceptance keeps its signatures and signers
    # TJ2026-007 → TJ2026-1007 in copy 1: the year's series goes on past the demo's numbers.
    Copied("mediation_case", lambda row, copy: {"reference": _next_in_series(row["reference"], copy)}),
    Copied("mediation_session"),
    Copied("recycling_household", lambda row, copy: {"card_number": f"{copy:04d}{row['card_number']}"[-16:],
                                                     "token": secrets.token_urlsafe(24)}),
    Copied("recycling_dropoff"),
    Copied("recycling_dropoff_line"),
    Copied("recycling_redemption"),
    Copied("recycling_points_entry", first=lambda row: row["reverses_id"] is not None),
]


async def _copy_tables(session: AsyncSession, factor: int, plan: list[Copied]) -> int:
    """N-1 more copies of every table of `plan`, in its order, through bulk inserts."""
    from server.models.base import AuditedBase

    tables = {c.table: AuditedBase.metadata.tables[c.table] for c in plan}
    rows = {name: await _rows(session, table) for name, table in tables.items()}
    # Which columns point at a copied table (the copy's own row replaces the original's).
    refs = {name: {fk.parent.name: fk.column.table.name for fk in table.foreign_keys if fk.column.table.name in tables}
            for name, table in tables.items()}
    copied = 0
    for copy in range(1, factor):
        ids = {name: {row["id"]: _uuid7() for row in rows[name]} for name in tables}
        for c in plan:
            new_rows = []
            for row in sorted(rows[c.table], key=c.first or (lambda _row: 0)):
                new = {**row, "id": ids[c.table][row["id"]]}
                for column, target in refs[c.table].items():
                    if new[column] is not None:
                        new[column] = ids[target][new[column]]
                if c.fresh:
                    new.update(c.fresh(row, copy))
                new_rows.append(new)
            await _insert(session, tables[c.table], new_rows)
            copied += len(new_rows)
    return copied


async def _grid_workers(session: AsyncSession, count: int) -> tuple[list[UUID], int]:
    """`count` more grid workers spread over the grids (password: the demo's), each with one phone."""
    grids = list(await session.scalars(select(Place.id).where(Place.kind == PlaceKind.GRID).order_by(Place.code)))
    taken = set(await session.scalars(select(User.username).where(User.username.like("grid%"))))
    if not grids or count <= 0:
        return [], 0
    from server.services.demo import DEMO_PASSWORD

    password_hash = await accounts.hash_password(DEMO_PASSWORD)  # one hash for all: a benchmark data set
    now = datetime.now(UTC)
    users: list[dict[str, Any]] = []
    number = 0
    while len(users) < count:
        number += 1
        username = f"grid{number:03d}"
        if username in taken:
            continue
        users.append(
            {
                "id": _uuid7(), "username": username, "display_name": f"网格员{number:03d}",
                "password_hash": password_hash, "role": Role.GRID_WORKER, "place_id": grids[number % len(grids)],
                "department_id": None, "is_active": True, "created_at": now, "updated_at": now,
            }
        )
    devices = [
        {
            "id": _uuid7(), "user_id": user["id"], "user_agent": "bench", "first_seen_at": now,
            "last_seq": 0, "mutation_count": 0, "rejected_count": 0, "created_at": now, "updated_at": now,
        }
        for user in users
    ]
    await _insert(session, User.__table__, users)
    await _insert(session, SyncDevice.__table__, devices)
    return [user["id"] for user in users], len(devices)


async def counts(session: AsyncSession) -> dict[str, int]:
    tables: Iterable[Any] = (Appeal, AppealEvent, User, SyncDevice, Policy, Enterprise, PolicyPush)
    return {t.__tablename__: int(await session.scalar(select(func.count()).select_from(t)) or 0) for t in tables}
