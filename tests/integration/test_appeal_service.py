"""appeals.act on real cases: the table's refusals write nothing, every allowed step writes one event, and
each action's own rules (reasons, targets, deadlines, return visit, evaluation) hold."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.models import (
    Appeal,
    AppealEvent,
    AppealStatus,
    Evaluation,
    Notification,
    ReturnVisit,
    Role,
    Summons,
    VisitMethod,
)
from server.services import appeals
from server.services.appeal_workflow import SUBMITTER, Action, Principal, is_allowed, target_of
from server.services.appeals import ActionInput, ScopeError, WorkflowError
from server.services.errors import ServiceError
from server.settings import Settings

from tests.integration.appeal_world import World, make_world

S = AppealStatus
PRINCIPALS: list[Principal] = [*Role, SUBMITTER]
ALLOWED = [(s, a, p) for s, a, p in itertools.product(S, Action, PRINCIPALS) if is_allowed(s, a, p)]
# Allowed by the table but never possible on a received case: nothing has assigned it to a department or
# a grid worker yet, and a whistle (the only way to summon a department) moves it on to transferred.
OUT_OF_SCOPE = {
    (S.RECEIVED, Action.ACCEPT, Role.DEPARTMENT),
    (S.RECEIVED, Action.ACCEPT, Role.GRID_WORKER),
    (S.RECEIVED, Action.COMMENT, Role.DEPARTMENT),
    (S.RECEIVED, Action.REPORT_IN, Role.DEPARTMENT),
}


@pytest.fixture
async def world(db: AsyncSession, settings: Settings) -> World:
    return await make_world(db, settings)


async def snapshot(world: World, appeal: Appeal) -> dict[str, Any]:
    """Everything a refused action must leave as it was, read back from the database."""
    row = (await world.session.execute(select(Appeal.__table__).where(Appeal.id == appeal.id))).one()
    return {
        **row._asdict(),
        "events": await world.count(AppealEvent, appeal_id=appeal.id),
        "notifications": await world.count(Notification),
        "return_visits": await world.count(ReturnVisit, appeal_id=appeal.id),
        "summons": await world.count(Summons, appeal_id=appeal.id),
        "summons_reported": [s.reported_at for s in await world.session.scalars(select(Summons).where(Summons.appeal_id == appeal.id))],
    }


def expected_target(state: S, action: Action) -> S:
    # A whistle on a case nobody has handled yet also counts as its transfer.
    if action is Action.WHISTLE and state is S.RECEIVED:
        return S.TRANSFERRED
    return target_of(state, action)


async def prepare(world: World, appeal: Appeal, action: Action) -> ActionInput:
    """What must exist before the action can succeed, and the payload for it."""
    payload = world.valid_input(action)
    if action is Action.REPORT_IN:
        await world.act(appeal, Action.WHISTLE, Role.STAFF)
    elif action is Action.CLOSE:
        await world.act(appeal, Action.RETURN_VISIT, Role.STAFF)
    elif action is Action.MERGE:
        payload = ActionInput(target_reference=(await world.submit()).reference)
    return payload


@pytest.mark.parametrize("state", list(S), ids=str)
async def test_refused_combinations_raise_and_write_nothing(world: World, state: S) -> None:
    appeal = await world.case_in(state)
    other = await world.submit()
    before = await snapshot(world, appeal)
    refused = [(a, p) for a, p in itertools.product(Action, PRINCIPALS) if not is_allowed(state, a, p)]
    assert refused
    for action, principal in refused:
        payload = ActionInput(target_reference=other.reference) if action is Action.MERGE else world.valid_input(action)
        with pytest.raises(WorkflowError):
            await world.act(appeal, action, principal, payload)
        assert await snapshot(world, appeal) == before, (action, principal)
    assert appeal.status is state


@pytest.mark.parametrize(("state", "action", "principal"), sorted(OUT_OF_SCOPE), ids=str)
async def test_allowed_by_the_table_but_out_of_scope(world: World, state: S, action: Action, principal: Principal) -> None:
    appeal = await world.case_in(state)
    before = await snapshot(world, appeal)
    with pytest.raises(ScopeError):
        await world.act(appeal, action, principal)
    assert await snapshot(world, appeal) == before


@pytest.mark.parametrize(
    ("state", "action", "principal"), [c for c in ALLOWED if c not in OUT_OF_SCOPE], ids=str
)
async def test_allowed_combination_writes_one_event(world: World, state: S, action: Action, principal: Principal) -> None:
    appeal = await world.case_in(state)
    payload = await prepare(world, appeal, action)
    events_before = await world.count(AppealEvent, appeal_id=appeal.id)
    version = appeal.version

    event = await world.act(appeal, action, principal, payload)

    actor = world.actor(principal)
    events = await world.events_of(appeal)
    assert len(events) == events_before + 1
    assert events[-1].id == event.id
    assert (event.action, event.from_status, event.to_status) == (action.value, state, expected_target(state, action))
    assert (event.actor_id, event.actor_label, event.at) == (actor.user_id, actor.label, world.clock.now)
    await world.session.refresh(appeal)
    assert appeal.status is expected_target(state, action)
    assert appeal.version == version + 1


# --- scope -------------------------------------------------------------------------------------------


async def test_another_department_cannot_handle_the_case(world: World) -> None:
    appeal = await world.case_in(S.TRANSFERRED)
    outsider = appeals.Actor.for_user(world.other_department_users["fgw"])
    before = await snapshot(world, appeal)
    for action in (Action.ACCEPT, Action.COMMENT, Action.REPORT_IN):
        with pytest.raises(ScopeError):
            await appeals.act(world.session, appeal, action, outsider, world.valid_input(action), limits=world.limits, clock=world.clock)
    assert await snapshot(world, appeal) == before


async def test_a_grid_worker_handles_only_cases_assigned_to_them(world: World) -> None:
    appeal = await world.submit()
    await world.act(appeal, Action.TRANSFER, Role.STAFF, ActionInput(department_id=world.home_department.id))
    before = await snapshot(world, appeal)
    with pytest.raises(ScopeError):
        await world.act(appeal, Action.ACCEPT, Role.GRID_WORKER)
    assert await snapshot(world, appeal) == before
    await world.act(appeal, Action.COMMENT, Role.GRID_WORKER)  # a note is fine on any case
    await world.act(appeal, Action.TRANSFER, Role.STAFF, ActionInput(assignee_id=world.users[Role.GRID_WORKER].id))
    await world.act(appeal, Action.ACCEPT, Role.GRID_WORKER)
    await world.act(appeal, Action.RESOLVE, Role.GRID_WORKER)
    assert appeal.status is S.RESOLVED


# --- per-action validation ---------------------------------------------------------------------------


async def refused(world: World, appeal: Appeal, action: Action, principal: Principal, payload: ActionInput, error: type[Exception] = ServiceError) -> Exception:
    before = await snapshot(world, appeal)
    with pytest.raises(error) as caught:
        await world.act(appeal, action, principal, payload)
    assert await snapshot(world, appeal) == before
    return caught.value


@pytest.mark.parametrize(
    ("state", "action", "principal"),
    [
        (S.RECEIVED, Action.REJECT, Role.STAFF),
        (S.TRANSFERRED, Action.MARK_COMPLEX, Role.STAFF),
        (S.RESOLVED, Action.REOPEN, Role.ADMIN),
        (S.IN_PROGRESS, Action.RESOLVE, Role.DEPARTMENT),
        (S.IN_PROGRESS, Action.COMMENT, Role.SUPERVISOR),
    ],
    ids=str,
)
@pytest.mark.parametrize("note", [None, "", "   \n "])
async def test_a_reason_is_required(world: World, state: S, action: Action, principal: Principal, note: str | None) -> None:
    appeal = await world.case_in(state)
    error = await refused(world, appeal, action, principal, ActionInput(note=note))
    assert error.field == "note"  # type: ignore[attr-defined]


async def test_an_overlong_reason_is_refused(world: World) -> None:
    appeal = await world.submit()
    error = await refused(world, appeal, Action.REJECT, Role.STAFF, ActionInput(note="长" * (appeals.MAX_NOTE + 1)))
    assert error.field == "note"  # type: ignore[attr-defined]


async def test_transfer_needs_a_known_target(world: World) -> None:
    appeal = await world.submit()
    error = await refused(world, appeal, Action.TRANSFER, Role.STAFF, ActionInput())
    assert error.field == "department_id"  # type: ignore[attr-defined]
    unknown = world.users[Role.VOLUNTEER].id  # an id, but not a department's
    await refused(world, appeal, Action.TRANSFER, Role.STAFF, ActionInput(department_id=unknown))
    # A good department with an unknown person: nothing of the transfer is kept.
    error = await refused(
        world, appeal, Action.TRANSFER, Role.STAFF, ActionInput(department_id=world.home_department.id, assignee_id=world.home_department.id)
    )
    assert error.field == "assignee_id"  # type: ignore[attr-defined]


async def test_transfer_to_a_department_notifies_its_users_only(world: World) -> None:
    appeal = await world.submit()
    await world.act(appeal, Action.TRANSFER, Role.STAFF, ActionInput(department_id=world.home_department.id))
    assert {n.user_id for n in await world.notifications(kind="transfer")} == {world.users[Role.DEPARTMENT].id}
    assert appeal.department_id == world.home_department.id


@pytest.mark.parametrize(
    ("payload_for", "field"),
    [
        (lambda w: ActionInput(department_ids=[], report_by=w.clock.now + timedelta(days=1)), "department_ids"),
        (lambda w: ActionInput(department_ids=[w.home_department.id], report_by=None), "report_by"),
        (lambda w: ActionInput(department_ids=[w.home_department.id], report_by=w.clock.now - timedelta(hours=1)), "report_by"),
        (lambda w: ActionInput(department_ids=[w.home_department.id, w.users[Role.STAFF].id], report_by=w.clock.now + timedelta(days=1)), "department_ids"),
    ],
    ids=["no departments", "no deadline", "past deadline", "unknown department"],
)
async def test_whistle_validation(world: World, payload_for: Any, field: str) -> None:
    appeal = await world.case_in(S.TRANSFERRED)
    world.clock.advance(minutes=30)  # the act below moves the clock by as much again
    error = await refused(world, appeal, Action.WHISTLE, Role.STAFF, payload_for(world))
    assert error.field == field  # type: ignore[attr-defined]


async def test_whistle_summons_departments_who_report_in(world: World) -> None:
    appeal = await world.submit()
    report_by = world.clock.now + timedelta(days=1)
    departments = [world.departments["fgw"].id, world.departments["gxj"].id, world.home_department.id]
    await world.act(appeal, Action.WHISTLE, Role.STAFF, ActionInput(department_ids=departments, report_by=report_by))
    assert appeal.status is S.TRANSFERRED
    summons = list(await world.session.scalars(select(Summons).where(Summons.appeal_id == appeal.id)))
    assert {s.department_id for s in summons} == set(departments)
    summoned_users = {world.other_department_users["fgw"].id, world.other_department_users["gxj"].id, world.users[Role.DEPARTMENT].id}
    assert {n.user_id for n in await world.notifications(kind="summons")} == summoned_users

    # 区城管 reports in on time; a second report-in is refused; an unsummoned department is refused.
    event = await world.act(appeal, Action.REPORT_IN, Role.DEPARTMENT)
    assert event.data == {"late": False}
    await refused(world, appeal, Action.REPORT_IN, Role.DEPARTMENT, world.valid_input(Action.REPORT_IN), WorkflowError)
    outsider = appeals.Actor.for_user(world.other_department_users["rsj"])
    before = await snapshot(world, appeal)
    with pytest.raises(ScopeError):
        await appeals.act(world.session, appeal, Action.REPORT_IN, outsider, world.valid_input(Action.REPORT_IN), limits=world.limits, clock=world.clock)
    assert await snapshot(world, appeal) == before

    # 区发改 reports in after the deadline: recorded, and marked late.
    world.clock.advance(days=2)
    late = appeals.Actor.for_user(world.other_department_users["fgw"])
    event = await appeals.act(world.session, appeal, Action.REPORT_IN, late, ActionInput(note="已到现场"), limits=world.limits, clock=world.clock)
    assert event.data == {"late": True}
    reported = {s.department_id: s.reported_at for s in await world.session.scalars(select(Summons).where(Summons.appeal_id == appeal.id))}
    assert reported[world.departments["gxj"].id] is None
    assert reported[world.departments["fgw"].id] == world.clock.now


async def test_report_in_needs_a_note(world: World) -> None:
    appeal = await world.case_in(S.TRANSFERRED)
    await world.act(appeal, Action.WHISTLE, Role.STAFF)
    await refused(world, appeal, Action.REPORT_IN, Role.DEPARTMENT, ActionInput(note=" "))


@pytest.mark.parametrize("target", ["self", "unknown", "merged", "empty"])
async def test_merge_needs_another_case(world: World, target: str) -> None:
    appeal = await world.submit()
    merged = await world.case_in(S.MERGED)
    reference = {"self": appeal.reference, "unknown": "2026-99999", "merged": merged.reference, "empty": ""}[target]
    error = await refused(world, appeal, Action.MERGE, Role.STAFF, ActionInput(target_reference=reference))
    assert error.field == "target_reference"  # type: ignore[attr-defined]


async def test_merge_points_to_the_other_case(world: World) -> None:
    original = await world.submit()
    duplicate = await world.submit()
    event = await world.act(duplicate, Action.MERGE, Role.STAFF, ActionInput(target_reference=original.reference))
    assert duplicate.merged_into_id == original.id
    assert event.data == {"merged_into": original.reference}


async def test_close_needs_a_return_visit(world: World) -> None:
    appeal = await world.case_in(S.EVALUATED)
    await refused(world, appeal, Action.CLOSE, Role.STAFF, ActionInput(), WorkflowError)
    await world.act(appeal, Action.RETURN_VISIT, Role.GRID_WORKER, ActionInput(method=VisitMethod.IN_PERSON))
    await world.act(appeal, Action.CLOSE, Role.STAFF)
    assert appeal.status is S.CLOSED
    assert appeal.closed_at == world.clock.now


async def test_return_visit_needs_a_method(world: World) -> None:
    appeal = await world.case_in(S.RESOLVED)
    error = await refused(world, appeal, Action.RETURN_VISIT, Role.STAFF, ActionInput(note="电话回访"))
    assert error.field == "method"  # type: ignore[attr-defined]


async def test_only_the_resident_evaluates_an_evaluated_case_again(world: World) -> None:
    """Staff and visitors record one evaluation for the resident; the resident may change it (or their
    own) until the case is closed, and what they say then counts."""
    appeal = await world.case_in(S.EVALUATED)
    error = await refused(world, appeal, Action.EVALUATE, Role.STAFF, ActionInput(evaluation=Evaluation.UNSATISFIED), WorkflowError)
    assert error.message == "This case has already been evaluated."  # type: ignore[attr-defined]
    # Nor through the evaluation recorded at a return visit.
    payload = ActionInput(method=VisitMethod.PHONE, evaluation=Evaluation.UNSATISFIED)
    error = await refused(world, appeal, Action.RETURN_VISIT, Role.STAFF, payload, WorkflowError)
    assert error.field == "evaluation"  # type: ignore[attr-defined]
    assert appeal.evaluation is Evaluation.SATISFIED
    event = await world.act(appeal, Action.EVALUATE, SUBMITTER, ActionInput(evaluation=Evaluation.BASICALLY_SATISFIED, note="基本解决"))
    assert (event.from_status, event.to_status) == (S.EVALUATED, S.EVALUATED)
    assert (appeal.evaluation, appeal.resident_evaluation) == (Evaluation.BASICALLY_SATISFIED, Evaluation.BASICALLY_SATISFIED)
    event = await world.act(appeal, Action.EVALUATE, SUBMITTER, ActionInput(evaluation=Evaluation.UNSATISFIED, note="又坏了"))
    assert (event.from_status, event.to_status) == (S.EVALUATED, S.IN_PROGRESS)
    assert appeal.resident_evaluation is Evaluation.UNSATISFIED and appeal.reopen_count == 1


async def test_a_closed_case_takes_no_evaluation(world: World) -> None:
    appeal = await world.case_in(S.CLOSED)
    await refused(world, appeal, Action.EVALUATE, SUBMITTER, ActionInput(evaluation=Evaluation.UNSATISFIED), WorkflowError)


async def test_who_evaluated_is_recorded(world: World) -> None:
    """A return visit's evaluation is the visit's; the resident's own is theirs; both are kept."""
    appeal = await world.case_in(S.RESOLVED)
    await world.act(appeal, Action.RETURN_VISIT, Role.GRID_WORKER, ActionInput(method=VisitMethod.PHONE, evaluation=Evaluation.SATISFIED))
    assert (appeal.visit_evaluation, appeal.resident_evaluation, appeal.evaluation) == (Evaluation.SATISFIED, None, Evaluation.SATISFIED)
    event = await world.act(appeal, Action.EVALUATE, SUBMITTER, ActionInput(evaluation=Evaluation.BASICALLY_SATISFIED))
    assert event.data == {"evaluation": "basically_satisfied", "by": "resident"}
    assert (appeal.visit_evaluation, appeal.resident_evaluation, appeal.evaluation) == (
        Evaluation.SATISFIED, Evaluation.BASICALLY_SATISFIED, Evaluation.BASICALLY_SATISFIED,
    )


