"""Sync engine properties (issue 4): several phones' offline work, delivered in random interleavings,
duplicated, reordered, split into random batches, with batches cut off midway and retried.

- every mutation takes effect exactly once (one receipt, one record, one timeline event);
- the end state is the same whatever the delivery (for what docs/sync.md makes order-independent);
- every conflict is recorded, nothing is silently lost: each mutation is applied, kept as a conflict,
  or (only the invalid ones made on purpose) rejected with a reason.

Real database, SQLite or PostgreSQL: each run starts from a snapshot (tests/databases.py) holding the
migrated schema, the small world of tests/integration/sync_world.py and the shared cases the phones
pulled: a file copy on SQLite, a reset of the tables on PostgreSQL. `engine.push`
is driven directly with a session per request: commit = acknowledged; rollback = the server died
before committing; commit without reading the answers = the answer was lost on the way.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec
import pytest
from hypothesis import HealthCheck, event as note_event, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text

from server.db import make_alchemy_config, session_scope
from server.models import (
    Appeal,
    AppealChannel,
    AppealEvent,
    AppealStatus,
    ReturnVisit,
    Role,
    SubmitterKind,
    SyncConflict,
    SyncDevice,
    SyncFieldStamp,
    SyncMutation,
    User,
    Visit,
    current_actor,
)
from server.services import appeals as appeal_service
from server.services.appeal_workflow import Action
from server.services.appeals import Actor, ActionInput, AppealInput
from server.services.deadlines import TimeLimits
from server.settings import Settings
from server.services import field_sync
from sync import engine
from sync import protocol as p
from sync.hlc import Clock, wall_clock_ms
from tests.conftest import forget_alchemy_configs
from tests.databases import Databases, settings_for
from tests.integration.sync_world import build_world

EDITABLE = ("description", "location_detail", "submitter_name")
N_OPEN = 3  # open cases both grid workers may edit (created by grid, in their grid)
N_RESOLVED = 3  # resolved cases created by grid and assigned to grid2: both may make the return visit
OK_STATUSES = {p.APPLIED, p.CONFLICT}
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


# -- the template: schema + world + the cases the phones pulled before going offline -------------------


@dataclass(frozen=True)
class Template:
    users: dict[str, UUID]
    places: dict[str, UUID]
    open_ids: list[UUID]
    open_versions: dict[UUID, int]
    open_values: dict[UUID, dict[str, str | None]]
    resolved_ids: list[UUID]
    resolved_versions: dict[UUID, int]


SNAPSHOT = "sync_props"


async def _build_template(settings: Settings) -> Template:
    config = make_alchemy_config(settings)
    limits = TimeLimits.from_settings(settings)
    var = settings.var_dir
    open_ids, resolved_ids = [], []
    try:
        async with session_scope(config) as session:
            world = await build_world(session)
            users = world.users
            grid = Actor(principal=Role.GRID_WORKER, label="王网格", user_id=users["grid"])
            staff = Actor(principal=Role.STAFF, label="李主任", user_id=users["staff"])
            received = datetime.now(UTC) - timedelta(days=2)
            for i in range(N_OPEN + N_RESOLVED):
                current_actor.set(users["grid"])  # as the auth middleware does for a request
                appeal = await appeal_service.submit(
                    session,
                    AppealInput(
                        channel=AppealChannel.VISIT, submitter_kind=SubmitterKind.RESIDENT, category="facilities",
                        description=f"共享案件{i}：楼道灯坏了", place_id=world.compound.id,
                        submitter_name=f"居民{i}", location_detail=f"{i}号楼",
                    ),
                    actor=grid, limits=limits, uploads_dir=var / "uploads", clock=lambda: received,
                )
                if i < N_OPEN:
                    open_ids.append(appeal.id)
                    continue
                current_actor.set(users["staff"])
                await appeal_service.act(session, appeal, Action.TRANSFER, staff, ActionInput(assignee_id=users["grid2"]), limits=limits)
                await appeal_service.act(session, appeal, Action.ACCEPT, staff, limits=limits)
                await appeal_service.act(session, appeal, Action.RESOLVE, staff, ActionInput(note="已修好"), limits=limits)
                resolved_ids.append(appeal.id)
            current_actor.set(None)
            places = {"compound": world.compound.id, "shop": world.shop.id, "building": world.building.id}
        async with session_scope(config) as session:
            rows = {a.id: a for a in await session.scalars(select(Appeal))}
            return Template(
                users=users, places=places, open_ids=open_ids,
                open_versions={i: rows[i].version for i in open_ids},
                open_values={i: {f: getattr(rows[i], f) for f in EDITABLE} for i in open_ids},
                resolved_ids=resolved_ids, resolved_versions={i: rows[i].version for i in resolved_ids},
            )
    finally:
        await config.get_engine().dispose()


@pytest.fixture(scope="module")
def template(databases: Databases) -> Template:
    return databases.snapshot(SNAPSHOT, _build_template)


_runs = count()


# -- scenarios: what each phone did offline -----------------------------------------------------------


@dataclass
class Op:
    """One mutation a phone made offline, and what the contract says about it."""

    body: dict[str, Any]
    user: str
    kind: str  # appeal_create, visit_create, update, return_visit
    reject: str | None = None  # the rejection code, for the invalid ones made on purpose
    created: list[UUID] = field(default_factory=list)  # appeal ids it creates

    @property
    def id(self) -> UUID:
        return UUID(self.body["mutation_id"])

    @property
    def seq(self) -> int:
        return self.body["seq"]

    @property
    def hlc(self) -> str:
        return self.body["hlc"]


@dataclass
class Phone:
    user: str
    id: UUID
    ops: list[Op]


@dataclass
class Scenario:
    phones: list[Phone]
    reopened: set[UUID]  # resolved cases staff reopened while the phones were offline

    @property
    def ops(self) -> list[Op]:
        return [op for phone in self.phones for op in phone.ops]


OP_KINDS = st.sampled_from(["appeal_create", "visit_create", "update", "update", "update", "return_visit", "return_visit", "invalid"])


@st.composite
def scenarios(draw: st.DrawFn, t: Template) -> Scenario:
    users = ["grid", "grid2"] + (["other"] if draw(st.booleans()) else [])
    reopened = set(draw(st.sets(st.sampled_from(t.resolved_ids), max_size=2)))
    start = wall_clock_ms()
    phones = []
    for user in users:
        device = uuid.uuid4()
        # Phone clocks are off: up to ten minutes behind or one minute ahead of the server.
        skew = draw(st.integers(-600_000, 60_000))
        wall = [start + skew - 3_600_000]
        clock = Clock(str(device), now_ms=lambda w=wall: w[0])
        seq = count(1)
        ops = []
        for index, kind in enumerate(draw(st.lists(OP_KINDS, max_size=8))):
            wall[0] += draw(st.integers(0, 120_000))
            tag = f"{user}#{index}"
            recorded = (datetime.now(UTC) - timedelta(hours=2) + timedelta(minutes=index)).isoformat()

            def body(entity: str, op: str, fields: dict[str, Any], entity_id: UUID | None = None, base: int | None = None) -> dict[str, Any]:
                return {
                    "mutation_id": str(uuid.uuid4()), "device_id": str(device), "seq": next(seq), "entity": entity,
                    "entity_id": str(entity_id or uuid.uuid4()), "op": op, "fields": fields, "base_version": base,
                    "hlc": clock.tick().pack(), "recorded_at": recorded,
                }

            place = str(t.places["building" if user == "other" else draw(st.sampled_from(["compound", "shop"]))])
            if user == "other" and kind in {"update", "return_visit"}:
                kind = "invalid"
            if kind == "appeal_create":
                appeal_id = uuid.uuid4()
                ops.append(Op(body("appeal", "create", _appeal(f"{tag} 路灯不亮了", place), appeal_id), user, kind, created=[appeal_id]))
            elif kind == "visit_create":
                ids = [uuid.uuid4() for _ in range(draw(st.integers(0, 3)))]
                fields = {
                    "subject_kind": "household", "subject_name": f"{tag} 住户", "purpose": "first", "place_id": place,
                    "notes": None, "policies": ["高龄津贴"],
                    "appeals": [{"id": str(a), **_appeal(f"{tag} 第{n}件 楼道堆物", place)} for n, a in enumerate(ids)],
                }
                ops.append(Op(body("visit", "create", fields), user, kind, created=ids))
            elif kind == "update":
                target = draw(st.sampled_from(t.open_ids))
                names = draw(st.lists(st.sampled_from(EDITABLE), min_size=1, max_size=3, unique=True))
                fields = {n: (None if n != "description" and draw(st.booleans()) and draw(st.booleans()) else f"{tag} 改{n}") for n in names}
                ops.append(Op(body("appeal", "update", fields, target, t.open_versions[target]), user, kind))
            elif kind == "return_visit":
                target = draw(st.sampled_from(t.resolved_ids))
                evaluation = draw(st.sampled_from([None, "satisfied", "basically_satisfied"]))
                fields = {"method": draw(st.sampled_from(["in_person", "phone"])), "note": f"{tag} 回访"}
                if evaluation:
                    fields["evaluation"] = evaluation
                ops.append(Op(body("appeal", "return_visit", fields, target, t.resolved_versions[target]), user, kind))
            else:
                ops.append(_invalid(draw, body, user, t, place, tag))
        phones.append(Phone(user, device, ops))
    return Scenario(phones, reopened)


def _appeal(description: str, place: str) -> dict[str, Any]:
    return {"submitter_kind": "resident", "category": "facilities", "description": description, "place_id": place, "photos": []}


def _invalid(draw: st.DrawFn, body: Any, user: str, t: Template, place: str, tag: str) -> Op:
    """A mutation the server must refuse, with a reason, and record nothing for."""
    choices = ["short", "category", "unknown_case", "bad_visit"] + (["foreign_edit"] if user == "other" else [])
    what = draw(st.sampled_from(choices))
    if what == "short":
        return Op(body("appeal", "create", _appeal("短", place)), user, "appeal_create", reject=p.INVALID)
    if what == "category":
        return Op(body("appeal", "create", {**_appeal(f"{tag} 无此类别", place), "category": "no-such"}), user, "appeal_create", reject=p.INVALID)
    if what == "unknown_case":
        return Op(body("appeal", "update", {"description": f"{tag} 没有这个案件"}, uuid.uuid4(), 1), user, "update", reject=p.NOT_FOUND)
    if what == "bad_visit":
        fields = {
            "subject_kind": "household", "subject_name": f"{tag} 住户", "purpose": "first", "place_id": place, "policies": [],
            "appeals": [{"id": str(uuid.uuid4()), **_appeal(f"{tag} 好的一件", place)}, {"id": str(uuid.uuid4()), **_appeal("短", place)}],
        }
        return Op(body("visit", "create", fields), user, "visit_create", reject=p.INVALID)
    target = draw(st.sampled_from(t.open_ids))
    return Op(body("appeal", "update", {"description": f"{tag} 别的网格改的"}, target, t.open_versions[target]), user, "update", reject=p.FORBIDDEN)


# -- delivery: the network and the server misbehave ---------------------------------------------------


@dataclass
class Delivery:
    """What happened on the server: the outcomes of every committed push, in commit order."""

    committed: list[tuple[Op, engine.Outcome]] = field(default_factory=list)
    pushes: int = 0
    rolled_back: int = 0
    lost_answers: int = 0


async def _staff_reopen(settings: Settings, t: Template, reopened: set[UUID]) -> None:
    config = make_alchemy_config(settings)
    try:
        async with session_scope(config) as session:
            staff = Actor(principal=Role.STAFF, label="李主任", user_id=t.users["staff"])
            current_actor.set(t.users["staff"])
            for appeal_id in sorted(reopened):
                appeal = await session.get(Appeal, appeal_id)
                assert appeal is not None
                await appeal_service.act(session, appeal, Action.REOPEN, staff, ActionInput(note="居民又来电话"), limits=TimeLimits.from_settings(settings))
    finally:
        await config.get_engine().dispose()


def fresh_settings(databases: Databases, directory: Path) -> Settings:
    """A database of its own for one run, in the snapshot's state."""
    run = next(_runs)
    return settings_for(databases.fresh(SNAPSHOT, directory), directory / f"var-{run}")


