"""The appeal transition table (A2), walked over every (state, action, principal) combination.

The expected table is written out here as data, independently of appeal_workflow.TRANSITIONS, so a
change to the rules has to be made twice: once in the code and once, on purpose, here.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from uuid import UUID, uuid4

import pytest

from server.models import AppealStatus as S
from server.models import Evaluation, Role
from server.services.appeal_workflow import (
    ACTION_LABELS,
    STATUS_LABELS,
    SUBMITTER,
    TRANSITIONS,
    Action,
    CaseFacts,
    allowed_actions,
    available,
    is_allowed,
    refusal,
    target_of,
)

OPEN_STATES = {S.RECEIVED, S.TRANSFERRED, S.IN_PROGRESS}
STAFF = {Role.ADMIN, Role.STAFF}

# action -> (states it may be taken from, who may take it, the state it leads to; None = unchanged).
# Targets that depend on the state or on what is submitted are in TARGETS below.
EXPECTED: dict[Action, tuple[set[S], set[object], S | None]] = {
    Action.TRANSFER: (OPEN_STATES, STAFF, S.TRANSFERRED),
    Action.ACCEPT: ({S.RECEIVED, S.TRANSFERRED}, STAFF | {Role.DEPARTMENT, Role.GRID_WORKER}, S.IN_PROGRESS),
    Action.WHISTLE: (OPEN_STATES, STAFF, None),  # but see TARGETS: a received case becomes transferred
    Action.REPORT_IN: (OPEN_STATES, {Role.DEPARTMENT}, None),
    Action.MARK_COMPLEX: (OPEN_STATES, STAFF, None),
    Action.RESOLVE: ({S.IN_PROGRESS}, STAFF | {Role.DEPARTMENT, Role.GRID_WORKER}, S.RESOLVED),
    Action.RETURN_VISIT: ({S.RESOLVED, S.EVALUATED}, STAFF | {Role.GRID_WORKER}, None),
    Action.EVALUATE: ({S.RESOLVED}, STAFF | {Role.GRID_WORKER, SUBMITTER}, S.EVALUATED),
    Action.CLOSE: ({S.EVALUATED}, STAFF, S.CLOSED),
    Action.REJECT: ({S.RECEIVED, S.TRANSFERRED}, STAFF, S.REJECTED),
    Action.MERGE: (OPEN_STATES, STAFF, S.MERGED),
    Action.REOPEN: ({S.RESOLVED, S.EVALUATED}, STAFF, S.IN_PROGRESS),
    Action.COMMENT: (set(S), STAFF | {Role.SUPERVISOR, Role.DEPARTMENT, Role.GRID_WORKER}, None),
}
# Only the submitter may evaluate an evaluated case (to change their evaluation until it is closed).
EXTRA_SOURCES: dict[tuple[Action, object], set[S]] = {(Action.EVALUATE, SUBMITTER): {S.EVALUATED}}
# Only these count as the first response to the submitter (the 12-hour limit).
RESPONDING = {Action.TRANSFER, Action.ACCEPT, Action.WHISTLE, Action.REJECT, Action.MERGE}

PRINCIPALS: list[object] = [*Role, SUBMITTER]


def expected_allowed(state: S, action: Action, principal: object) -> bool:
    if action not in EXPECTED:
        return False
    sources, principals, _target = EXPECTED[action]
    return principal in principals and (state in sources or state in EXTRA_SOURCES.get((action, principal), set()))


def test_the_table_has_exactly_the_expected_actions() -> None:
    """Submitting and recording an overdue limit are not actions anyone takes on a case."""
    assert set(TRANSITIONS) == set(EXPECTED)
    assert Action.SUBMIT not in TRANSITIONS
    assert Action.OVERDUE not in TRANSITIONS


@pytest.mark.parametrize("action", list(Action), ids=str)
def test_every_state_and_principal(action: Action) -> None:
    """For this action, every (state, principal) pair: the table says exactly what EXPECTED says."""
    wrong = [
        (str(state), str(principal), actual)
        for state, principal in itertools.product(S, PRINCIPALS)
        if (actual := is_allowed(state, action, principal)) is not expected_allowed(state, action, principal)  # type: ignore[arg-type]
    ]
    assert wrong == []


class Submitted:
    def __init__(self, evaluation: Evaluation | None = None) -> None:
        self.evaluation = evaluation


# (action, state, what was submitted) -> the state it leads to, where it is not EXPECTED's plain target.
TARGETS: dict[tuple[Action, S, Evaluation | None], S] = {
    (Action.WHISTLE, S.RECEIVED, None): S.TRANSFERRED,
    **{(Action.EVALUATE, S.RESOLVED, e): S.EVALUATED for e in (Evaluation.SATISFIED, Evaluation.BASICALLY_SATISFIED)},
    (Action.EVALUATE, S.RESOLVED, Evaluation.UNSATISFIED): S.IN_PROGRESS,
    (Action.EVALUATE, S.EVALUATED, Evaluation.UNSATISFIED): S.IN_PROGRESS,
    **{(Action.RETURN_VISIT, S.RESOLVED, e): S.EVALUATED for e in (Evaluation.SATISFIED, Evaluation.BASICALLY_SATISFIED)},
    (Action.RETURN_VISIT, S.RESOLVED, Evaluation.UNSATISFIED): S.IN_PROGRESS,
}


@pytest.mark.parametrize("action", list(EXPECTED), ids=str)
def test_target_of_every_allowed_transition(action: Action) -> None:
    sources, _principals, target = EXPECTED[action]
    evaluations: list[Evaluation | None] = [None] if action is not Action.EVALUATE else list(Evaluation)
    if action is Action.RETURN_VISIT:
        evaluations = [None, *Evaluation]
    extra = set().union(*(states for (a, _p), states in EXTRA_SOURCES.items() if a is action))
    for state in sources | extra:
        for evaluation in evaluations:
            if action is Action.RETURN_VISIT and evaluation is not None and state is not S.RESOLVED:
                continue  # refused: an evaluated case takes no second evaluation (the check, see GUARDED below)
            plain = state if target is None else target
            want = TARGETS.get((action, state, evaluation), plain)
            assert target_of(state, action, Submitted(evaluation)) == want, (action, state, evaluation)


def test_allowed_actions_lists_what_is_allowed() -> None:
    for state, principal in itertools.product(S, PRINCIPALS):
        expected = {a for a in Action if expected_allowed(state, a, principal)}
        assert set(allowed_actions(state, principal)) == expected, (state, principal)  # type: ignore[arg-type]


def test_final_states_allow_only_notes() -> None:
    for state in (S.CLOSED, S.REJECTED, S.MERGED):
        for principal in PRINCIPALS:
            assert set(allowed_actions(state, principal)) <= {Action.COMMENT}  # type: ignore[arg-type]


def test_read_only_roles_change_nothing() -> None:
    """Building heads, representatives, operators and volunteers take no action; supervisors only comment."""
    for principal in (Role.BUILDING_HEAD, Role.RESIDENT_REP, Role.STATION_OPERATOR, Role.CANTEEN_MANAGER, Role.VOLUNTEER):
        assert all(allowed_actions(state, principal) == [] for state in S)
    assert all(set(allowed_actions(state, Role.SUPERVISOR)) == {Action.COMMENT} for state in S)


def test_the_submitter_may_only_evaluate_a_resolved_or_evaluated_case() -> None:
    """Resolved: give an evaluation; evaluated (by them or at a return visit): change it. Closed: no more."""
    assert {state: allowed_actions(state, SUBMITTER) for state in S if allowed_actions(state, SUBMITTER)} == {
        S.RESOLVED: [Action.EVALUATE], S.EVALUATED: [Action.EVALUATE],
    }


def test_responding_actions() -> None:
    assert {action for action, t in TRANSITIONS.items() if t.responds} == RESPONDING


def test_every_state_and_action_has_a_label() -> None:
    assert set(STATUS_LABELS) == set(S)
    assert set(ACTION_LABELS) == set(Action)
    assert all(label.strip() for label in [*STATUS_LABELS.values(), *ACTION_LABELS.values()])


# --- The guards and checks: who may act on which case, and what may be submitted ---------------------------


@dataclass(frozen=True)
class Someone:
    principal: object
    user_id: UUID | None = None
    department_id: UUID | None = None


ME, COLLEAGUE, OUR_DEPT, OTHER_DEPT = uuid4(), uuid4(), uuid4(), uuid4()
STAFF_MEMBER = Someone(Role.STAFF, uuid4())
WORKER = Someone(Role.GRID_WORKER, ME)
DEPARTMENT = Someone(Role.DEPARTMENT, uuid4(), OUR_DEPT)
NOT_YOURS = "This case is not assigned to you."
NOT_YOUR_DEPARTMENT = "This case is not assigned to your department."
EVALUATED_ALREADY = "This case has already been evaluated."


def case(status: S, **facts: object) -> CaseFacts:
    return CaseFacts(status=status, **facts)  # type: ignore[arg-type]


# (case, action, actor, what is submitted) -> (the refusal's msgid, 403 rather than 409, its field), or None.
GUARDED: list[tuple[CaseFacts, Action, Someone, Submitted | None, tuple[str, bool, str | None] | None]] = [
    # A department handles its own cases only; staff any case.
    (case(S.TRANSFERRED, department_id=OUR_DEPT), Action.ACCEPT, DEPARTMENT, None, None),
    (case(S.TRANSFERRED, department_id=OTHER_DEPT), Action.ACCEPT, DEPARTMENT, None, (NOT_YOUR_DEPARTMENT, True, None)),
    (case(S.TRANSFERRED), Action.ACCEPT, DEPARTMENT, None, (NOT_YOUR_DEPARTMENT, True, None)),
    (case(S.TRANSFERRED, department_id=OTHER_DEPT), Action.ACCEPT, STAFF_MEMBER, None, None),
    (case(S.IN_PROGRESS, department_id=OTHER_DEPT), Action.RESOLVE, DEPARTMENT, None, (NOT_YOUR_DEPARTMENT, True, None)),
    (case(S.IN_PROGRESS, department_id=OTHER_DEPT), Action.COMMENT, DEPARTMENT, None, (NOT_YOUR_DEPARTMENT, True, None)),
    (case(S.CLOSED, department_id=OUR_DEPT), Action.COMMENT, DEPARTMENT, None, None),
    # A grid worker handles the cases assigned to them; collecting one is not enough to handle it ...
    (case(S.RECEIVED, assignee_id=ME), Action.ACCEPT, WORKER, None, None),
    (case(S.RECEIVED, assignee_id=COLLEAGUE, created_by_id=ME), Action.ACCEPT, WORKER, None, (NOT_YOURS, True, None)),
    (case(S.IN_PROGRESS, assignee_id=COLLEAGUE), Action.RESOLVE, WORKER, None, (NOT_YOURS, True, None)),
    # ... but the one who collected it makes its return visit and takes the evaluation (1+N+1).
    (case(S.RESOLVED, assignee_id=COLLEAGUE, created_by_id=ME), Action.RETURN_VISIT, WORKER, None, None),
    (case(S.RESOLVED, assignee_id=COLLEAGUE, created_by_id=ME), Action.EVALUATE, WORKER, Submitted(Evaluation.SATISFIED), None),
    (case(S.RESOLVED, assignee_id=COLLEAGUE, created_by_id=COLLEAGUE), Action.RETURN_VISIT, WORKER, None, (NOT_YOURS, True, None)),
    (case(S.RESOLVED, assignee_id=COLLEAGUE), Action.EVALUATE, WORKER, Submitted(Evaluation.SATISFIED), (NOT_YOURS, True, None)),
    # A return visit on an evaluated case is recorded, but it carries no second evaluation.
    (case(S.EVALUATED, assignee_id=ME), Action.RETURN_VISIT, WORKER, Submitted(), None),
    (case(S.EVALUATED, assignee_id=ME), Action.RETURN_VISIT, WORKER, Submitted(Evaluation.UNSATISFIED), (EVALUATED_ALREADY, False, "evaluation")),
    (case(S.EVALUATED), Action.RETURN_VISIT, STAFF_MEMBER, Submitted(Evaluation.SATISFIED), (EVALUATED_ALREADY, False, "evaluation")),
    (case(S.RESOLVED), Action.RETURN_VISIT, STAFF_MEMBER, Submitted(Evaluation.UNSATISFIED), None),
    # Only the resident changes an evaluation.
    (case(S.EVALUATED, evaluation=Evaluation.SATISFIED), Action.EVALUATE, STAFF_MEMBER, Submitted(Evaluation.UNSATISFIED), (EVALUATED_ALREADY, False, None)),
    (case(S.EVALUATED, evaluation=Evaluation.SATISFIED), Action.EVALUATE, Someone(SUBMITTER), Submitted(Evaluation.UNSATISFIED), None),
    # Summoned departments report in once.
    (case(S.TRANSFERRED, summoned=True, summoned_unreported=True), Action.REPORT_IN, DEPARTMENT, None, None),
    (case(S.TRANSFERRED, summoned=True), Action.REPORT_IN, DEPARTMENT, None, ("Your department has already reported in.", False, None)),
    (case(S.TRANSFERRED), Action.REPORT_IN, DEPARTMENT, None, ("Your department was not summoned for this case.", True, None)),
    # A case is marked complex once, and closed only after its return visit.
    (case(S.IN_PROGRESS, is_complex=True), Action.MARK_COMPLEX, STAFF_MEMBER, None, ("This case is already marked as complex.", False, None)),
    (case(S.EVALUATED), Action.CLOSE, STAFF_MEMBER, None, ("A case can be closed only after its return visit.", False, None)),
    (case(S.EVALUATED, has_return_visit=True), Action.CLOSE, STAFF_MEMBER, None, None),
    # The table before the guards: the role, then the state.
    (case(S.IN_PROGRESS, is_complex=True), Action.MARK_COMPLEX, WORKER, None, ("Your role cannot take this action.", True, None)),
    (case(S.CLOSED, has_return_visit=True), Action.CLOSE, STAFF_MEMBER, None, ("This action is not possible at the current status: %(status)s.", False, None)),
]


@pytest.mark.parametrize(("facts", "action", "actor", "submitted", "expected"), GUARDED)
def test_the_guards_and_checks_of_the_table(
    facts: CaseFacts, action: Action, actor: Someone, submitted: Submitted | None, expected: tuple[str, bool, str | None] | None,
) -> None:
    found = refusal(facts, action, actor, submitted)
    assert (found and (found.message, found.scope, found.field)) == expected
    if expected is None or expected[2] is not None:
        # What the case page offers: the action, when only what could be submitted with it is refused.
        assert action in available(facts, actor)
    else:
        assert action not in available(facts, actor)


def test_the_case_page_offers_exactly_what_would_be_accepted() -> None:
    """available() over every state and a spread of cases and actors: an action is offered iff refusal()
    lets it through with nothing submitted, and the offers of a few plain cases are spelled out."""
    actors = [STAFF_MEMBER, WORKER, DEPARTMENT, Someone(Role.SUPERVISOR, uuid4()), Someone(SUBMITTER)]
    spread = [
        {"assignee_id": ME}, {"created_by_id": ME}, {"department_id": OUR_DEPT, "summoned": True, "summoned_unreported": True},
        {"department_id": OTHER_DEPT, "is_complex": True, "has_return_visit": True, "evaluation": Evaluation.SATISFIED},
    ]
    for status, facts, actor in itertools.product(S, spread, actors):
        offered = available(case(status, **facts), actor)
        assert offered == [a for a in TRANSITIONS if refusal(case(status, **facts), a, actor) is None]
    assert available(case(S.RESOLVED, created_by_id=ME), WORKER) == [Action.RETURN_VISIT, Action.EVALUATE, Action.COMMENT]
    assert available(case(S.IN_PROGRESS, assignee_id=COLLEAGUE), WORKER) == [Action.COMMENT]
    assert available(case(S.IN_PROGRESS, department_id=OUR_DEPT), DEPARTMENT) == [Action.RESOLVE, Action.COMMENT]
    assert available(case(S.IN_PROGRESS, department_id=OUR_DEPT, summoned=True, summoned_unreported=True), DEPARTMENT) == [
        Action.REPORT_IN, Action.RESOLVE, Action.COMMENT,
    ]
    assert available(case(S.IN_PROGRESS, department_id=OTHER_DEPT), DEPARTMENT) == []
