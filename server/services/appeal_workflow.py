"""The appeal workflow (A2) as data: which action moves a case from which states to which, who may take
it, and on which cases (guards).

"问题收集 → 分类转办 → 限时办结 → 反馈评价". This table is the one place the rules live: the service
checks `refusal()` before every change, the case page offers exactly the actions `available()`
returns (the same check), and tests walk every (state, action, principal) combination. A target that
depends on what is submitted (an evaluation of 不满意 sends the case back) is a function in the table,
and so is a rule on what is submitted (a `Check`: no second evaluation at a return visit).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from server.i18n import N_
from server.models import AppealStatus as S
from server.models import Evaluation, Role

SUBMITTER = "submitter"  # whoever holds the tracking code
Principal = Role | str

OPEN = frozenset({S.RECEIVED, S.TRANSFERRED, S.IN_PROGRESS})
ACTIVE = OPEN | {S.RESOLVED, S.EVALUATED}
ALL = frozenset(S)
STAFF_SIDE = frozenset({Role.ADMIN, Role.STAFF})


class Action(enum.StrEnum):
    SUBMIT = "submit"
    TRANSFER = "transfer"  # 分类转办
    ACCEPT = "accept"  # 开始办理
    WHISTLE = "whistle"  # 街道吹哨
    REPORT_IN = "report_in"  # 部门报到
    MARK_COMPLEX = "mark_complex"  # 复杂问题
    RESOLVE = "resolve"  # 办结
    RETURN_VISIT = "return_visit"  # 回访
    EVALUATE = "evaluate"  # 评价
    CLOSE = "close"  # 闭环
    REJECT = "reject"  # 不予受理
    MERGE = "merge"  # 合并
    REOPEN = "reopen"  # 重新办理
    COMMENT = "comment"  # 备注 / 监督意见
    OVERDUE = "overdue"  # recorded by the time-limit job
    EDIT = "edit"  # plain fields changed by a grid worker in the field (offline sync), not a transition
    RECLASSIFY = "reclassify"  # staff correct the category or the place, not a transition


@dataclass(frozen=True)
class CaseFacts:
    """What the guards need to know about a case and the actor's relation to it (loaded once)."""

    status: S
    department_id: UUID | None = None
    assignee_id: UUID | None = None
    created_by_id: UUID | None = None
    is_complex: bool = False
    evaluation: Evaluation | None = None
    has_return_visit: bool = False
    summoned: bool = False  # the actor's department was summoned for this case
    summoned_unreported: bool = False  # ... and has not reported in yet


class ActorLike:  # the parts of appeals.Actor the guards read
    principal: Principal
    user_id: UUID | None
    department_id: UUID | None


@dataclass(frozen=True)
class Guard:
    """A rule beyond state and role: `holds(facts, actor)`; when it does not, `refusal` (a msgid) says why.
    `scope`: a rule about which cases this actor may act on (answered 403), not about the case's state (409)."""

    holds: Callable[[CaseFacts, Any], bool]
    refusal: str
    scope: bool = False


def _department_case(facts: CaseFacts, actor: Any) -> bool:
    return actor.principal != Role.DEPARTMENT or (facts.department_id is not None and facts.department_id == actor.department_id)


def _assigned_worker(facts: CaseFacts, actor: Any) -> bool:
    return actor.principal != Role.GRID_WORKER or facts.assignee_id == actor.user_id


def _assigned_or_collecting_worker(facts: CaseFacts, actor: Any) -> bool:
    # 1+N+1: the worker who collected a case on a visit makes its return visit (and takes the evaluation).
    collected = facts.created_by_id is not None and facts.created_by_id == actor.user_id
    return _assigned_worker(facts, actor) or collected


@dataclass(frozen=True)
class Check:
    """A rule on what is submitted with the action: `holds(facts, payload)`; when it does not, `refusal`
    (a msgid) about `field`, a 409 like a state rule. Only `act` knows the payload: `available()` offers
    the action, and the form says what may not be sent with it."""

    holds: Callable[[CaseFacts, Any], bool]
    refusal: str
    field: str


OWN_DEPARTMENT = Guard(_department_case, N_("This case is not assigned to your department."), scope=True)
ASSIGNED_WORKER = Guard(_assigned_worker, N_("This case is not assigned to you."), scope=True)
ASSIGNED_OR_COLLECTING = Guard(_assigned_or_collecting_worker, N_("This case is not assigned to you."), scope=True)
HANDLER = (OWN_DEPARTMENT, ASSIGNED_WORKER)  # who handles a case: its department, its assigned worker


