"""Sync ingest: server time for one phone's day of work pushed as one batch (issue 4: "well under a second").

Builds the small world of tests/integration/sync_world.py on a fresh database, makes a day of mutations
(visits with appeals, quick appeals, plain-field edits, return visits), pushes them through
`sync.engine.push` in one batch and times push + commit; then pushes the same batch again (all
duplicates). Repeats on a fresh database each round. Not a test: see bench/README.md.

    .venv/bin/python -m bench.sync_ingest [--rounds 3] [--database-url postgresql+asyncpg://...] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import shutil
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec
from advanced_alchemy.alembic.commands import AlembicCommands
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from server.db import make_alchemy_config, session_scope
from server.models import AppealChannel, Role, SubmitterKind, User, current_actor
from server.services import appeals as appeal_service
from server.services.appeal_workflow import Action
from server.services.appeals import Actor, ActionInput, AppealInput
from server.services.deadlines import TimeLimits
from server.settings import Settings
from server.services import field_sync
from sync import engine
from sync import protocol as p
from sync.hlc import Clock
from tests.integration.sync_world import build_world


def _migrate(settings: Settings) -> None:
    AlembicCommands(sqlalchemy_config=make_alchemy_config(settings)).upgrade("head")


async def _reset_pg(url: str) -> None:
    eng = create_async_engine(url)
    try:
        async with eng.begin() as conn:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
    finally:
        await eng.dispose()


def _appeal(description: str, place: UUID) -> dict[str, Any]:
    return {"submitter_kind": "resident", "category": "facilities", "description": description, "place_id": str(place), "photos": []}


async def _prepare(settings: Settings, n_shared: int, n_resolved: int) -> dict[str, Any]:
    """The world, plus the cases the phone pulled: open ones to edit, resolved ones to return-visit."""
    config = make_alchemy_config(settings)
    limits = TimeLimits.from_settings(settings)
    try:
        async with session_scope(config) as session:
            world = await build_world(session)
            grid = Actor(principal=Role.GRID_WORKER, label="王网格", user_id=world.users["grid"])
            staff = Actor(principal=Role.STAFF, label="李主任", user_id=world.users["staff"])
            shared, resolved = [], []
            for i in range(n_shared + n_resolved):
                current_actor.set(world.users["grid"])
                appeal = await appeal_service.submit(
                    session, AppealInput(channel=AppealChannel.VISIT, submitter_kind=SubmitterKind.RESIDENT, category="facilities",
                                         description=f"已有案件{i}：楼道灯坏了", place_id=world.compound.id),
                    actor=grid, limits=limits, uploads_dir=settings.uploads_dir, clock=lambda: datetime.now(UTC) - timedelta(days=3),
                )
                if i < n_shared:
                    shared.append((appeal.id, appeal.version))
                    continue
                current_actor.set(world.users["staff"])
                await appeal_service.act(session, appeal, Action.ACCEPT, staff, limits=limits)
                await appeal_service.act(session, appeal, Action.RESOLVE, staff, ActionInput(note="已修好"), limits=limits)
                resolved.append((appeal.id, appeal.version))
            current_actor.set(None)
            user = await session.get(User, world.users["grid"])
            assert user is not None
            worker = user
            return {"world": world, "worker": worker, "shared": shared, "resolved": resolved}
    finally:
        await config.get_engine().dispose()


def day_of_work(prep: dict[str, Any], visits: int, per_visit: int, quick: int, updates: int, return_visits: int) -> bytes:
    """One phone's day, as the outbox would send it (one device, seq 1..n, HLC stamps)."""
    world = prep["world"]
    device = uuid.uuid4()
    clock = Clock(str(device))
    start = datetime.now(UTC) - timedelta(hours=9)
    mutations: list[dict[str, Any]] = []

    def add(entity: str, op: str, fields: dict[str, Any], entity_id: UUID | None = None, base: int | None = None) -> None:
        n = len(mutations)
        mutations.append({
            "mutation_id": str(uuid.uuid4()), "device_id": str(device), "seq": n + 1, "entity": entity,
            "entity_id": str(entity_id or uuid.uuid4()), "op": op, "fields": fields, "base_version": base,
            "hlc": clock.tick().pack(), "recorded_at": (start + timedelta(seconds=60 * n)).isoformat(),
        })

    for v in range(visits):
        add("visit", "create", {
            "subject_kind": "household", "subject_name": f"{v}号楼住户", "purpose": "first", "place_id": str(world.compound.id),
            "notes": "走访记录", "policies": ["高龄津贴"],
            "appeals": [{"id": str(uuid.uuid4()), **_appeal(f"走访{v}第{i}件：楼道堆物", world.compound.id)} for i in range(per_visit)],
        })
    for q in range(quick):
        add("appeal", "create", _appeal(f"快速诉求{q}：路灯不亮", world.shop.id))
    shared = prep["shared"]
    for u in range(updates):
        appeal_id, version = shared[u % len(shared)]
        add("appeal", "update", {"description": f"补充说明{u}：已联系物业", "location_detail": f"{u}单元"}, appeal_id, version)
    for r, (appeal_id, version) in enumerate(prep["resolved"][:return_visits]):
        add("appeal", "return_visit", {"method": "in_person", "evaluation": "satisfied", "note": f"回访{r}"}, appeal_id, version)
    return msgspec.json.encode({"device_id": str(device), "mutations": mutations})


