"""Demo data of the projects area (issue 15). Loaded by server/services/demo.py, once.

A dozen livelihood projects across 东舍坊小区, 文华园小区, the industrial park and the street shops, in every
state: two accepted by 东舍坊's resident representative and building head, one (the 3号楼 elevator)
awaiting their signatures, works in progress with milestones, planned and suspended ones; updates and
residents' comments (published and waiting for review). 东舍坊's property disclosure follows the seed:
with the reform plan, the service standards and the fees published in full, the fee collection rate
went from under 5% to 70% and the monthly 12345 complaints fell by 35%. Everything is written through
the services (the same rules as the staff pages), with the clock moved back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.models import Place, Project, ProjectKind, ProjectMilestone, ProjectStatus, User
from server.services import projects as svc
from server.services import property_disclosure as disclosure
from server.settings import Settings

RESPONSIBLE = {
    "street": ("王建国", "解放路街道城建办主任", "0531-86015201"),
    "community_d": ("刘秀兰", "东舍坊社区书记", "0531-86015233"),
    "community_w": ("陈立新", "文华园社区主任", "0531-86015248"),
    "property": ("赵志强", "物业服务中心经理", "0531-86015277"),
    "elevator": ("孙海涛", "电梯施工单位项目经理", "0531-86015290"),
    "economy": ("马文博", "街道经济发展办公室科员", "0531-86015212"),
}
SUPERVISION = "居民代表+楼栋长双重监督：每周现场巡查一次，发现问题当场记录、限期整改；竣工后由本小区居民代表和楼栋长签字验收。"


@dataclass
class DemoProject:
    title: str
    kind: ProjectKind
    place: str
    description: str
    responsible: list[str]
    start_days_ago: int
    duration_days: int
    status: ProjectStatus  # the state it ends in
    milestones: list[tuple[str, bool]] = field(default_factory=list)  # (title, done)
    updates: list[str] = field(default_factory=list)
    manual_progress: int = 0
    comments: list[tuple[str | None, str, bool]] = field(default_factory=list)  # (name, text, approved)


PROJECTS: list[DemoProject] = [
    DemoProject("东舍坊小区老旧小区综合改造（一期）", ProjectKind.OLD_COMPOUND_RENOVATION, "东舍坊小区",
                "外墙保温、屋面防水、雨污分流和小区道路重铺，涉及1至6号楼共312户。", ["street", "community_d"], 420, 240,
                ProjectStatus.ACCEPTED,
                [("施工方案公示并征求居民意见", True), ("屋面防水完工", True), ("外墙保温完工", True), ("道路重铺完工", True)],
                ["施工方案在小区公示栏和微信群公示七天，收到居民意见23条，已逐条答复。", "屋面防水全部完工，雨季前完成闭水试验。",
                 "外墙保温和道路重铺完工，进入验收准备。"],
                comments=[("老住户", "屋顶终于不漏了，感谢！", True), (None, "道路铺好以后下雨不积水了。", True)]),
    DemoProject("东舍坊小区物业“试用期”服务承诺", ProjectKind.PROPERTY_TRIAL, "东舍坊小区",
                "新物业进驻实行六个月“试用期”：服务标准和收费明细全程公示，试用期满由居民代表和楼栋长评议，达标后续签。",
                ["community_d", "property"], 400, 183, ProjectStatus.ACCEPTED,
                [("公示服务标准与收费明细", True), ("试用期第一次居民评议", True), ("试用期满评议", True)],
                ["物业服务标准、收费明细在小区公示栏和“善治解放路”公众号同步公示。", "第一次居民评议满意率86%，针对保洁频次提出整改。",
                 "试用期满评议通过，物业续签。"],
                comments=[("3号楼居民", "保洁比以前勤快多了，垃圾桶每天清。", True)]),
    DemoProject("东舍坊小区3号楼加装电梯", ProjectKind.ELEVATOR_RETROFIT, "东舍坊小区",
                "3号楼2单元加装电梯一部，七层七站，由本单元居民共同出资、街道协助办理审批。", ["street", "elevator"], 200, 150,
                ProjectStatus.AWAITING_ACCEPTANCE,
                [("单元居民签字同意", True), ("规划审批通过", True), ("井道施工完成", True), ("电梯安装调试完成", True),
                 ("特种设备检验合格", True)],
                ["本单元14户全部签字同意，方案报区住建局审批。", "井道主体施工完成。", "电梯安装调试完成，特种设备检验合格，申请居民验收。"],
                comments=[("二单元", "老人终于能下楼晒太阳了。", True), ("楼下住户", "施工期间噪音能不能避开午休时间？", False)]),
    DemoProject("东舍坊小区停车位重新规划", ProjectKind.PARKING, "东舍坊小区",
                "重新施划地面车位，增设新能源充电桩8个，消防通道全线禁停。", ["community_d", "property"], 60, 120,
                ProjectStatus.IN_PROGRESS,
                [("车位规划方案公示", True), ("居民议事会表决", True), ("施划车位", False), ("充电桩安装", False), ("消防通道标识", False)],
                ["车位规划方案在星火小屋议事会上表决通过。"],
                comments=[(None, "希望给老人留几个靠近楼门的车位。", True)]),
    DemoProject("东舍坊小区楼道照明更换", ProjectKind.FACILITY_REPAIR, "东舍坊小区",
                "1至6号楼楼道灯全部更换为声控LED灯。", ["property"], 20, 45, ProjectStatus.IN_PROGRESS,
                [("采购灯具", True), ("1-3号楼更换", False), ("4-6号楼更换", False)], ["灯具已到货，开始更换。"]),
    DemoProject("东舍坊小区1号楼电梯更新", ProjectKind.ELEVATOR_RENEWAL, "东舍坊小区",
                "1号楼两部运行超过十五年的电梯整体更新。", ["street", "elevator"], -30, 90, ProjectStatus.PLANNED,
                updates=["更新方案已报区市场监管局备案，计划下月开工。"]),
    DemoProject("文华园小区5号楼电梯更新", ProjectKind.ELEVATOR_RENEWAL, "文华园小区",
                "5号楼三部老旧电梯更新，施工期间每次只停一部。", ["community_w", "elevator"], 90, 120, ProjectStatus.IN_PROGRESS,
                [("旧梯拆除（第一部）", True), ("新梯安装（第一部）", True), ("第二部更新", True), ("第三部更新", False)],
                ["第一部新梯投入使用。", "第二部新梯投入使用，第三部开始拆除。"]),
    DemoProject("文华园小区雨污分流改造", ProjectKind.OLD_COMPOUND_RENOVATION, "文华园小区",
                "小区内雨水、污水管网分开铺设，解决雨天返水问题。", ["street", "community_w"], -60, 150, ProjectStatus.PLANNED,
                manual_progress=5, updates=["设计方案编制中，将在小区公示栏公示征求意见。"]),
    DemoProject("文华园小区2号楼加装电梯", ProjectKind.ELEVATOR_RETROFIT, "文华园小区",
                "2号楼1单元加装电梯。", ["community_w"], 150, 180, ProjectStatus.SUSPENDED,
                [("单元居民签字同意", False)],
                ["一楼住户对采光有顾虑，暂停推进，社区组织“民生面对面”继续协商。"], manual_progress=10),
    DemoProject("山东物业创新产业园停车位规划", ProjectKind.PARKING, "山东物业创新产业园",
                "园区内部道路重新划线，新增员工车位60个，周边道路错时停车。", ["economy", "street"], 45, 90, ProjectStatus.IN_PROGRESS,
                [("企业停车需求摸底", True), ("规划方案征求企业意见", True), ("划线施工", False)],
                ["摸底园区企业停车需求，缺口约60个车位。", "规划方案征求入园企业意见，收到建议12条。"]),
    DemoProject("解放路沿街商铺雨棚与路灯维修", ProjectKind.FACILITY_REPAIR, "解放路沿街商铺",
                "更换破损雨棚，维修沿街路灯14盏。", ["street"], 30, 40, ProjectStatus.IN_PROGRESS, manual_progress=60,
                updates=["已维修路灯9盏，雨棚更换进行中。"]),
    DemoProject("文华园绿色回收驿站配套设施", ProjectKind.OTHER, "文华园小区",
                "驿站雨棚、称重台和积分兑换柜安装。", ["community_w"], 25, 30, ProjectStatus.IN_PROGRESS,
                [("雨棚安装", True), ("称重台安装", True), ("兑换柜安装", False)], ["雨棚和称重台安装完成。"]),
]

# 东舍坊小区's months, oldest first: (collection %, 12345 complaints). The rate rises from 4.2% to 70%; the
# complaints of the latest three months (13+12+14) are 35% fewer than the first three (20+19+21).
DONGSHEFANG_MONTHS: list[tuple[str, int]] = [
    ("4.2", 20), ("4.8", 19), ("6.5", 21), ("11", 19), ("18.5", 20), ("26", 18), ("33.4", 18), ("40", 17), ("46.5", 17),
    ("52", 16), ("57.5", 16), ("61", 15), ("64.2", 15), ("66", 14), ("68.1", 14), ("69", 13), ("69.6", 12), ("70", 14),
]
WENHUAYUAN_MONTHS: list[tuple[str, int]] = [("62", 6), ("63.5", 5), ("65", 6), ("64", 4), ("66.2", 5), ("67", 4)]

DONGSHEFANG_PLAN = """一、背景：东舍坊小区建成于上世纪八十年代，原物业撤出后长期无人管理，物业费收缴率不足5%，环境脏乱、投诉多。
二、做法：社区党组织牵头，居民代表和楼栋长参与选聘新物业，实行六个月“试用期”承诺；物业改革方案、服务标准和收费明细全程公示。
三、监督：居民代表+楼栋长双重监督，每月公示物业费收缴率和12345热线投诉量，试用期满由居民评议决定是否续签。"""
DONGSHEFANG_STANDARDS = """保洁：楼道每日清扫一次、每周拖洗一次；生活垃圾日产日清。
秩序：门岗24小时值守，夜间巡逻不少于两次。
维修：报修30分钟内响应，一般维修24小时内完成。
绿化：每月修剪一次，病虫害及时防治。"""
DONGSHEFANG_FEES = [("住宅物业服务费", "0.85", "元/㎡·月"), ("电梯运行维护费（有电梯楼栋）", "0.30", "元/㎡·月"),
                    ("地面停车位", "80", "元/个·月"), ("非机动车充电", "0.50", "元/次")]
WENHUAYUAN_PLAN = "文华园小区物业服务合同到期续签前，服务标准和收费明细公示征求居民意见，居民代表参与评议。"
WENHUAYUAN_STANDARDS = "保洁：楼道每日清扫；垃圾分类指导员每日在绿色回收驿站值守。\n维修：报修1小时内响应。"
WENHUAYUAN_FEES = [("住宅物业服务费", "1.20", "元/㎡·月"), ("地下停车位", "150", "元/个·月")]


def _months_back(end: datetime, settings: Settings, n: int) -> list[str]:
    """The `n` complete months before `end`'s month (Asia/Shanghai), oldest first, as YYYY-MM."""
    local = end.astimezone(settings.tz).date().replace(day=1)
    months = []
    for _ in range(n):
        local = (local - timedelta(days=1)).replace(day=1)
        months.append(f"{local:%Y-%m}")
    return months[::-1]


