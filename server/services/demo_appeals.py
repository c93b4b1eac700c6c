"""A year of Jiefanglu appeals for the demo (issue 3, item 10), made by the real services with a moved clock.

Nothing is written directly: every case is submitted with appeals.submit and moved with appeals.act
by the demo people (李主任 staff, 王网格 grid worker, 赵科长 for 区城管; the other departments act under
their own name), so the timelines, time limits, notifications and metrics are the real ones. The
overdue job runs as the simulated time passes. Deterministic: a seeded random and times relative to
`end`. Names and phone numbers are fictional.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from uuid_utils.compat import uuid7
from sqlalchemy.ext.asyncio import AsyncSession

from server.models import (
    Appeal,
    AppealChannel,
    Department,
    Evaluation,
    Place,
    Role,
    SubmitterKind,
    VisitMethod,
    VisitPurpose,
    VisitSubject,
)
from server.services import accounts, appeals, visits
from server.services.appeal_catalog import BY_CODE
from server.services.appeal_workflow import Action
from server.services.appeals import ActionInput, Actor, AppealInput
from server.services.deadlines import TimeLimits
from server.settings import Settings

SEED = 20250101
YEAR = timedelta(days=365)
ENTERPRISE_PLACES = ["鲁粮集团办公楼", "山东物业创新产业园", "解放路沿街商铺"]
# Whom 王网格 visits (走访) when a case comes in through the visit channel (names are made up).
VISIT_SUBJECTS = {
    "鲁粮集团办公楼": "鲁粮集团", "山东物业创新产业园": "山东某物业服务有限公司", "解放路沿街商铺": "解放路老字号餐馆",
    "东舍坊小区": "东舍坊小区住户", "文华园小区": "文华园小区住户",
}
VISIT_POLICIES = ["稳岗返还", "小微企业税费减免", "红领物业奖励"]
RESIDENT_PLACES = ["东舍坊小区", "文华园小区"]


@dataclass(frozen=True)
class Topic:
    category: str
    description: str
    resolution: str
    department: str | None  # department code; None: the grid worker handles it


TOPICS: list[Topic] = [
    Topic("registration", "公司准备迁入园区，想咨询注册地址变更需要哪些材料、多长时间能办完", "已协调区市场监管局窗口一次性告知材料清单，企业当天提交，三个工作日内完成变更", "scjg"),
    Topic("registration", "企业经营范围要增加技术服务，网上办理总是提示信息不符", "区市场监管局工作人员远程指导填报，问题为行业代码选择错误，已办理成功", "scjg"),
    Topic("talent", "今年的高层次人才申报什么时候开始？需要准备哪些证明材料", "区人社局上门宣讲人才政策，帮助企业梳理出两名符合条件的人才并完成申报", "rsj"),
    Topic("talent", "新招聘的硕士毕业生想申请人才公寓，不知道去哪里申请", "已告知申请渠道并协助提交材料，人才公寓资格审核通过", "rsj"),
    Topic("qualification", "食品经营许可证快到期了，延续办理能不能不跑现场", "区市场监管局开通帮办代办，材料网上提交，许可证已延续并邮寄到企业", "scjg"),
    Topic("qualification", "申请高新技术企业认定，对研发费用归集不太清楚", "区工信局组织专场辅导，企业已按要求完成研发费用归集并提交认定申请", "gxj"),
    Topic("policy", "我们是刚注册的小微企业，想了解有哪些房租和社保补贴可以申请", "网格员上门推送适用政策清单四项，协助企业申请社保补贴已获批", None),
    Topic("policy", "数字化改造项目有没有专项资金支持？申报截止时间是什么时候", "区发改局解读专项资金申报指南，企业项目已纳入申报储备库", "fgw"),
    Topic("parking", "园区停车位不足，员工每天找车位困难，经常被贴罚单", "区城管局与园区协调错时共享停车位120个，并在周边增划临时停车泊位", "cgj"),
    Topic("parking", "写字楼门口共享单车乱停放，堵住了消防通道", "区城管局协调运营企业清运车辆，增设停放区和电子围栏，每日巡查", "cgj"),
    Topic("dining", "楼宇周边吃饭的地方太少，午餐时间排队很长，希望引进员工食堂", "街道协调社区食堂开设楼宇专窗，推出工作餐套餐并提供线上预订", None),
    Topic("dining", "楼下餐馆油烟很大，办公室开不了窗", "区市场监管局督促商户加装油烟净化设备，复测达标", "scjg"),
    Topic("enterprise_other", "办公楼网络信号差，想申请运营商进楼改造", "街道牵头对接通信运营商完成楼内信号改造，覆盖全部楼层", "gxj"),
    Topic("elevator", "老旧小区加装电梯审批进度咨询，我们单元已经签完同意书", "区住建局说明审批流程并加快联审，该单元电梯已取得施工许可", "zjj"),
    Topic("elevator", "加装电梯施工噪音太大，晚上九点以后还在施工", "督促施工单位调整作业时间，夜间停止高噪音作业，居民认可", "zjj"),
    Topic("elderly_care", "家里老人独居，想申请助餐和上门探访服务", "网格员上门登记，已为老人开通社区食堂助餐和晨曦信号每日报平安", None),
    Topic("elderly_care", "社区养老驿站活动太少，希望增加康复理疗项目", "养老驿站新增每周两次康复理疗和健康讲座，已在社区公示", None),
    Topic("environment", "小区垃圾分类点气味大，夏天蚊蝇多，希望增加清运次数", "区城管局将清运频次调整为每日两次，并对分类点进行消杀", "cgj"),
    Topic("environment", "楼下沿街商铺夜间经营噪音扰民", "区城管局约谈商户并规范经营时间，夜间巡查未再发现扰民", "cgj"),
    Topic("property", "物业公司服务差，楼道卫生长期没人打扫", "区住建局督促物业公司整改，落实楼道每日保洁，居民代表验收通过", "zjj"),
    Topic("property", "物业费收费标准不清楚，希望公开收支明细", "物业公司已在小区公示栏和物业公示平台公开收费标准和收支明细", "zjj"),
    Topic("facilities", "小区路灯坏了好几盏，晚上出行很不安全", "区城管局已维修更换路灯八盏，并纳入定期巡检", "cgj"),
    Topic("facilities", "楼前道路坑洼积水，老人出行容易摔倒", "已完成道路修补和排水改造，雨后无积水", "cgj"),
    Topic("facilities", "单元门禁坏了一个多月，外来人员随意进出", "网格员联系物业更换门禁控制器，门禁已恢复正常", None),
    Topic("neighbours", "楼上邻居装修经常在中午施工，沟通多次无果", "网格员组织双方协商，约定施工时间并签订调解协议", None),
    Topic("neighbours", "邻居在楼道堆放杂物，占用公共空间存在消防隐患", "网格员上门劝导，杂物已清理，楼道恢复畅通", None),
    Topic("resident_other", "希望在小区里增设电动自行车充电桩，避免飞线充电", "街道协调在小区内建成集中充电车棚，可同时为40辆车充电", "zjj"),
]
SURNAMES = "张王李刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
DETAILS = {SubmitterKind.RESIDENT: ["{n}号楼{u}单元", "{n}号楼{u}单元{r}室", "{n}号楼北侧"], SubmitterKind.ENTERPRISE: ["B座{n}层", "{n}号楼{u}层", "{n}号商铺"]}
CHANNELS = [
    (AppealChannel.QR, 5), (AppealChannel.SUGGESTION_BOX, 4), (AppealChannel.VISIT, 4),
    (AppealChannel.HOTLINE, 3), (AppealChannel.EVENT, 2), (AppealChannel.OPEN311, 1),
]
COMPLEX_REASONS = ["涉及多个部门职责和产权单位，需要联合会商", "需要编制改造方案并履行审批程序"]


class DemoClock:
    """The demo's clock: the services read it, the loader sets it to each step's time."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Case:
    """One planned appeal and the steps it will take; `appeal` is set once it is submitted."""

    topic: Topic
    received_at: datetime
    outcome: str
    appeal: Appeal | None = None
    steps: list[tuple[timedelta, Callable[[Case], Awaitable[Any]]]] = field(default_factory=list)


