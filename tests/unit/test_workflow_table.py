"""The appeal transition table (A2), walked over every (state, action, principal) combination.

The expected table is written out here as data, independently of appeal_workflow.TRANSITIONS, so a
change to the rules has to be made twice: once in the code and once, on purpose, here.
"""

from __future__ import annotations

import itertools

import pytest

from server.models import AppealStatus as S
from server.models import Evaluation, Role
from server.services.appeal_workflow import (
    ACTION_LABELS,
    STATUS_LABELS,
    SUBMITTER,
    TRANSITIONS,
    Action,
    allowed_actions,
    is_allowed,
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
                continue  # refused: an evaluated case takes no second evaluation (see the service tests)
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