async def _push(settings: Settings, prep: dict[str, Any], body: bytes, profile: cProfile.Profile | None = None) -> tuple[float, dict[str, int]]:
    config = make_alchemy_config(settings)
    worker = prep["worker"]
    ctx = field_sync.context_for(worker, settings, Clock("server"))
    current_actor.set(worker.id)
    try:
        # Warm the connection pool so the timing is the server's work, not the first connect.
        async with config.get_session() as session:
            await session.execute(text("SELECT 1"))
        request = p.decode_push(body)
        async with config.get_session() as session:
            if profile:
                profile.enable()
            started = time.perf_counter()
            outcomes = await engine.push(session, request, ctx)
            await session.commit()
            elapsed = time.perf_counter() - started
            if profile:
                profile.disable()
        counts: dict[str, int] = {}
        for o in outcomes:
            counts[o.status] = counts.get(o.status, 0) + 1
        return elapsed, counts
    finally:
        current_actor.set(None)
        await config.get_engine().dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="a PostgreSQL URL (its public schema is DROPPED each round); default: fresh SQLite files")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--visits", type=int, default=20)
    parser.add_argument("--per-visit", type=int, default=3)
    parser.add_argument("--quick", type=int, default=100)
    parser.add_argument("--updates", type=int, default=100)
    parser.add_argument("--return-visits", type=int, default=30)
    parser.add_argument("--profile", action="store_true", help="cProfile the first push; print the top calls")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="shanzhi-bench-"))
    rows = []
    profile = cProfile.Profile() if args.profile else None
    try:
        template = work / "template.db"
        if not args.database_url:
            _migrate(Settings(database_url=f"sqlite+aiosqlite:///{template}", secret_key="b" * 48, var_dir=work))
        for round_ in range(1, args.rounds + 1):
            if args.database_url:
                asyncio.run(_reset_pg(args.database_url))
                settings = Settings(database_url=args.database_url, secret_key="b" * 48, var_dir=work)
                _migrate(settings)
            else:
                path = work / f"round-{round_}.db"
                shutil.copyfile(template, path)
                settings = Settings(database_url=f"sqlite+aiosqlite:///{path}", secret_key="b" * 48, var_dir=work)
            prep = asyncio.run(_prepare(settings, n_shared=10, n_resolved=args.return_visits))
            body = day_of_work(prep, args.visits, args.per_visit, args.quick, args.updates, args.return_visits)
            n = len(msgspec.json.decode(body)["mutations"])
            first, counts = asyncio.run(_push(settings, prep, body, profile if round_ == 1 else None))
            again, counts_again = asyncio.run(_push(settings, prep, body))
            rows.append((round_, n, first, counts, again, counts_again))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    backend = "PostgreSQL" if args.database_url else "SQLite (file, WAL)"
    print(f"sync ingest, {backend}: one batch of {rows[0][1]} mutations "
          f"({args.visits} visits x {args.per_visit} appeals, {args.quick} appeals, {args.updates} updates, {args.return_visits} return visits)")
    print(f"{'round':>5} {'mutations':>9} {'push+commit ms':>15} {'ms/mutation':>12} {'again (duplicates) ms':>22}  outcomes")
    for round_, n, first, counts, again, counts_again in rows:
        print(f"{round_:>5} {n:>9} {first * 1000:>15.0f} {first * 1000 / n:>12.2f} {again * 1000:>22.0f}  {counts} / {counts_again}")
    print(f"median push+commit: {statistics.median(r[2] for r in rows) * 1000:.0f} ms; "
          f"median duplicate push: {statistics.median(r[4] for r in rows) * 1000:.0f} ms")
    if profile is not None:
        out = io.StringIO()
        stats = pstats.Stats(profile, stream=out)
        stats.sort_stats("cumulative").print_stats(r"(server|sync)/", 25)
        print(out.getvalue())


if __name__ == "__main__":
    main()