def _after_evaluation(evaluation: Evaluation | None) -> S:
    """不满意 sends the case back to be handled again; any other evaluation moves it on."""
    return S.IN_PROGRESS if evaluation is Evaluation.UNSATISFIED else S.EVALUATED


Target = S | None | Callable[[S, Any], S]  # None: unchanged; a function of (state, payload)


@dataclass(frozen=True)
class Transition:
    action: Action
    sources: frozenset[S]
    target: Target
    principals: frozenset[Principal]
    label: str  # msgid shown on buttons and timelines
    # Counts as the first response to the submitter (A3 response time).
    responds: bool = False
    guards: tuple[Guard, ...] = field(default=())
    # States from which only some principals may take the action (beyond `sources`).
    sources_for: Mapping[Principal, frozenset[S]] = field(default_factory=dict)
    checks: tuple[Check, ...] = field(default=())  # rules on what is submitted

    def starts_from(self, status: S, principal: Principal) -> bool:
        return status in self.sources or status in self.sources_for.get(principal, ())


TRANSITIONS: dict[Action, Transition] = {
    t.action: t
    for t in [
        Transition(Action.TRANSFER, OPEN, S.TRANSFERRED, STAFF_SIDE, N_("Transfer"), responds=True),
        Transition(
            Action.ACCEPT,
            frozenset({S.RECEIVED, S.TRANSFERRED}),
            S.IN_PROGRESS,
            STAFF_SIDE | {Role.DEPARTMENT, Role.GRID_WORKER},
            N_("Start handling"),
            responds=True,
            guards=HANDLER,
        ),
        # 街道吹哨: a case not yet handed on counts as transferred once departments are summoned.
        Transition(
            Action.WHISTLE, OPEN, lambda state, _payload: S.TRANSFERRED if state is S.RECEIVED else state,
            STAFF_SIDE, N_("Blow the whistle"), responds=True,
        ),
        Transition(
            Action.REPORT_IN, OPEN, None, frozenset({Role.DEPARTMENT}), N_("Report in"),
            guards=(
                Guard(lambda f, _a: f.summoned, N_("Your department was not summoned for this case."), scope=True),
                Guard(lambda f, _a: f.summoned_unreported, N_("Your department has already reported in.")),
            ),
        ),
        Transition(
            Action.MARK_COMPLEX, OPEN, None, STAFF_SIDE, N_("Mark as complex"),
            guards=(Guard(lambda f, _a: not f.is_complex, N_("This case is already marked as complex.")),),
        ),
        Transition(
            Action.RESOLVE,
            frozenset({S.IN_PROGRESS}),
            S.RESOLVED,
            STAFF_SIDE | {Role.DEPARTMENT, Role.GRID_WORKER},
            N_("Resolve"),
            guards=HANDLER,
        ),
        # A return visit may carry the evaluation the resident gave there; it moves the case only while
        # nobody has evaluated it (afterwards it is recorded, and the resident's own prevails).
        Transition(
            Action.RETURN_VISIT,
            frozenset({S.RESOLVED, S.EVALUATED}),
            lambda state, payload: _after_evaluation(payload.evaluation) if getattr(payload, "evaluation", None) and state is S.RESOLVED else state,
            STAFF_SIDE | {Role.GRID_WORKER},
            N_("Record return visit"),
            guards=(ASSIGNED_OR_COLLECTING,),
            # Evaluated already (by the resident, or at an earlier visit): the resident may change their
            # own on the tracking page; a visit records no second one.
            checks=(Check(
                lambda f, payload: getattr(payload, "evaluation", None) is None or f.status is S.RESOLVED,
                N_("This case has already been evaluated."), "evaluation",
            ),),
        ),
        # The resident may give or change their own evaluation until the case is closed; staff or a
        # grid worker may record one for them only while the case is not evaluated yet.
        Transition(
            Action.EVALUATE,
            frozenset({S.RESOLVED}),
            lambda _state, payload: _after_evaluation(getattr(payload, "evaluation", None)),
            STAFF_SIDE | {Role.GRID_WORKER, SUBMITTER},
            N_("Evaluate"),
            guards=(ASSIGNED_OR_COLLECTING,),
            sources_for={SUBMITTER: frozenset({S.EVALUATED})},
        ),
        Transition(
            Action.CLOSE, frozenset({S.EVALUATED}), S.CLOSED, STAFF_SIDE, N_("Close the case"),
            guards=(Guard(lambda f, _a: f.has_return_visit, N_("A case can be closed only after its return visit.")),),
        ),
        Transition(Action.REJECT, frozenset({S.RECEIVED, S.TRANSFERRED}), S.REJECTED, STAFF_SIDE, N_("Reject"), responds=True),
        Transition(Action.MERGE, OPEN, S.MERGED, STAFF_SIDE, N_("Merge into another case"), responds=True),
        Transition(Action.REOPEN, frozenset({S.RESOLVED, S.EVALUATED}), S.IN_PROGRESS, STAFF_SIDE, N_("Reopen")),
        Transition(
            Action.COMMENT,
            ALL,
            None,
            STAFF_SIDE | {Role.SUPERVISOR, Role.DEPARTMENT, Role.GRID_WORKER},
            N_("Add a note"),
            guards=(OWN_DEPARTMENT,),
        ),
    ]
}