async def deliver(data: st.DataObject, scenario: Scenario, t: Template, settings: Settings) -> tuple[Settings, Delivery]:
    """Run one random delivery of the scenario on a fresh database; returns its settings and what happened."""
    await _staff_reopen(settings, t, scenario.reopened)
    config = make_alchemy_config(settings)
    clock = Clock("server")  # one server process; a crash does not matter to the clock's guarantees
    workers = {}
    async with session_scope(config) as session:
        for user in {ph.user for ph in scenario.phones}:
            row = await session.get(User, t.users[user])
            assert row is not None
            workers[user] = row
    out = Delivery()

    async def push(phone: Phone, ops: list[Op], fate: str) -> list[engine.Outcome]:
        ops = sorted(ops, key=lambda o: o.seq)
        request = p.decode_push(msgspec.json.encode({"device_id": str(phone.id), "mutations": [o.body for o in ops]}))
        ctx = field_sync.context_for(workers[phone.user], settings, clock)
        out.pushes += 1
        current_actor.set(workers[phone.user].id)  # the auth middleware sets it for every request
        async with config.get_session() as session:
            outcomes = await engine.push(session, request, ctx)
            assert [o.mutation_id for o in outcomes] == [o.id for o in ops]
            if fate == "died":
                await session.rollback()
                out.rolled_back += 1
                return []
            await session.commit()
        out.committed += list(zip(ops, outcomes, strict=True))
        if fate == "lost":
            out.lost_answers += 1
            return []
        return outcomes

    pending = {ph.id: list(ph.ops) for ph in scenario.phones}
    sent: dict[UUID, list[Op]] = {ph.id: [] for ph in scenario.phones}

    def acknowledge(phone: Phone, ops: list[Op], outcomes: list[engine.Outcome]) -> None:
        if not outcomes:
            return  # no answer: the client keeps everything pending
        for op, outcome in zip(sorted(ops, key=lambda o: o.seq), outcomes, strict=True):
            # applied/duplicate/conflict: sent; rejected: "needs attention" and the worker discards it.
            if op in pending[phone.id]:
                pending[phone.id].remove(op)
                sent[phone.id].append(op)
            assert outcome.status != p.REJECTED or op.reject is not None, (op.body, outcome)

    try:
        for _ in range(data.draw(st.integers(1, 10), label="steps")):
            phone = data.draw(st.sampled_from(scenario.phones), label="phone")
            mode = data.draw(st.sampled_from(["in_order", "in_order", "any", "resend"]), label="mode")
            if mode == "in_order" and pending[phone.id]:
                # The client: its oldest pending mutations, in seq order.
                ops = pending[phone.id][: data.draw(st.integers(1, len(pending[phone.id])), label="size")]
            elif mode == "any" and pending[phone.id]:
                # Newer before older (e.g. an older batch failed and is retried after a newer one went in).
                ops = data.draw(st.lists(st.sampled_from(pending[phone.id]), min_size=1, unique_by=lambda o: o.seq), label="subset")
            elif sent[phone.id]:
                # Already acknowledged mutations sent again, with or without newer ones.
                ops = data.draw(st.lists(st.sampled_from(sent[phone.id] + pending[phone.id]), min_size=1, unique_by=lambda o: o.seq), label="again")
            else:
                continue
            fate = data.draw(st.sampled_from(["ok", "lost", "died", "cut"]), label="fate")
            if fate == "cut":
                # The server died part-way through the batch: the first k mutations ran, nothing committed.
                ops = sorted(ops, key=lambda o: o.seq)[: data.draw(st.integers(1, len(ops)), label="cut")]
                fate = "died"
            acknowledge(phone, ops, await push(phone, ops, fate))
        # Back online for good: every phone flushes its outbox, in order, until nothing is pending.
        for phone in scenario.phones:
            for _ in range(3):
                if pending[phone.id]:
                    ops = list(pending[phone.id])
                    acknowledge(phone, ops, await push(phone, ops, "ok"))
            assert not pending[phone.id], "the outbox did not drain"
    finally:
        await config.get_engine().dispose()
    return settings, out


