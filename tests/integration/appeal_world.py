"""Arrange appeal cases through the real services with a clock the test moves (used by the workflow tests)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.models import (
    Appeal,
    AppealChannel,
    AppealEvent,
    AppealStatus,
    Department,
    Evaluation,
    Notification,
    Role,
    SubmitterKind,
    User,
    VisitMethod,
)
from server.services import appeals
from server.services.appeal_workflow import SUBMITTER, Action, Principal
from server.services.appeals import ActionInput, Actor, AppealInput
from server.services.deadlines import TimeLimits
from server.settings import Settings

START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # Monday 09:00 in Shanghai


class MovingClock:
    """A clock the test advances by hand; the services read it through `clock=`."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@dataclass
class World:
    session: AsyncSession
    settings: Settings
    clock: MovingClock
    users: dict[Role, User]
    departments: dict[str, Department]
    # Users of the departments other than the case's own (区城管, code cgj), by department code.
    other_department_users: dict[str, User] = field(default_factory=dict)

    @property
    def limits(self) -> TimeLimits:
        return TimeLimits.from_settings(self.settings)

    @property
    def home_department(self) -> Department:
        return self.departments["cgj"]

    def actor(self, principal: Principal) -> Actor:
        if principal == SUBMITTER:
            return Actor.submitter()
        return Actor.for_user(self.users[Role(principal)])

    async def submit(self, **changes: Any) -> Appeal:
        data = AppealInput(
            channel=AppealChannel.SUGGESTION_BOX,
            submitter_kind=SubmitterKind.RESIDENT,
            category="facilities",
            description="楼道灯坏了一个多月，晚上上下楼很不安全",
            submitter_name="张女士",
            submitter_phone="13800000001",
            location_detail="3号楼2单元",
        )
        for key, value in changes.items():
            setattr(data, key, value)
        self.clock.advance(minutes=5)
        return await appeals.submit(
            self.session, data, actor=self.actor(SUBMITTER), limits=self.limits,
            uploads_dir=self.settings.uploads_dir, clock=self.clock,
        )

    async def act(self, appeal: Appeal, action: Action, principal: Principal, payload: ActionInput | None = None) -> AppealEvent:
        self.clock.advance(minutes=30)
        return await appeals.act(
            self.session, appeal, action, self.actor(principal), payload or self.valid_input(action, appeal),
            limits=self.limits, uploads_dir=self.settings.uploads_dir, clock=self.clock,
        )

    def valid_input(self, action: Action, appeal: Appeal | None = None) -> ActionInput:
        """A payload the service accepts for this action (MERGE needs the target's reference set by the caller)."""
        return {
            Action.TRANSFER: ActionInput(department_id=self.home_department.id, assignee_id=self.users[Role.GRID_WORKER].id),
            Action.WHISTLE: ActionInput(
                department_ids=[self.home_department.id, self.departments["fgw"].id], report_by=self.clock.now + timedelta(days=2)
            ),
            Action.REPORT_IN: ActionInput(note="我局已安排专人对接，三日内到现场"),
            Action.MARK_COMPLEX: ActionInput(note="涉及多个部门和产权单位，需要协调"),
            Action.RESOLVE: ActionInput(note="已更换楼道灯并检查线路"),
            Action.RETURN_VISIT: ActionInput(method=VisitMethod.PHONE, note="电话回访，群众认可"),
            Action.EVALUATE: ActionInput(evaluation=Evaluation.SATISFIED, note="处理很及时"),
            Action.REJECT: ActionInput(note="不属于街道职责范围，已告知向物业反映"),
            Action.REOPEN: ActionInput(note="回访发现问题仍未解决"),
            Action.COMMENT: ActionInput(note="请加快办理"),
        }.get(action, ActionInput())

    async def case_in(self, state: AppealStatus) -> Appeal:
        """A case brought to `state` by the steps a real case takes; assigned to 区城管 and the grid worker."""
        if state in {AppealStatus.MERGED, AppealStatus.REJECTED}:
            case = await self.case_in(AppealStatus.TRANSFERRED)
            if state is AppealStatus.REJECTED:
                await self.act(case, Action.REJECT, Role.STAFF)
            else:
                original = await self.submit()
                await self.act(case, Action.MERGE, Role.STAFF, ActionInput(target_reference=original.reference))
            return case
        steps = [
            (Action.TRANSFER, Role.STAFF),
            (Action.ACCEPT, Role.DEPARTMENT),
            (Action.RESOLVE, Role.DEPARTMENT),
            (Action.EVALUATE, SUBMITTER),
            (Action.RETURN_VISIT, Role.STAFF),
            (Action.CLOSE, Role.STAFF),
        ]
        case = await self.submit()
        for action, principal in steps:
            if case.status is state:
                break
            await self.act(case, action, principal)
        assert case.status is state
        return case

    async def events_of(self, appeal: Appeal) -> list[AppealEvent]:
        return list(
            await self.session.scalars(
                select(AppealEvent).where(AppealEvent.appeal_id == appeal.id).order_by(AppealEvent.at, AppealEvent.created_at)
            )
        )

    async def notifications(self, **where: Any) -> list[Notification]:
        query = select(Notification)
        for key, value in where.items():
            query = query.where(getattr(Notification, key) == value)
        return list(await self.session.scalars(query))

    async def count(self, model: type[Any], **where: Any) -> int:
        query = select(func.count()).select_from(model)
        for key, value in where.items():
            query = query.where(getattr(model, key) == value)
        return await self.session.scalar(query) or 0


async def make_world(session: AsyncSession, settings: Settings, clock: MovingClock | None = None) -> World:
    """The six district departments; one user per role (the department user works for 区城管), plus a
    user for each other department. Users are inserted directly: password hashing is not under test."""
    departments = await appeals.seed_departments(session)
    users: dict[Role, User] = {}
    for role in Role:
        users[role] = User(
            username=role.value.replace("_", "-"), display_name=f"测试{role.value}", password_hash="!", role=role,
            department_id=departments["cgj"].id if role is Role.DEPARTMENT else None,
        )
    others = {
        code: User(username=f"dept-{code}", display_name=f"测试{code}", password_hash="!", role=Role.DEPARTMENT, department_id=d.id)
        for code, d in departments.items()
        if code != "cgj"
    }
    session.add_all([*users.values(), *others.values()])
    await session.flush()
    return World(session, settings, clock or MovingClock(), users, departments, others)


async def load_world(session: AsyncSession, settings: Settings, clock: MovingClock) -> World:
    """The world make_world committed earlier, read back in a new session."""
    departments = {d.code: d for d in await appeals.departments(session)}
    users = list(await session.scalars(select(User)))
    others = {u.username.removeprefix("dept-"): u for u in users if u.username.startswith("dept-")}
    return World(session, settings, clock, {u.role: u for u in users if u not in others.values()}, departments, others)
