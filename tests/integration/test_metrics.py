"""Appeal metrics (A8) from a known set of ten cases, against rates and means worked out by hand.

The cases are made by the real services (appeals.submit / appeals.act) with a moved clock. Times
are hours after the case was received; limits are the defaults: respond within 12 h, resolve
within 7 days (168 h), or one month when marked complex.

    case  channel         dept  first response        resolution                evaluation
    A     suggestion_box  cgj   transfer  +2h  (ok)   +48h  (ok)                satisfied, then closed
    B     qr              cgj   transfer +14h  (late) +200h (late)              basically satisfied
    C     hotline         zjj   transfer  +1h  (ok)   +24h, reopened by ->      unsatisfied
    D     event           zjj   transfer  +5h  (ok)   +100h (ok)                -
    E     visit           -     reject    +3h  (ok)   -                         -
    F     open311         -     merge    +20h  (late) -                         -
    G     suggestion_box  cgj   transfer +10h  (ok)   - (in progress)           -
    H     suggestion_box  -     none, long past due   -                         -
    I     qr              cgj   transfer  +4h  (ok)   +400h (ok: marked complex) satisfied
    J     hotline         -     none, still inside its 12 h (at the service's clock)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession

from server.models import Appeal, AppealChannel, Department, Evaluation, PlaceKind, Role, SubmitterKind, VisitMethod
from server.services import appeal_metrics, appeals, places
from server.services.appeal_catalog import BY_CODE
from server.services.appeal_metrics import StatsFilter
from server.services.appeal_workflow import Action
from server.services.appeals import ActionInput, Actor, AppealInput
from server.services.deadlines import TimeLimits
from server.settings import Settings
from tests.conftest import TEST_PASSWORD
from tests.helpers import Web

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY0 = datetime(2025, 3, 3, 9, 0, tzinfo=SHANGHAI)
STAFF = Actor(principal=Role.STAFF, label="李主任")


@dataclass
class Cases:
    by_name: dict[str, Appeal]
    departments: dict[str, Department]
    service_now: datetime  # one hour after J was received: J is not yet due for a response


class Builder:
    def __init__(self, db: AsyncSession, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.limits = TimeLimits.from_settings(settings)

    async def submit(self, at: datetime, channel: AppealChannel, category: str, place_id: Any = None) -> Appeal:
        kind: SubmitterKind = BY_CODE[category].audience
        data = AppealInput(channel=channel, submitter_kind=kind, category=category, description="路灯坏了，晚上很黑", place_id=place_id)
        return await appeals.submit(
            self.db, data, actor=Actor.submitter(), limits=self.limits, uploads_dir=self.settings.uploads_dir, clock=lambda: at
        )

    async def act(self, appeal: Appeal, hours: float, action: Action, actor: Actor = STAFF, **payload: Any) -> None:
        at = appeal.received_at + timedelta(hours=hours)
        await appeals.act(self.db, appeal, action, actor, ActionInput(**payload), limits=self.limits, clock=lambda: at)

    async def handled(self, appeal: Appeal, department: Department, respond: float, resolve: float | None) -> None:
        """Transferred to `department` after `respond` hours, accepted an hour later, resolved after `resolve` hours."""
        desk = Actor(principal=Role.DEPARTMENT, label=department.name, department_id=department.id)
        await self.act(appeal, respond, Action.TRANSFER, department_id=department.id)
        await self.act(appeal, respond + 1, Action.ACCEPT, desk)
        if resolve is not None:
            await self.act(appeal, resolve, Action.RESOLVE, desk, note="已修复")

    async def evaluate(self, appeal: Appeal, hours: float, evaluation: Evaluation) -> None:
        await self.act(appeal, hours, Action.EVALUATE, Actor.submitter(), evaluation=evaluation)


async def build_cases(db: AsyncSession, settings: Settings) -> Cases:
    departments = await appeals.seed_departments(db)
    subdistrict = await places.create_place(db, kind=PlaceKind.SUBDISTRICT, name="解放路街道")
    community = await places.create_place(db, kind=PlaceKind.COMMUNITY, name="东舍坊社区", parent=subdistrict)
    grid = await places.create_place(db, kind=PlaceKind.GRID, name="东舍坊第一网格", parent=community)
    compound = await places.create_place(db, kind=PlaceKind.RESIDENTIAL_COMPOUND, name="东舍坊小区", parent=grid)
    cgj, zjj = departments["cgj"], departments["zjj"]
    b = Builder(db, settings)
    day = lambda n: DAY0 + timedelta(days=n)  # noqa: E731

    a = await b.submit(day(0), AppealChannel.SUGGESTION_BOX, "environment", compound.id)
    await b.handled(a, cgj, 2, 48)
    await b.evaluate(a, 49, Evaluation.SATISFIED)
    await b.act(a, 50, Action.RETURN_VISIT, method=VisitMethod.PHONE)
    await b.act(a, 51, Action.CLOSE)

    bb = await b.submit(day(1), AppealChannel.QR, "facilities", compound.id)
    await b.handled(bb, cgj, 14, 200)
    # B's evaluation is what the resident told staff at the return visit, not their own.
    await b.act(bb, 201, Action.RETURN_VISIT, method=VisitMethod.PHONE, evaluation=Evaluation.BASICALLY_SATISFIED)

    # 00:30 on 5 March in Jinan is still 4 March in UTC: the date filter must use local days.
    c = await b.submit(datetime(2025, 3, 5, 0, 30, tzinfo=SHANGHAI), AppealChannel.HOTLINE, "property")
    await b.handled(c, zjj, 1, 24)
    await b.evaluate(c, 25, Evaluation.UNSATISFIED)

    d = await b.submit(day(3), AppealChannel.EVENT, "elevator", compound.id)
    await b.handled(d, zjj, 5, 100)

    e = await b.submit(day(4), AppealChannel.VISIT, "neighbours")
    await b.act(e, 3, Action.REJECT, note="不属于街道职责")

    f = await b.submit(day(5), AppealChannel.OPEN311, "environment")
    await b.act(f, 20, Action.MERGE, target_reference=d.reference)

    g = await b.submit(day(6), AppealChannel.SUGGESTION_BOX, "parking")
    await b.handled(g, cgj, 10, None)

    h = await b.submit(day(7), AppealChannel.SUGGESTION_BOX, "talent")

    i = await b.submit(day(8), AppealChannel.QR, "facilities", grid.id)
    await b.act(i, 4, Action.TRANSFER, department_id=cgj.id)
    await b.act(i, 4, Action.MARK_COMPLEX, note="需要协调产权单位")
    await b.act(i, 5, Action.ACCEPT, Actor(principal=Role.DEPARTMENT, label=cgj.name, department_id=cgj.id))
    await b.act(i, 400, Action.RESOLVE, Actor(principal=Role.DEPARTMENT, label=cgj.name, department_id=cgj.id), note="已更换")
    await b.evaluate(i, 401, Evaluation.SATISFIED)

    j = await b.submit(day(40), AppealChannel.HOTLINE, "resident_other")
    await db.commit()
    cases = {"A": a, "B": bb, "C": c, "D": d, "E": e, "F": f, "G": g, "H": h, "I": i, "J": j}
    return Cases(cases, departments, service_now=j.received_at + timedelta(hours=1))


@pytest.fixture
async def cases(db: AsyncSession, settings: Settings) -> Cases:
    return await build_cases(db, settings)


async def stats_at(db: AsyncSession, cases: Cases, filters: StatsFilter | None = None) -> appeal_metrics.AppealStats:
    return await appeal_metrics.compute(db, filters, tz=SHANGHAI, clock=lambda: cases.service_now)


async def test_overall_rates_and_means_match_the_hand_computation(db: AsyncSession, cases: Cases) -> None:
    stats = await stats_at(db, cases)
    assert stats.total == 10
    # Answered in time: A C D E G I; due: the 8 answered + H (J is still inside its window).
    assert stats.response_rate == 6 / 9
    # Resolved: A B D I (C's resolution was undone by the unsatisfied evaluation); late: B.
    assert stats.on_time_rate == 3 / 4
    # Accepted: all but E (rejected) and F (merged).
    assert stats.resolution_rate == 4 / 8
    # Evaluated: A B C I; satisfied or basically satisfied: A B I.
    assert stats.satisfaction_rate == 3 / 4
    # Apart: residents' own (A C I; satisfied A I) and return visits' (B, basically satisfied).
    assert (stats.resident_satisfaction_rate, stats.resident_evaluated) == (2 / 3, 3)
    assert (stats.visit_satisfaction_rate, stats.visit_evaluated) == (1 / 1, 1)
    assert stats.mean_response_hours == pytest.approx((2 + 14 + 1 + 5 + 3 + 20 + 10 + 4) / 8, abs=0.01)
    assert stats.mean_resolution_hours == pytest.approx((48 + 200 + 100 + 400) / 4, abs=0.01)


async def test_counts_by_channel_category_and_status(db: AsyncSession, cases: Cases) -> None:
    stats = await stats_at(db, cases)
    assert stats.by_channel == {"suggestion_box": 3, "qr": 2, "hotline": 2, "event": 1, "visit": 1, "open311": 1}
    assert {k: v for k, v in stats.by_category.items() if v} == {
        "environment": 2, "facilities": 2, "property": 1, "elevator": 1, "neighbours": 1, "parking": 1,
        "talent": 1, "resident_other": 1,
    }
    assert set(stats.by_category) == set(BY_CODE)
    assert stats.by_status == {
        "received": 2, "transferred": 0, "in_progress": 2, "resolved": 1, "evaluated": 2, "closed": 1,
        "rejected": 1, "merged": 1,
    }


async def test_per_department_table(db: AsyncSession, cases: Cases) -> None:
    stats = await stats_at(db, cases)
    rows = {row.code: row for row in stats.departments}
    assert list(rows) == ["cgj", "fgw", "gxj", "rsj", "scjg", "zjj", None]
    cgj, zjj, none = rows["cgj"], rows["zjj"], rows[None]
    assert (cgj.total, cgj.response_rate, cgj.on_time_rate, cgj.resolution_rate, cgj.satisfaction_rate) == (4, 3 / 4, 2 / 3, 3 / 4, 3 / 3)
    assert cgj.mean_response_hours == pytest.approx((2 + 14 + 10 + 4) / 4, abs=0.01)
    assert cgj.mean_resolution_hours == pytest.approx((48 + 200 + 400) / 3, abs=0.01)
    assert (zjj.total, zjj.response_rate, zjj.on_time_rate, zjj.resolution_rate, zjj.satisfaction_rate) == (2, 2 / 2, 1 / 1, 1 / 2, 0 / 1)
    assert (zjj.mean_response_hours, zjj.mean_resolution_hours) == (pytest.approx(3, abs=0.01), pytest.approx(100, abs=0.01))
    # Not transferred: E F H J. Nothing resolved or evaluated: those rates have no denominator.
    assert (none.total, none.response_rate, none.on_time_rate, none.resolution_rate, none.satisfaction_rate) == (4, 1 / 3, None, 0 / 2, None)
    assert none.mean_response_hours == pytest.approx((3 + 20) / 2, abs=0.01)
    assert none.mean_resolution_hours is None
    idle = rows["fgw"]
    assert (idle.total, idle.response_rate, idle.on_time_rate, idle.resolution_rate, idle.satisfaction_rate) == (0, None, None, None, None)


async def test_date_range_uses_local_days(db: AsyncSession, cases: Cases) -> None:
    first_three = await stats_at(db, cases, StatsFilter(DAY0.date(), DAY0.date() + timedelta(days=2)))
    assert first_three.total == 3  # A B C
    assert (first_three.response_rate, first_three.on_time_rate) == (2 / 3, 1 / 2)
    assert (first_three.resolution_rate, first_three.satisfaction_rate) == (2 / 3, 2 / 3)
    assert first_three.mean_response_hours == pytest.approx((2 + 14 + 1) / 3, abs=0.01)
    only_c = await stats_at(db, cases, StatsFilter(DAY0.date() + timedelta(days=2), DAY0.date() + timedelta(days=2)))
    assert only_c.total == 1
    assert only_c.by_category["property"] == 1


async def test_department_filter_equals_its_row(db: AsyncSession, cases: Cases) -> None:
    cgj = cases.departments["cgj"]
    stats = await stats_at(db, cases, StatsFilter(department_id=cgj.id))
    assert (stats.total, stats.response_rate, stats.on_time_rate, stats.resolution_rate, stats.satisfaction_rate) == (
        4, 3 / 4, 2 / 3, 3 / 4, 3 / 3,
    )
    assert [row.code for row in stats.departments] == ["cgj"]


async def test_no_cases_gives_no_rates(db: AsyncSession) -> None:
    stats = await appeal_metrics.compute(db, tz=SHANGHAI)
    assert stats.total == 0
    assert (stats.response_rate, stats.on_time_rate, stats.resolution_rate, stats.satisfaction_rate) == (None,) * 4
    assert (stats.mean_response_hours, stats.mean_resolution_hours) == (None, None)


async def test_json_endpoint_returns_the_same_figures(client: AsyncTestClient, cases: Cases) -> None:
    """The API runs on today's clock: by now J is long past its response limit too."""
    response = await client.get("/api/stats/appeals")
    assert response.status_code == 200
    body = response.json()
    assert body["total"] == 10
    assert body["response_rate"] == 6 / 10
    assert (body["on_time_rate"], body["resolution_rate"], body["satisfaction_rate"]) == (3 / 4, 4 / 8, 3 / 4)
    assert body["mean_response_hours"] == pytest.approx(59 / 8, abs=0.01)
    assert body["mean_resolution_hours"] == pytest.approx(187, abs=0.01)
    assert body["by_channel"]["suggestion_box"] == 3
    assert body["by_status"]["merged"] == 1
    assert body["by_category"]["facilities"] == 2
    departments = {row["code"]: row for row in body["departments"]}
    assert departments["cgj"]["name"] == "区城管"
    assert (departments["cgj"]["response_rate"], departments["cgj"]["on_time_rate"]) == (3 / 4, 2 / 3)
    assert departments[None]["response_rate"] == 1 / 4
    assert departments[None]["on_time_rate"] is None
    assert datetime.fromisoformat(body["generated_at"]).tzinfo is not None
    assert set(body) == {
        "total", "response_rate", "on_time_rate", "resolution_rate", "satisfaction_rate", "resident_satisfaction_rate",
        "visit_satisfaction_rate", "mean_response_hours", "mean_resolution_hours", "by_channel", "by_category", "by_status", "departments", "generated_at",
    }