# -- the contract as a model, run over the order in which the server first committed each mutation ------


@dataclass
class Expected:
    status: str
    fields: list[str] = field(default_factory=list)  # the conflict's fields
    applied: bool = True  # the conflict's `applied`
    kind: str | None = None


def model(scenario: Scenario, order: list[Op], t: Template) -> tuple[dict[UUID, Expected], dict[str, Any]]:
    """docs/sync.md "Conflict rules", applied to the mutations in server commit order."""
    values = {a: dict(v) for a, v in t.open_values.items()}
    versions = {**t.open_versions, **t.resolved_versions}
    stamps: dict[tuple[UUID, str], tuple[str, int, str]] = {}
    edits = Counter()
    status = {a: ("in_progress" if a in scenario.reopened else "resolved") for a in t.resolved_ids}
    for a in scenario.reopened:
        versions[a] += 1
    evaluated: dict[UUID, str] = {}
    visits_done = Counter()
    expected: dict[UUID, Expected] = {}
    for op in order:
        b = op.body
        target = UUID(b["entity_id"])
        if op.kind in {"appeal_create", "visit_create"}:
            expected[op.id] = Expected(p.APPLIED)
        elif op.kind == "update":
            new_version = versions[target] + 1
            stale, applied_any = {}, False
            for name, value in b["fields"].items():
                stamp = stamps.get((target, name))
                wins = True
                if stamp is not None and stamp[1] > b["base_version"]:
                    wins = op.hlc > stamp[0]
                    if stamp[2] != op.user:  # the worker's own earlier edit is no conflict
                        stale[name] = wins
                if wins:
                    values[target][name] = (value or "").strip() or None
                    stamps[(target, name)] = (op.hlc, new_version, op.user)
                    applied_any = True
            if applied_any:
                versions[target] = new_version
                edits[target] += 1
            expected[op.id] = Expected(p.CONFLICT, sorted(stale), all(stale.values()), "field") if stale else Expected(p.APPLIED)
        else:
            evaluation = b["fields"].get("evaluation")
            if status[target] not in {"resolved", "evaluated"} or (evaluation and status[target] != "resolved"):
                expected[op.id] = Expected(p.CONFLICT, sorted(b["fields"]), False, "transition")
                continue
            versions[target] += 1
            visits_done[target] += 1
            if evaluation:
                status[target], evaluated[target] = "evaluated", evaluation
            expected[op.id] = Expected(p.APPLIED)
    state = {"values": values, "versions": versions, "edits": edits, "status": status, "evaluated": evaluated, "return_visits": visits_done}
    return expected, state