@dataclass
class DemoAppeals:
    session: AsyncSession
    settings: Settings
    clock: DemoClock
    rng: random.Random
    staff: Actor
    grid: Actor
    departments: dict[str, Department]
    places: dict[str, Place]
    department_actors: dict[str, Actor]

    @property
    def limits(self) -> TimeLimits:
        return TimeLimits.from_settings(self.settings)

    # --- the services, with the demo clock -----------------------------------------------------------

    async def submit(self, case: Case) -> None:
        kind = BY_CODE[case.topic.category].audience
        channel = self.rng.choices([c for c, _ in CHANNELS], weights=[w for _, w in CHANNELS])[0]
        named = self.rng.random() < 0.8
        data = AppealInput(
            channel=channel, submitter_kind=kind, category=case.topic.category, description=case.topic.description,
            place_id=self.places[self.rng.choice(ENTERPRISE_PLACES if kind is SubmitterKind.ENTERPRISE else RESIDENT_PLACES)].id,
            submitter_name=self._name(kind) if named else None,
            submitter_phone=f"138000{self.rng.randrange(10000):05d}" if named else None,
            location_detail=self.rng.choice(DETAILS[kind]).format(n=self.rng.randint(1, 12), u=self.rng.randint(1, 4), r=self.rng.randint(1, 6) * 100 + self.rng.randint(1, 2)),
        )
        actor = {AppealChannel.VISIT: self.grid, AppealChannel.HOTLINE: self.staff, AppealChannel.EVENT: self.staff}.get(channel, Actor.submitter())
        if channel is AppealChannel.VISIT:
            # 1+N+1: the grid worker collected it on a visit (no random draws here: the demo year stays the same).
            case.appeal = await self._visit(data)
            return
        case.appeal = await appeals.submit(
            self.session, data, actor=actor, limits=self.limits, uploads_dir=self.settings.uploads_dir, clock=self.clock
        )

    async def _visit(self, data: AppealInput) -> Any:
        place = next(name for name, p in self.places.items() if p.id == data.place_id)
        enterprise = data.submitter_kind is SubmitterKind.ENTERPRISE
        appeal_id = uuid7()
        await visits.record_visit(
            self.session,
            visits.VisitInput(
                subject_kind=VisitSubject.ENTERPRISE if enterprise else VisitSubject.HOUSEHOLD,
                subject_name=VISIT_SUBJECTS[place], purpose=VisitPurpose.FIRST, place_id=data.place_id,
                policies=VISIT_POLICIES[:2] if enterprise else [], appeals=[(appeal_id, data)],
            ),
            actor=self.grid, limits=self.limits, uploads_dir=self.settings.uploads_dir, clock=self.clock,
        )
        return await self.session.get(Appeal, appeal_id)

    def _name(self, kind: SubmitterKind) -> str:
        title = self.rng.choice(["经理", "主管", "女士", "先生"] if kind is SubmitterKind.ENTERPRISE else ["女士", "先生", "阿姨", "大爷"])
        return self.rng.choice(SURNAMES) + title

    async def act(self, case: Case, action: Action, actor: Actor, payload: ActionInput | None = None) -> None:
        assert case.appeal is not None
        await appeals.act(self.session, case.appeal, action, actor, payload, limits=self.limits, clock=self.clock)

    def handler(self, case: Case) -> Actor:
        code = case.topic.department
        return self.grid if code is None else self.department_actors[code]

    # --- the steps a case can take ---------------------------------------------------------------------

    async def transfer(self, case: Case) -> None:
        code = case.topic.department
        payload = ActionInput(assignee_id=self.grid.user_id) if code is None else ActionInput(department_id=self.departments[code].id)
        await self.act(case, Action.TRANSFER, self.staff, payload)

    async def accept(self, case: Case) -> None:
        await self.act(case, Action.ACCEPT, self.handler(case))

    async def mark_complex(self, case: Case) -> None:
        await self.act(case, Action.MARK_COMPLEX, self.staff, ActionInput(note=self.rng.choice(COMPLEX_REASONS)))

    async def resolve(self, case: Case) -> None:
        await self.act(case, Action.RESOLVE, self.handler(case), ActionInput(note=case.topic.resolution))

    async def evaluate(self, case: Case, evaluation: Evaluation | None = None) -> None:
        evaluation = evaluation or self._evaluation()
        comment = {Evaluation.SATISFIED: "办理及时，非常满意", Evaluation.UNSATISFIED: "问题没有彻底解决"}.get(evaluation)
        await self.act(case, Action.EVALUATE, Actor.submitter(), ActionInput(evaluation=evaluation, note=comment))

    def _evaluation(self) -> Evaluation:
        return Evaluation.SATISFIED if self.rng.random() < 0.85 else Evaluation.BASICALLY_SATISFIED

    async def return_visit(self, case: Case, *, with_evaluation: bool) -> None:
        method = self.rng.choice([VisitMethod.PHONE, VisitMethod.IN_PERSON])
        payload = ActionInput(method=method, note="回访确认问题已解决", evaluation=self._evaluation() if with_evaluation else None)
        visitor = self.grid if case.topic.department is None else self.staff  # a grid worker visits their own cases
        await self.act(case, Action.RETURN_VISIT, visitor, payload)

    async def close(self, case: Case) -> None:
        await self.act(case, Action.CLOSE, self.staff)

    async def whistle(self, case: Case, codes: list[str]) -> None:
        payload = ActionInput(department_ids=[self.departments[c].id for c in codes], report_by=self.clock.now + timedelta(days=2), note="涉及多个部门，街道吹哨")
        await self.act(case, Action.WHISTLE, self.staff, payload)

    async def report_in(self, case: Case, code: str) -> None:
        await self.act(case, Action.REPORT_IN, self.department_actors[code], ActionInput(note="已安排专人到现场对接，按分工落实"))

    async def reject(self, case: Case) -> None:
        await self.act(case, Action.REJECT, self.staff, ActionInput(note="属于民事纠纷，已告知通过司法途径解决"))

    async def merge(self, case: Case, into: Case) -> None:
        assert into.appeal is not None
        await self.act(case, Action.MERGE, self.staff, ActionInput(target_reference=into.appeal.reference))

    async def reopen_by_evaluation(self, case: Case) -> None:
        await self.evaluate(case, Evaluation.UNSATISFIED)