STATUS_LABELS: dict[S, str] = {
    S.RECEIVED: N_("Received"),
    S.TRANSFERRED: N_("Transferred"),
    S.IN_PROGRESS: N_("In progress"),
    S.RESOLVED: N_("Resolved"),
    S.EVALUATED: N_("Evaluated"),
    S.CLOSED: N_("Closed"),
    S.REJECTED: N_("Rejected"),
    S.MERGED: N_("Merged"),
}

EVALUATION_LABELS: dict[Evaluation, str] = {
    Evaluation.SATISFIED: N_("Satisfied"),
    Evaluation.BASICALLY_SATISFIED: N_("Basically satisfied"),
    Evaluation.UNSATISFIED: N_("Unsatisfied"),
}

ACTION_LABELS: dict[Action, str] = {
    Action.SUBMIT: N_("Submitted"),
    Action.OVERDUE: N_("Time limit passed"),
    Action.EDIT: N_("Details edited in the field"),
    Action.RECLASSIFY: N_("Category and place corrected"),
    **{action: t.label for action, t in TRANSITIONS.items()},
}


def transition_for(action: Action) -> Transition:
    return TRANSITIONS[action]


def is_allowed(status: S, action: Action, principal: Principal) -> bool:
    """The table alone: may this principal take this action on a case in this state?"""
    transition = TRANSITIONS.get(action)
    return transition is not None and principal in transition.principals and transition.starts_from(status, principal)


def target_of(status: S, action: Action, payload: Any = None) -> S:
    """Where the action takes a case in `status` (given what was submitted, for the targets that depend on it)."""
    target = TRANSITIONS[action].target
    if target is None:
        return status
    if callable(target):
        return target(status, payload)
    return target


def allowed_actions(status: S, principal: Principal) -> list[Action]:
    """The table alone (state and role), before the guards."""
    return [action for action in TRANSITIONS if is_allowed(status, action, principal)]


@dataclass(frozen=True)
class Refusal:
    message: str  # msgid
    params: dict[str, Any]
    scope: bool  # the actor may not act on this case at all (403), rather than not now (409)
    field: str | None = None  # the submitted value refused (a Check)


def refusal(facts: CaseFacts, action: Action, actor: Any, payload: Any = None) -> Refusal | None:
    """Why this actor may not take this action on this case now, or None: the table, then the guards,
    then (given what is submitted, `payload`) the checks."""
    transition = TRANSITIONS.get(action)
    if transition is None or actor.principal not in transition.principals:
        return Refusal(N_("Your role cannot take this action."), {}, scope=True)
    if not transition.starts_from(facts.status, actor.principal):
        if action is Action.EVALUATE and facts.evaluation is not None:
            return Refusal(N_("This case has already been evaluated."), {}, scope=False)
        return Refusal(N_("This action is not possible at the current status: %(status)s."), {"status": STATUS_LABELS[facts.status]}, scope=False)
    for guard in transition.guards:
        if not guard.holds(facts, actor):
            return Refusal(guard.refusal, {}, scope=guard.scope)
    if payload is not None:
        for check in transition.checks:
            if not check.holds(facts, payload):
                return Refusal(check.refusal, {}, scope=False, field=check.field)
    return None


def available(facts: CaseFacts, actor: Any) -> list[Action]:
    """The actions to offer this actor on this case: exactly those `refusal` lets through (before
    anything is submitted: the checks are the form's to explain)."""
    return [action for action in TRANSITIONS if refusal(facts, action, actor) is None]