# -- checks -------------------------------------------------------------------------------------------


async def check_run(scenario: Scenario, settings: Settings, out: Delivery, t: Template) -> dict[str, Any]:
    """Exactly once, nothing lost, every conflict recorded; returns the order-independent end state."""
    ops = {op.id: op for op in scenario.ops}
    seen: dict[UUID, list[engine.Outcome]] = {op_id: [] for op_id in ops}
    order: list[Op] = []
    for op, outcome in out.committed:
        if outcome.status in OK_STATUSES:
            order.append(op)
        seen[op.id].append(outcome)
    # (a) exactly once: one committed effect per valid mutation, duplicates afterwards; the invalid ones
    # are rejected with a reason every time and never committed.
    for op_id, outcomes in seen.items():
        op = ops[op_id]
        assert outcomes, f"mutation {op.body} was never committed"
        if op.reject:
            assert {(o.status, o.code) for o in outcomes} == {(p.REJECTED, op.reject)}, (op.body, outcomes)
            assert all(o.error is not None and o.error.message for o in outcomes)
            continue
        first, *later = outcomes
        assert first.status in OK_STATUSES, (op.body, first)
        assert all(o.status == p.DUPLICATE and o.original == first.status for o in later), (op.body, outcomes)
    valid = {op_id for op_id, op in ops.items() if not op.reject}
    assert [op.id for op in order] == [op_id for op_id in dict.fromkeys(op.id for op in order)], "a mutation took effect twice"

    expected, state = model(scenario, order, t)
    kinds = Counter(w.kind for w in expected.values() if w.kind)
    note_event(f"field conflicts: {min(kinds['field'], 3)}+" if kinds["field"] >= 3 else f"field conflicts: {kinds['field']}")
    note_event(f"transition conflicts: {'yes' if kinds['transition'] else 'no'}")
    note_event(f"server died mid-push: {'yes' if out.rolled_back else 'no'}; answer lost: {'yes' if out.lost_answers else 'no'}")
    config = make_alchemy_config(settings)
    try:
        async with session_scope(config) as db:
            receipts = dict((await db.execute(select(SyncMutation.id, SyncMutation.outcome))).all())
            assert receipts == {op_id: seen[op_id][0].status for op_id in valid}
            conflicts = list(await db.scalars(select(SyncConflict)))
            by_mutation = {c.mutation_id: c for c in conflicts}
            assert len(by_mutation) == len(conflicts), "a conflict was recorded twice"
            # (c) every conflict recorded, as the rules say, with its fields; no conflict row without one.
            for op_id, want in expected.items():
                got = seen[op_id][0]
                assert got.status == want.status, (ops[op_id].body, got, want)
                if want.status == p.CONFLICT:
                    row = by_mutation.pop(op_id)
                    assert (row.kind.value, sorted(row.fields), row.applied) == (want.kind, want.fields, want.applied), (ops[op_id].body, row.detail)
                    assert row.entity_id == UUID(ops[op_id].body["entity_id"]) and row.user_id == t.users[ops[op_id].user]
            assert not by_mutation, "conflict rows for mutations that had none"

            appeals = {a.id: a for a in await db.scalars(select(Appeal))}
            visits = {v.id: v for v in await db.scalars(select(Visit))}
            events = Counter((e.appeal_id, e.action) for e in await db.scalars(select(AppealEvent)))
            return_visits = Counter(r.appeal_id for r in await db.scalars(select(ReturnVisit)))
            stamps = {(s.entity_id, s.field): s.hlc for s in await db.scalars(select(SyncFieldStamp))}
            devices = {d.id: d for d in await db.scalars(select(SyncDevice))}

            # Every record created exactly once, with one "submit" event; the invalid creations left nothing.
            created = {a for op in scenario.ops if not op.reject for a in op.created}
            refused = {a for op in scenario.ops if op.reject for a in op.created}
            assert created <= set(appeals) and not refused & set(appeals)
            assert set(appeals) == created | set(t.open_ids) | set(t.resolved_ids)
            assert all(events[(a, "submit")] == 1 for a in appeals)
            visit_ops = [op for op in scenario.ops if op.kind == "visit_create"]
            assert set(visits) == {UUID(op.body["entity_id"]) for op in visit_ops if not op.reject}
            for op in visit_ops:
                if not op.reject:
                    assert {appeals[a].visit_id for a in op.created} <= {UUID(op.body["entity_id"])}
                    assert visits[UUID(op.body["entity_id"])].worker_id == t.users[op.user]

            # The end state the model predicts from the commit order.
            for a in t.open_ids:
                assert {f: getattr(appeals[a], f) for f in EDITABLE} == state["values"][a]
                assert appeals[a].version == state["versions"][a]
                assert events[(a, "edit")] == state["edits"][a]
            for a in t.resolved_ids:
                assert appeals[a].status.value == state["status"][a]
                assert (appeals[a].evaluation.value if appeals[a].evaluation else None) == state["evaluated"].get(a)
                assert return_visits[a] == events[(a, "return_visit")] == state["return_visits"][a], "duplicate return visit"
                assert appeals[a].version == state["versions"][a]

            # Order-independent facts straight from docs/sync.md (not from the model).
            writes: dict[tuple[UUID, str], list[Op]] = {}
            for op in scenario.ops:
                if op.kind == "update" and not op.reject:
                    for name in op.body["fields"]:
                        writes.setdefault((UUID(op.body["entity_id"]), name), []).append(op)
            field_conflicts = Counter((c.entity_id, f) for c in conflicts if c.kind.value == "field" for f in c.fields)
            for (a, name), wrote in writes.items():
                last = max(wrote, key=lambda o: o.hlc)
                # Field-level last writer wins by HLC, whatever the delivery order.
                assert getattr(appeals[a], name) == ((last.body["fields"][name] or "").strip() or None)
                assert stamps[(a, name)] == last.hlc
                # All wrote from the same pulled version: when two workers wrote it, at least one stale
                # edit is recorded (at most every write but the first); one worker alone never conflicts.
                if len({o.user for o in wrote}) > 1:
                    recorded = field_conflicts[(a, name)]
                    assert recorded >= 1, f"two workers wrote {name} from the same version and no conflict was recorded"
                    assert recorded < len(wrote), f"{recorded} conflicts recorded for {len(wrote)} writes of {name}"
                else:
                    assert field_conflicts[(a, name)] == 0
            assert set(field_conflicts) <= set(writes)
            for a in t.open_ids:
                if not any(k[0] == a for k in writes):
                    assert {f: getattr(appeals[a], f) for f in EDITABLE} == t.open_values[a]
            transition = Counter(c.entity_id for c in conflicts if c.kind.value == "transition")
            for a in t.resolved_ids:
                sent = [op for op in scenario.ops if op.kind == "return_visit" and UUID(op.body["entity_id"]) == a]
                with_evaluation = [op for op in sent if op.body["fields"].get("evaluation")]
                if a in scenario.reopened:
                    # Staff reopened it: every return visit is kept as a transition conflict, none applied.
                    assert return_visits[a] == 0 and transition[a] == len(sent)
                    assert appeals[a].status is AppealStatus.IN_PROGRESS
                else:
                    # One evaluation wins (the first to arrive); plain return visits always go in.
                    applied = len(sent) - len(with_evaluation) + (1 if with_evaluation else 0)
                    assert return_visits[a] == applied and transition[a] == len(sent) - applied
                    assert appeals[a].status is (AppealStatus.EVALUATED if with_evaluation else AppealStatus.RESOLVED)

            for phone in scenario.phones:
                if not phone.ops:
                    assert phone.id not in devices
                    continue
                device = devices[phone.id]
                assert device.user_id == t.users[phone.user]
                assert device.mutation_count == sum(1 for op in phone.ops if not op.reject)
                assert device.last_seq == len(phone.ops)

            return {
                "appeals": {
                    a.id: (a.status, a.description, a.location_detail, a.submitter_name, a.submitter_phone, a.category,
                           a.visit_id, a.received_at, a.created_by_id, a.evaluation is not None)
                    for a in appeals.values()
                },
                "visits": {v.id: (v.worker_id, v.subject_name, v.visited_at, v.place_id) for v in visits.values()},
                "submits": {a: events[(a, "submit")] for a in appeals},
                "return_visits": dict(return_visits),
                "receipts": set(receipts),
                "stamps": stamps,
                # Which fields conflicted is order-independent; how many times is not (a worker's own
                # repeated edit conflicts only when another worker's write came in between).
                "fields_in_conflict": set(field_conflicts),
                "transition_conflicts": dict(transition),
                "devices": {d.id: (d.user_id, d.last_seq, d.mutation_count) for d in devices.values()},
                "rows": await db.scalar(select(func.count()).select_from(Appeal)),
            }
    finally:
        await config.get_engine().dispose()