async def load_demo_projects(session: AsyncSession, settings: Settings, *, end: datetime) -> None:
    """Create the demo records if there are none yet; running it twice changes nothing."""
    places = {p.name: p for p in await session.scalars(select(Place))}
    if "东舍坊小区" not in places:
        return
    if await session.scalar(select(Project.id).limit(1)) is None:
        await _projects(session, settings, places, end)
    await _disclosure(session, settings, places["东舍坊小区"], end, DONGSHEFANG_PLAN, DONGSHEFANG_STANDARDS, DONGSHEFANG_FEES,
                      DONGSHEFANG_MONTHS)
    if "文华园小区" in places:
        await _disclosure(session, settings, places["文华园小区"], end, WENHUAYUAN_PLAN, WENHUAYUAN_STANDARDS, WENHUAYUAN_FEES,
                          WENHUAYUAN_MONTHS)


async def _disclosure(session: AsyncSession, settings: Settings, place: Place, end: datetime, plan: str, standards: str,
                      fees: list[tuple[str, str, str]], figures: list[tuple[str, int]]) -> None:
    if await disclosure.disclosure_of(session, place.id) is not None:
        return
    await disclosure.save(session, place, disclosure.DisclosureInput(plan, standards, fees))
    for month, (rate, complaints) in zip(_months_back(end, settings, len(figures)), figures, strict=True):
        await disclosure.record_month(session, place, month=month, rate=rate, complaints=str(complaints), now=end, tz=settings.tz)