async def test_an_evaluation_must_be_chosen(world: World) -> None:
    appeal = await world.case_in(S.RESOLVED)
    error = await refused(world, appeal, Action.EVALUATE, SUBMITTER, ActionInput(note="还行"))
    assert error.field == "evaluation"  # type: ignore[attr-defined]


async def test_return_visit_can_record_the_evaluation(world: World) -> None:
    appeal = await world.case_in(S.RESOLVED)
    payload = ActionInput(method=VisitMethod.IN_PERSON, evaluation=Evaluation.BASICALLY_SATISFIED, note="上门回访")
    event = await world.act(appeal, Action.RETURN_VISIT, Role.GRID_WORKER, payload)
    assert (event.from_status, event.to_status) == (S.RESOLVED, S.EVALUATED)
    assert appeal.evaluation is Evaluation.BASICALLY_SATISFIED
    assert await world.count(ReturnVisit, appeal_id=appeal.id) == 1
    await world.act(appeal, Action.CLOSE, Role.STAFF)
    assert appeal.status is S.CLOSED


def handlers(world: World) -> set[Any]:
    """Who handles a case assigned to 区城管 and the grid worker: staff, admins, the department, the worker."""
    return {world.users[r].id for r in (Role.ADMIN, Role.STAFF, Role.DEPARTMENT, Role.GRID_WORKER)}