async def test_json_endpoint_filters(client: AsyncTestClient, cases: Cases) -> None:
    response = await client.get("/api/stats/appeals", params={"from": "2025-03-03", "to": "2025-03-05"})
    assert response.status_code == 200
    assert response.json()["total"] == 3
    assert response.json()["satisfaction_rate"] == 2 / 3
    response = await client.get("/api/stats/appeals", params={"department": "zjj"})
    assert (response.json()["total"], response.json()["resolution_rate"]) == (2, 1 / 2)


@pytest.mark.parametrize(
    ("params", "field"),
    [({"from": "2025-13-01"}, "from"), ({"to": "yesterday"}, "to"), ({"from": "2025-03-05", "to": "2025-03-01"}, "to"),
     ({"department": "nope"}, "department")],
)
async def test_json_endpoint_refuses_bad_filters(client: AsyncTestClient, params: dict[str, str], field: str) -> None:
    response = await client.get("/api/stats/appeals", params=params)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/json")
    assert field in response.json()["errors"]


async def test_dashboard_shows_the_rates_to_supervisors(
    client: AsyncTestClient, web: Web, people: dict[Role, str], cases: Cases
) -> None:
    await client.get("/lang/en")
    assert (await web.login(people[Role.SUPERVISOR], TEST_PASSWORD)).status_code == 303
    page = await client.get("/stats/appeals")
    assert page.status_code == 200
    assert "Response rate" in page.text
    for shown in ["60.0%", "75.0%", "50.0%", "7.4", "187.0", "区城管", "区住建", "Not transferred to a department"]:
        assert shown in page.text, shown
    filtered = await client.get("/stats/appeals", params={"from": "2025-03-03", "to": "2025-03-05"})
    assert "66.7%" in filtered.text
    assert 'value="2025-03-03"' in filtered.text