def hours(value: float) -> timedelta:
    return timedelta(hours=value)


def days(value: float) -> timedelta:
    return timedelta(days=value)


def plan_handling(demo: DemoAppeals, case: Case, *, respond: float, resolve_days: float = 99, until: str = "closed") -> None:
    """The usual path, stopped once `until` is reached: transfer, accept, resolve, the submitter's evaluation
    and a return visit (or an evaluation recorded at the return visit), close."""
    rng = demo.rng
    by_submitter = until == "evaluated" or rng.random() < 0.5
    evaluated = resolve_days + rng.uniform(0.3, 1.5)
    path: list[tuple[str, timedelta, Callable[[Case], Awaitable[Any]]]] = [
        ("transferred", hours(respond), demo.transfer),
        ("in_progress", hours(respond + rng.uniform(0.5, 6)), demo.accept),
        ("resolved", days(resolve_days), demo.resolve),
    ]
    if by_submitter:
        path += [
            ("evaluated", days(evaluated), demo.evaluate),
            ("visited", days(evaluated + 0.5), lambda c: demo.return_visit(c, with_evaluation=False)),
        ]
    else:
        path.append(("visited", days(evaluated), lambda c: demo.return_visit(c, with_evaluation=True)))
    path.append(("closed", days(evaluated + 1), demo.close))
    for reached, offset, step in path:
        case.steps.append((offset, step))
        if reached == until:
            return


