"""The appeal workflow (A2) as data: which action moves a case from which states to which, and who may take it.

"问题收集 → 分类转办 → 限时办结 → 反馈评价". This table is the one place the rules live; the service
checks it before every change, and tests walk every (state, action, principal) combination.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Transition:
    action: Action
    sources: frozenset[S]
    target: S | None  # None: the state does not change
    principals: frozenset[Principal]
    label: str  # msgid shown on buttons and timelines
    # Counts as the first response to the submitter (A3 response time).
    responds: bool = False


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
        ),
        Transition(Action.WHISTLE, OPEN, None, STAFF_SIDE, N_("Blow the whistle"), responds=True),
        Transition(Action.REPORT_IN, OPEN, None, frozenset({Role.DEPARTMENT}), N_("Report in")),
        Transition(Action.MARK_COMPLEX, OPEN, None, STAFF_SIDE, N_("Mark as complex")),
        Transition(
            Action.RESOLVE,
            frozenset({S.IN_PROGRESS}),
            S.RESOLVED,
            STAFF_SIDE | {Role.DEPARTMENT, Role.GRID_WORKER},
            N_("Resolve"),
        ),
        Transition(
            Action.RETURN_VISIT,
            frozenset({S.RESOLVED, S.EVALUATED}),
            None,
            STAFF_SIDE | {Role.GRID_WORKER},
            N_("Record return visit"),
        ),
        # An evaluation moves a resolved case to evaluated; 不满意 sends it back (see EVALUATE_TARGET).
        Transition(
            Action.EVALUATE,
            frozenset({S.RESOLVED}),
            S.EVALUATED,
            STAFF_SIDE | {Role.GRID_WORKER, SUBMITTER},
            N_("Evaluate"),
        ),
        Transition(Action.CLOSE, frozenset({S.EVALUATED}), S.CLOSED, STAFF_SIDE, N_("Close the case")),
        Transition(Action.REJECT, frozenset({S.RECEIVED, S.TRANSFERRED}), S.REJECTED, STAFF_SIDE, N_("Reject"), responds=True),
        Transition(Action.MERGE, OPEN, S.MERGED, STAFF_SIDE, N_("Merge into another case"), responds=True),
        Transition(Action.REOPEN, frozenset({S.RESOLVED, S.EVALUATED}), S.IN_PROGRESS, STAFF_SIDE, N_("Reopen")),
        Transition(
            Action.COMMENT,
            ALL,
            None,
            STAFF_SIDE | {Role.SUPERVISOR, Role.DEPARTMENT, Role.GRID_WORKER},
            N_("Add a note"),
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
    **{action: t.label for action, t in TRANSITIONS.items()},
}


def transition_for(action: Action) -> Transition:
    return TRANSITIONS[action]


def is_allowed(status: S, action: Action, principal: Principal) -> bool:
    """The table alone: may this principal take this action on a case in this state?"""
    transition = TRANSITIONS.get(action)
    return transition is not None and status in transition.sources and principal in transition.principals


def target_of(status: S, action: Action) -> S:
    target = TRANSITIONS[action].target
    return status if target is None else target


def allowed_actions(status: S, principal: Principal) -> list[Action]:
    return [action for action in TRANSITIONS if is_allowed(status, action, principal)]
