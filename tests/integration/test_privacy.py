"""Public pages show no personal data (invariant 5): a crawl of everything an anonymous visitor can reach.

Over the demo data plus cases carrying distinctive names, phones, emails and exact addresses, the
crawl GETs every route the authorization table opens to everyone (with real place codes, tracking
codes, references and service codes put into their parameters), follows the links on the pages it
gets, and looks for those strings in every response, HTML, JSON or XML.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urljoin, urlsplit

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.models import (
    Appeal,
    AppealChannel,
    CheckInMethod,
    CommunityEvent,
    Department,
    Enterprise,
    Evaluation,
    Place,
    Policy,
    PolicyGuide,
    PolicyStatus,
    Role,
    SubmitterKind,
    VisitMethod,
)
from server.services import api_keys, appeals, canteen, demo, mediation, morning_signal, policy_questions
from server.services.appeal_catalog import CATEGORIES
from server.services.appeal_workflow import Action
from server.services.appeals import ActionInput, Actor, AppealInput
from server.services.deadlines import TimeLimits
from server.settings import Settings
from tests.authz_table import EVERYONE, TABLE

# Distinctive personal data, found nowhere else in the app or the demo data.
PERSONAL = {
    "names": ["司马懿然", "诸葛青云", "慕容秋水", "Quentin Zebulon", "欧阳明月", "上官婉清", "东方既白", "南宫月华", "南宫长子", "钟离小满"],
    "phones": ["13987654321", "15011112222", "18600009999", "13700001111", "13600002222", "13500003333", "13400004444",
               "13300005555"],
    "emails": ["qz.private@example.org"],
    "addresses": ["幸福里7号楼3单元602室", "东舍坊12号院后门左手第三家", "解放路88号甲1204", "文华园小区19号楼4单元404"],
}
PARAM_RE = re.compile(r"\{([^}:]+)(?::[^}]+)?\}")
HREF_RE = re.compile(r'(?:href|src|action)="([^"]+)"')
SKIP_PREFIXES = ("/static/", "/lang/")
MAX_PAGES = 1500
STAFF = Actor(principal=Role.STAFF, label="李主任")


@dataclass
class Seeded:
    appeals: list[Appeal]
    place_codes: list[str]
    ids: list[str]  # a policy and an event with personal data near them


async def _seed(db: AsyncSession, settings: Settings) -> Seeded:
    limits = TimeLimits.from_settings(settings)
    by_name = {p.name: p for p in await db.scalars(select(Place))}
    cgj = await db.scalar(select(Department).where(Department.code == "cgj"))
    assert cgj is not None
    start = datetime.now(UTC) - timedelta(days=10)

    async def submit(hours: float, category: str, place: str, name: str | None, phone: str | None, detail: str) -> Appeal:
        kind = next(c.audience for c in CATEGORIES if c.code == category)
        data = AppealInput(
            channel=AppealChannel.SUGGESTION_BOX if kind is SubmitterKind.RESIDENT else AppealChannel.QR,
            submitter_kind=kind, category=category, description="请尽快处理这个问题，谢谢", place_id=by_name[place].id,
            submitter_name=name, submitter_phone=phone, location_detail=detail,
        )
        at = start + timedelta(hours=hours)
        return await appeals.submit(db, data, actor=Actor.submitter(), limits=limits, uploads_dir=settings.uploads_dir, clock=lambda: at)

    async def act(appeal: Appeal, hours: float, action: Action, actor: Actor = STAFF, **payload: object) -> None:
        at = start + timedelta(hours=hours)
        await appeals.act(db, appeal, action, actor, ActionInput(**payload), limits=limits, clock=lambda: at)  # type: ignore[arg-type]

    desk = Actor(principal=Role.DEPARTMENT, label=cgj.name, department_id=cgj.id)
    resolved = await submit(0, "facilities", "东舍坊小区", "司马懿然", "13987654321", "幸福里7号楼3单元602室")
    await act(resolved, 1, Action.TRANSFER, department_id=cgj.id)
    await act(resolved, 2, Action.ACCEPT, desk)
    await act(resolved, 30, Action.RESOLVE, desk, note="已更换路灯")
    await act(resolved, 31, Action.EVALUATE, Actor.submitter(), evaluation=Evaluation.SATISFIED)
    await act(resolved, 32, Action.RETURN_VISIT, method=VisitMethod.PHONE)
    await act(resolved, 33, Action.CLOSE)
    in_progress = await submit(5, "neighbours", "文华园小区", "诸葛青云", "15011112222", "东舍坊12号院后门左手第三家")
    await act(in_progress, 6, Action.TRANSFER, department_id=cgj.id)
    unsatisfied = await submit(8, "parking", "鲁粮集团办公楼", "慕容秋水", "18600009999", "解放路88号甲1204")
    await act(unsatisfied, 9, Action.ACCEPT)
    await act(unsatisfied, 20, Action.RESOLVE, note="已协调车位")
    await act(unsatisfied, 21, Action.EVALUATE, Actor.submitter(), evaluation=Evaluation.UNSATISFIED)
    # The policy service: an enterprise's private contact, a question's asker (answered as a public FAQ),
    # an appeal raised at an event by a named resident.
    firm = await db.scalar(select(Enterprise).order_by(Enterprise.name).limit(1))
    assert firm is not None
    firm.contact_name, firm.contact_phone = "欧阳明月", "13700001111"
    policy = await db.scalar(select(Policy).where(Policy.status == PolicyStatus.PUBLISHED, Policy.long_term.is_(True)).limit(1))
    assert policy is not None
    asked = await policy_questions.ask(db, policy, question="我们公司能申请吗？", enterprise_name="某公司", contact_name="上官婉清",
                                       contact_phone="13600002222", now=start)
    await policy_questions.answer(db, asked, text="可以，请带营业执照到服务大厅。", faq=True, faq_question="小微企业能申请吗？",
                                  actor_id=None, now=start + timedelta(hours=1))
    event = await db.scalar(select(CommunityEvent).order_by(CommunityEvent.starts_at).limit(1))
    assert event is not None
    at_event = AppealInput(channel=AppealChannel.EVENT, event_id=event.id, submitter_kind=SubmitterKind.RESIDENT, category="facilities",
                           description="活动上反映：楼道灯坏了", place_id=by_name["东舍坊小区"].id, submitter_name="东方既白",
                           submitter_phone="13500003333")
    raised = await appeals.submit(db, at_event, actor=STAFF, limits=limits, uploads_dir=settings.uploads_dir, clock=lambda: start)
    guide = await db.scalar(select(PolicyGuide.slug).order_by(PolicyGuide.slug).limit(1))
    # 晨曦信号: an elder whose link is visited by the crawl; the page shows nothing personal.
    elder = await morning_signal.enrol(db, morning_signal.ElderInput(name="南宫月华", address="文华园小区19号楼4单元404",
                                                                     phone="13400004444"),
                                       [morning_signal.HelperInput("family", "南宫长子", phone="13300005555")], now=start)
    await morning_signal.check_in(db, elder, at=start + timedelta(hours=1), method=CheckInMethod.SELF, by_user_id=None,
                                  now=start + timedelta(hours=1), tz=settings.tz)
    # Mediation (L6): a case with named parties and private notes; a canteen entry whose note names someone.
    case = await mediation.save_case(db, mediation.CaseInput(kind="leak", opened_on=start.date().isoformat(), summary="幸福里7号楼3单元602室漏水",
                                                             parties=[mediation.Party("慕容秋水", "18600009999")]), today=start.date())
    await mediation.add_session(db, case, mediation.SessionInput(held_on=start.date().isoformat(), notes="诸葛青云到场"), mediator_id=None,
                                today=start.date())
    await canteen.record_entry(db, canteen.EntryInput("donation", "200", start.date().isoformat(), "上官婉清捐赠"), actor_id=None,
                               now=start, tz=settings.tz)
    # Recycling points: a household card whose station-only note names the household; its own page is crawled.
    from server.models import RecyclingStation
    from server.services import recycling

    station = await db.scalar(select(RecyclingStation).limit(1))
    assert station is not None
    household = await recycling.issue_card(db, station, note="钟离小满 3号楼", now=start)
    await recycling.record_dropoff(db, station, card=household.card_number, at=start, by_user_id=None,
                                   lines=[recycling.LineInput((await recycling.categories_of(db, station.id))[0].id, "2.5")])
    return Seeded([resolved, in_progress, unsatisfied, raised], [p.code for p in by_name.values()],
                  [str(policy.id), str(event.id), str(guide), elder.token, household.token])


@pytest.fixture
async def seeded(db: AsyncSession, settings: Settings, demo_data: demo.DemoReport) -> Seeded:
    seeded = await _seed(db, settings)
    await db.commit()
    return seeded


async def _open311_submission(client: AsyncTestClient, db: AsyncSession) -> Appeal:
    _row, key = await api_keys.create(db, "12345热线平台")
    await db.commit()
    response = await client.post(
        "/open311/v2/requests.json",
        data={
            "api_key": key, "service_code": "environment", "description": "垃圾桶满了好几天没人清理",
            "address_string": PERSONAL["addresses"][2], "first_name": "Quentin", "last_name": "Zebulon",
            "email": PERSONAL["emails"][0], "phone": "13987654321",
        },
    )
    assert response.status_code == 200, response.text
    appeal = await appeals.get_by_reference(db, response.json()[0]["service_request_id"])
    assert appeal is not None
    return appeal


def _values(seeded: Seeded, extra: list[Appeal]) -> list[str]:
    cases = seeded.appeals + extra
    return [*seeded.place_codes, *(a.tracking_code for a in cases), *(a.reference for a in cases), *(c.code for c in CATEGORIES),
            *seeded.ids]


def expand(route: str, sample: str | None, values: list[str]) -> list[str]:
    """Concrete paths for a route template: the sample, and every value in a one-parameter template."""
    params = PARAM_RE.findall(route)
    if not params:
        return [route]
    paths = [sample] if sample else []
    if len(params) == 1:
        suffixes = ["", ".json", ".xml"] if route.startswith("/open311/") else [""]
        paths += [PARAM_RE.sub(value + suffix, route) for value in values for suffix in suffixes]
    return paths


def links_of(path: str, body: str) -> list[str]:
    found = []
    for href in HREF_RE.findall(body):
        target = urljoin(path, href.replace("&amp;", "&"))
        parts = urlsplit(target)
        if parts.netloc and parts.netloc != "testserver.local":
            continue
        local = parts.path + (f"?{parts.query}" if parts.query else "")
        if local.startswith("/") and not local.startswith(SKIP_PREFIXES):
            found.append(local)
    return found


async def crawl(client: AsyncTestClient, start: list[str]) -> dict[str, tuple[int, str]]:
    """GET every start path and every same-site link found on the way, as an anonymous visitor."""
    seen: dict[str, tuple[int, str]] = {}
    queue = list(dict.fromkeys(start))
    while queue and len(seen) < MAX_PAGES:
        path = queue.pop(0)
        if path in seen:
            continue
        response = await client.get(path)
        body = response.text if "image/" not in response.headers.get("content-type", "") else ""
        seen[path] = (response.status_code, body)
        if response.status_code == 200 and "text/html" in response.headers.get("content-type", ""):
            queue += [link for link in links_of(path, body) if link not in seen]
    assert len(seen) < MAX_PAGES, "the crawl did not finish"
    return seen


async def test_no_public_page_shows_personal_data(client: AsyncTestClient, db: AsyncSession, seeded: Seeded) -> None:
    submitted = await _open311_submission(client, db)
    values = _values(seeded, [submitted])
    start = [
        path
        for row in TABLE
        if row.allowed == EVERYONE and row.method == "GET" and not row.route.startswith(SKIP_PREFIXES)
        for path in expand(row.route, row.sample, values)
    ]
    pages = await crawl(client, start)

    leaks = [
        f"{path}: {secret}"
        for path, (_status, body) in pages.items()
        for group in PERSONAL.values()
        for secret in group
        if secret in body
    ]
    assert leaks == []

    # The crawl reached what it had to: otherwise the check above would prove nothing.
    ok = {path for path, (status, _body) in pages.items() if status == 200}
    cases = [*seeded.appeals, submitted]
    must_reach = {"/summary/appeals", "/api/stats/appeals", "/open311/v2/requests.json", "/open311/v2/requests.xml",
                  "/policies", "/events", "/api/stats/overview", f"/policies/{seeded.ids[0]}", f"/events/{seeded.ids[1]}",
                  f"/g/{seeded.ids[2]}", f"/checkin/{seeded.ids[3]}", "/mediation", f"/r/{seeded.ids[4]}"}
    must_reach |= {f"/track/{a.tracking_code}" for a in cases}
    must_reach |= {f"/open311/v2/requests/{a.reference}{fmt}" for a in cases for fmt in (".json", ".xml")}
    # Livelihood projects (L1, L2): the list, a project's page (its responsible people's phones stay off it) and a disclosure.
    from server.models import PropertyDisclosure, Project as LivelihoodProject

    project = await db.scalar(select(LivelihoodProject).order_by(LivelihoodProject.title).limit(1))
    disclosed = await db.scalar(select(Place.code).join(PropertyDisclosure, PropertyDisclosure.place_id == Place.id).limit(1))
    assert project is not None and disclosed is not None
    must_reach |= {"/projects", "/property", f"/projects/{project.id}", f"/property/{disclosed}"}
    assert not [r["phone"] for r in project.responsible if r.get("phone") and r["phone"] in pages.get(f"/projects/{project.id}", (0, ""))[1]]
    # The live boards (L7): every board, reached from /boards.
    from server.services import boards

    must_reach |= {"/boards", *(f"/boards/{name}" for name in ("overview", *boards.BOARDS))}
    assert must_reach - ok == set()
    assert "小微企业能申请吗？" in pages[f"/policies/{seeded.ids[0]}"][1]  # the FAQ is public, its asker is not
    listed = pages["/open311/v2/requests.json"][1]
    assert all(a.reference in listed for a in cases)
    # Tracking codes belong to the submitter alone: only a page asked for with the code shows it.
    code_leaks = [
        f"{path}: {a.reference}"
        for path, (_status, body) in pages.items()
        for a in cases
        if a.tracking_code in body and a.tracking_code not in path
    ]
    assert code_leaks == []