async def test_an_unsatisfied_evaluation_reopens_the_case(world: World) -> None:
    appeal = await world.case_in(S.RESOLVED)
    event = await world.act(appeal, Action.EVALUATE, SUBMITTER, ActionInput(evaluation=Evaluation.UNSATISFIED, note="灯还是不亮"))
    assert (event.from_status, event.to_status) == (S.RESOLVED, S.IN_PROGRESS)
    await world.session.refresh(appeal)
    assert appeal.status is S.IN_PROGRESS
    assert appeal.reopen_count == 1
    assert appeal.resolved_at is None
    assert appeal.evaluation is Evaluation.UNSATISFIED
    assert appeal.evaluation_comment == "灯还是不亮"
    assert {n.user_id for n in await world.notifications(kind="reopened")} == handlers(world)

    # The department resolves it again, and the submitter can evaluate the new resolution.
    await world.act(appeal, Action.RESOLVE, Role.DEPARTMENT, ActionInput(note="更换了整条线路"))
    assert appeal.resolved_at == world.clock.now
    await world.act(appeal, Action.EVALUATE, SUBMITTER, ActionInput(evaluation=Evaluation.SATISFIED))
    assert appeal.status is S.EVALUATED
    assert appeal.evaluation is Evaluation.SATISFIED