def topic(category: str) -> Topic:
    return next(t for t in TOPICS if t.category == category)


def plan_year(demo: DemoAppeals, end: datetime) -> list[Case]:
    """Who asked what, when, and how far each case has come by `end`."""
    rng = demo.rng
    cases: list[Case] = []

    def new(received_at: datetime, outcome: str, subject: Topic | None = None) -> Case:
        case = Case(subject or rng.choice(TOPICS), received_at, outcome)
        cases.append(case)
        return case

    # 46 cases over the year that went the whole way round; a few answered or resolved late.
    for _ in range(46):
        case = new(end - YEAR + days(rng.uniform(0, 330)), "closed")
        respond = rng.choice([14.0, 15.5]) if rng.random() < 0.05 else rng.uniform(0.5, 10)
        resolve_days = rng.uniform(7.5, 9) if rng.random() < 0.06 else rng.uniform(1, 6.5)
        plan_handling(demo, case, respond=respond, resolve_days=resolve_days)
    closed = list(cases)

    # Complex cases (复杂问题1月闭环), marked complex the day after, resolved within their month.
    for _ in range(3):
        case = new(end - YEAR + days(rng.uniform(20, 300)), "complex")
        plan_handling(demo, case, respond=3, resolve_days=rng.uniform(12, 26))
        case.steps.append((hours(30), demo.mark_complex))

    # Whistles (街道吹哨、部门报到): three departments summoned, the third reports in after the deadline.
    for subject, codes in ((topic("elevator"), ["zjj", "cgj", "fgw"]), (topic("parking"), ["cgj", "scjg", "gxj"])):
        case = new(end - YEAR + days(rng.uniform(40, 300)), "whistle", subject)
        case.steps.append((hours(1), lambda c, codes=codes: demo.whistle(c, codes)))
        plan_handling(demo, case, respond=2, resolve_days=6)
        case.steps += [(hours(h), lambda c, d=d: demo.report_in(c, d)) for h, d in zip((5, 20, 60), codes, strict=True)]

    # One 不满意: the evaluation reopens the case, it is resolved again, then the submitter is satisfied.
    case = new(end - days(150), "reopened")
    plan_handling(demo, case, respond=2, resolve_days=3, until="resolved")
    case.steps += [
        (days(3.5), demo.reopen_by_evaluation), (days(5.5), demo.resolve), (days(6), demo.evaluate),
        (days(6.5), lambda c: demo.return_visit(c, with_evaluation=False)), (days(7), demo.close),
    ]

    # And one 不满意 whose case is being handled again right now (due soon).
    unsatisfied = new(end - days(6.5), "reopened_open")
    plan_handling(demo, unsatisfied, respond=1, resolve_days=3, until="resolved")
    unsatisfied.steps.append((days(4.5), demo.reopen_by_evaluation))

    # Not accepted, and duplicates merged into an earlier case.
    for days_ago in (200, 90):
        new(end - days(days_ago), "rejected").steps.append((hours(3), demo.reject))
    for original in rng.sample([c for c in closed if c.received_at < end - days(30)], 2):
        duplicate = new(original.received_at + hours(20), "merged", original.topic)
        duplicate.steps.append((hours(4), lambda c, o=original: demo.merge(c, o)))

    # Still open at `end`: new, due soon (即将超时), overdue (已超时), complex, summoned, awaiting evaluation or a return visit.
    new(end - hours(3), "received")
    plan_handling(demo, new(end - days(6), "transferred"), respond=2, until="transferred")
    plan_handling(demo, new(end - days(5) - hours(20), "in_progress"), respond=1, until="in_progress")
    plan_handling(demo, new(end - days(2), "in_progress"), respond=4, until="in_progress")
    plan_handling(demo, new(end - days(9), "overdue"), respond=3, until="in_progress")
    complex_open = new(end - days(12), "complex_open")
    plan_handling(demo, complex_open, respond=2, until="in_progress")
    complex_open.steps.append((days(2), demo.mark_complex))
    summoned = new(end - days(3), "whistle_open", topic("facilities"))  # 区住建 has not reported in: late
    summoned.steps += [
        (hours(1), lambda c: demo.whistle(c, ["cgj", "zjj", "fgw"])),
        (hours(6), lambda c: demo.report_in(c, "cgj")),
        (hours(26), lambda c: demo.report_in(c, "fgw")),
    ]
    for days_ago in (4, 3):
        plan_handling(demo, new(end - days(days_ago), "resolved"), respond=2, resolve_days=days_ago - 1, until="resolved")
    for days_ago in (10, 8, 6):
        plan_handling(demo, new(end - days(days_ago), "evaluated"), respond=1, resolve_days=3, until="evaluated")
    return cases