async def test_dashboard_keeps_a_bad_date_and_says_why(client: AsyncTestClient, web: Web, people: dict[Role, str]) -> None:
    await client.get("/lang/en")
    await web.login(people[Role.STAFF], TEST_PASSWORD)
    page = await client.get("/stats/appeals", params={"from": "3 March", "to": "2025-03-05"})
    assert page.status_code == 400
    assert "Please enter a date as YYYY-MM-DD." in page.text
    assert 'value="3 March"' in page.text
    assert 'value="2025-03-05"' in page.text


async def test_public_summary_lists_resolved_cases_by_community_only(client: AsyncTestClient, cases: Cases) -> None:
    await client.get("/lang/en")
    page = await client.get("/summary/appeals")
    assert page.status_code == 200
    # A, B, D and I are resolved; the latest resolution (I, a grid-level place) comes first.
    rows = page.text.split("<tbody>")[1].split("</tbody>")[0].split("<tr>")[1:]
    assert len(rows) == 4
    assert "Public facility repairs" in rows[0] and "东舍坊社区" in rows[0] and "Satisfied" in rows[0]
    assert "2025-03-11" in rows[0] and "2025-03-28" in rows[0]  # +400 h: 28 March, 01:00
    assert "东舍坊小区" not in page.text
    assert "东舍坊第一网格" not in page.text
    for appeal in cases.by_name.values():
        assert appeal.reference not in page.text
        assert appeal.tracking_code not in page.text
    assert "60.0%" in page.text