async def test_staff_reopen_needs_a_reason_and_tells_the_handlers(world: World) -> None:
    appeal = await world.case_in(S.EVALUATED)
    event = await world.act(appeal, Action.REOPEN, Role.STAFF, ActionInput(note="回访发现问题仍未解决"))
    assert (event.from_status, event.to_status, event.note) == (S.EVALUATED, S.IN_PROGRESS, "回访发现问题仍未解决")
    assert appeal.reopen_count == 1
    assert appeal.resolved_at is None
    # The actor (staff) is not told about their own action.
    assert {n.user_id for n in await world.notifications(kind="reopened")} == handlers(world) - {world.users[Role.STAFF].id}


async def test_first_response_is_the_first_responding_action(world: World) -> None:
    appeal = await world.submit()
    assert appeal.first_response_at is None
    await world.act(appeal, Action.COMMENT, Role.SUPERVISOR)
    await world.act(appeal, Action.MARK_COMPLEX, Role.STAFF)
    assert appeal.first_response_at is None  # notes and classification are not an answer to the submitter
    await world.act(appeal, Action.TRANSFER, Role.STAFF)
    responded = world.clock.now
    assert appeal.first_response_at == responded
    await world.act(appeal, Action.ACCEPT, Role.DEPARTMENT)
    await world.act(appeal, Action.WHISTLE, Role.STAFF)
    assert appeal.first_response_at == responded