async def _projects(session: AsyncSession, settings: Settings, places: dict[str, Place], end: datetime) -> None:
    today = end.astimezone(settings.tz).date()
    signers = list(await session.scalars(select(User).where(User.username.in_(("residentrep", "buildinghead")))))

    def at(day: date, hour: int = 10) -> datetime:
        moment = datetime.combine(day, time(hour), tzinfo=settings.tz)
        return min(moment, end)

    for demo in PROJECTS:
        place = places.get(demo.place)
        if place is None:
            continue
        start = today - timedelta(days=demo.start_days_ago)
        created = at(min(start, today) - timedelta(days=14), 9)
        project = await svc.save_project(session, svc.ProjectInput(
            title=demo.title, kind=demo.kind.value, place_id=place.id, description=demo.description, supervision=SUPERVISION,
            responsible=[RESPONSIBLE[key] for key in demo.responsible], planned_start=start,
            planned_end=start + timedelta(days=demo.duration_days), manual_progress=str(demo.manual_progress),
        ), now=created)
        project.created_at = created
        # Milestones spread over the time gone by; the done ones in order (added at once: the demo is loaded often).
        elapsed = max(1, min(demo.duration_days, (today - start).days))
        for i, (title, done) in enumerate(demo.milestones):
            due = start + timedelta(days=demo.duration_days * (i + 1) // max(1, len(demo.milestones)))
            done_on = min(today, start + timedelta(days=elapsed * (i + 1) // (len(demo.milestones) + 1))) if done else None
            session.add(ProjectMilestone(project_id=project.id, position=i + 1, title=title, due_on=due, done_on=done_on))
        # Updates: the story, spread over the elapsed time; the status moves with them.
        path = {
            ProjectStatus.PLANNED: [], ProjectStatus.IN_PROGRESS: [ProjectStatus.IN_PROGRESS],
            ProjectStatus.SUSPENDED: [ProjectStatus.IN_PROGRESS, ProjectStatus.SUSPENDED],
            ProjectStatus.AWAITING_ACCEPTANCE: [ProjectStatus.IN_PROGRESS, ProjectStatus.AWAITING_ACCEPTANCE],
            ProjectStatus.ACCEPTED: [ProjectStatus.IN_PROGRESS, ProjectStatus.AWAITING_ACCEPTANCE],
        }[demo.status]
        steps = max(len(demo.updates), len(path))
        for i in range(steps):
            body = demo.updates[i] if i < len(demo.updates) else ""
            status = path[i] if i < len(path) else ""
            if status == ProjectStatus.AWAITING_ACCEPTANCE and i < steps - 1:
                status = ""  # acceptance is asked for with the last update
            if i == steps - 1 and ProjectStatus.AWAITING_ACCEPTANCE in path:
                status = ProjectStatus.AWAITING_ACCEPTANCE
            day = start + timedelta(days=elapsed * (i + 1) // (steps + 1)) if demo.start_days_ago > 0 else today - timedelta(days=steps - i)
            await svc.post_update(session, project, body=body, status=status.value if status else "", uploads_dir=settings.uploads_dir,
                                  author_id=None, now=at(min(day, today), 15))
        if demo.status is ProjectStatus.ACCEPTED:
            signed = at(min(today, start + timedelta(days=elapsed)), 16)
            for k, user in enumerate(signers):
                await svc.sign_off(session, project.id, user_id=user.id, now=signed + timedelta(hours=k + 1))
        for k, (name, text, approved) in enumerate(demo.comments):
            posted = at(min(today, start + timedelta(days=elapsed * (k + 1) // (len(demo.comments) + 1))), 20)
            comment = await svc.post_comment(session, project, name=name or "", body=text, now=posted)
            if approved:
                await svc.moderate(session, comment, approve=True, actor_id=None, now=posted + timedelta(hours=12))