# -- the properties -------------------------------------------------------------------------------------


@settings(max_examples=150, **SETTINGS)
@given(data=st.data())
def test_every_mutation_takes_effect_once_and_every_conflict_is_recorded(
    data: st.DataObject, template: Template, databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> None:
    scenario = data.draw(scenarios(template), label="scenario")
    directory = tmp_path_factory.mktemp("run")

    async def run() -> None:
        settings, out = await deliver(data, scenario, template, fresh_settings(databases, directory))
        await check_run(scenario, settings, out, template)

    asyncio.run(run())
    shutil.rmtree(directory, ignore_errors=True)
    forget_alchemy_configs()


@settings(max_examples=80, **SETTINGS)
@given(data=st.data())
def test_the_end_state_is_the_same_whatever_the_delivery(
    data: st.DataObject, template: Template, databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> None:
    scenario = data.draw(scenarios(template), label="scenario")
    directory = tmp_path_factory.mktemp("run")

    async def run() -> None:
        first = await check_run(scenario, *await deliver(data, scenario, template, fresh_settings(databases, directory)), template)
        second = await check_run(scenario, *await deliver(data, scenario, template, fresh_settings(databases, directory)), template)
        assert first == second

    asyncio.run(run())
    shutil.rmtree(directory, ignore_errors=True)
    forget_alchemy_configs()


def test_a_push_that_is_rolled_back_leaves_nothing(template: Template, databases: Databases, tmp_path: Path) -> None:
    """The server dies before committing a push: with the production database config, nothing of it stays."""
    settings = fresh_settings(databases, tmp_path)
    phone = uuid.uuid4()
    clock = Clock(str(phone))
    body = {
        "mutation_id": str(uuid.uuid4()), "device_id": str(phone), "seq": 1, "entity": "appeal", "op": "create",
        "entity_id": str(uuid.uuid4()), "fields": _appeal("小区路灯不亮了", str(template.places["shop"])),
        "hlc": clock.tick().pack(), "recorded_at": datetime.now(UTC).isoformat(),
    }

    async def run() -> tuple[str, int]:
        config = make_alchemy_config(settings)
        try:
            async with config.get_session() as session:
                user = await session.get(User, template.users["grid"])
                assert user is not None
                ctx = field_sync.context_for(user, settings, Clock("server"))
                request = p.decode_push(msgspec.json.encode({"device_id": str(phone), "mutations": [body]}))
                [outcome] = await engine.push(session, request, ctx)
                await session.rollback()  # the server died before the commit
            async with config.get_session() as session:
                left = await session.scalar(select(func.count()).select_from(SyncMutation))
            return outcome.status, left or 0
        finally:
            await config.get_engine().dispose()

    status, receipts_left = asyncio.run(run())
    assert status == p.APPLIED
    assert receipts_left == 0