@pytest.mark.parametrize("action", [Action.ACCEPT, Action.WHISTLE, Action.REJECT, Action.MERGE])
async def test_other_responding_actions_set_the_first_response(world: World, action: Action) -> None:
    other = await world.submit()
    appeal = await world.submit()
    payload = ActionInput(target_reference=other.reference) if action is Action.MERGE else world.valid_input(action)
    await world.act(appeal, action, Role.STAFF, payload)
    assert appeal.first_response_at == world.clock.now


async def test_version_increments_with_every_step(world: World) -> None:
    appeal = await world.submit()
    versions = [appeal.version]
    for action, principal in [
        (Action.COMMENT, Role.STAFF), (Action.TRANSFER, Role.STAFF), (Action.ACCEPT, Role.DEPARTMENT),
        (Action.RESOLVE, Role.DEPARTMENT), (Action.EVALUATE, SUBMITTER), (Action.RETURN_VISIT, Role.STAFF), (Action.CLOSE, Role.STAFF),
    ]:
        await world.act(appeal, action, principal)
        versions.append(appeal.version)
    assert versions == list(range(versions[0], versions[0] + 8))


async def test_mark_complex_extends_the_resolution_limit_once(world: World) -> None:
    appeal = await world.case_in(S.IN_PROGRESS)
    seven_days = appeal.resolve_due_at
    assert seven_days - appeal.received_at == timedelta(days=7)
    await world.act(appeal, Action.MARK_COMPLEX, Role.STAFF, ActionInput(note="涉及产权单位和多个部门"))
    assert appeal.is_complex
    assert appeal.complex_reason == "涉及产权单位和多个部门"
    local_received = appeal.received_at.astimezone(world.settings.tz)
    assert appeal.resolve_due_at.astimezone(world.settings.tz) == local_received.replace(month=local_received.month + 1)
    await refused(world, appeal, Action.MARK_COMPLEX, Role.STAFF, ActionInput(note="再次"), WorkflowError)


async def test_every_status_change_is_on_the_timeline(world: World) -> None:
    appeal = await world.case_in(S.CLOSED)
    events = await world.events_of(appeal)
    assert [e.action for e in events] == ["submit", "transfer", "accept", "resolve", "evaluate", "return_visit", "close"]
    assert events[0].to_status is S.RECEIVED
    for previous, event in itertools.pairwise(events):
        assert event.from_status is previous.to_status
        assert event.at > previous.at