async def load_demo_appeals(session: AsyncSession, settings: Settings, *, end: datetime) -> int:
    """Submit and handle a year of appeals ending at `end`, step by step in time order. Returns the count."""
    demo = await _demo_people(session, settings, DemoClock(end - YEAR))
    cases = plan_year(demo, end)
    timeline: list[tuple[datetime, int, Case, Callable[[Case], Awaitable[Any]] | None]] = []
    for number, case in enumerate(cases):
        timeline.append((case.received_at, number * 100, case, None))
        timeline += [(case.received_at + offset, number * 100 + i + 1, case, step) for i, (offset, step) in enumerate(case.steps)]
    last_job = end - YEAR
    for at, _order, case, step in sorted((t for t in timeline if t[0] <= end), key=lambda t: (t[0], t[1])):
        demo.clock.now = at
        if at - last_job >= hours(24):  # the overdue job, as a daily check would have run it
            await appeals.record_overdue(session, clock=demo.clock)
            last_job = at
        if step is None:
            await demo.submit(case)
        else:
            await step(case)
    demo.clock.now = end
    await appeals.record_overdue(session, clock=demo.clock)
    return len(cases)


async def _demo_people(session: AsyncSession, settings: Settings, clock: DemoClock) -> DemoAppeals:
    staff = await accounts.get_user_by_username(session, "staff")
    grid = await accounts.get_user_by_username(session, "grid")
    city = await accounts.get_user_by_username(session, "dept")
    if staff is None or grid is None or city is None:
        raise LookupError("load the demo users first")
    departments = await appeals.seed_departments(session)
    # 赵科长 acts for 区城管; the departments without a demo account act under their own name.
    department_actors = {
        code: Actor.for_user(city) if d.id == city.department_id else Actor(principal=Role.DEPARTMENT, label=d.name, department_id=d.id)
        for code, d in departments.items()
    }
    places = {p.name: p for p in await session.scalars(select(Place))}
    return DemoAppeals(
        session, settings, clock, random.Random(SEED), Actor.for_user(staff), Actor.for_user(grid), departments, places, department_actors
    )
