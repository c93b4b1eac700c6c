"""The appeals ledger (落实台账): filters, pages, who sees which cases and which personal data, the CSV export,
staff intake, and the appeal parts of the role homes."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession

from server.models import AppealChannel, AppealStatus, PlaceKind, Role, SubmitterKind
from server.services import appeal_ledger as ledger_service, places
from server.services.appeal_workflow import Action
from server.services.appeals import ActionInput
from server.settings import Settings
from tests.helpers import Web
from tests.integration.staff_cases import LOCATION, NAME, PHONE, Staffing, hours_ago, in_session, make_staffing, sign_in

REFERENCE_LINK = re.compile(r'href="/appeals/(\d{4}-\d{5})"')


@pytest.fixture
async def staffing(settings: Settings, people: dict[Role, str]) -> Staffing:
    return await make_staffing(settings)


async def make_places(settings: Settings) -> dict[str, Any]:
    """Two communities, each with a grid and one place: 东区 > 东一网格 > 东园小区, 西区 > 西一网格 > 西楼."""

    async def work(session: AsyncSession) -> dict[str, Any]:
        root = await places.create_place(session, kind=PlaceKind.SUBDISTRICT, name="测试街道", parent=None)
        made: dict[str, Any] = {}
        for community, grid, leaf, kind in [("东区", "东一网格", "东园小区", PlaceKind.RESIDENTIAL_COMPOUND), ("西区", "西一网格", "西楼", PlaceKind.BUSINESS_BUILDING)]:
            c = await places.create_place(session, kind=PlaceKind.COMMUNITY, name=community, parent=root)
            g = await places.create_place(session, kind=PlaceKind.GRID, name=grid, parent=c)
            p = await places.create_place(session, kind=kind, name=leaf, parent=g)
            made.update({community: c.id, leaf: p.id})
        return made

    return await in_session(settings, work)


async def listed(client: AsyncTestClient, query: str = "") -> list[str]:
    page = await client.get(f"/appeals?{query}")
    assert page.status_code == 200, page.text
    return REFERENCE_LINK.findall(page.text)


async def test_filters_narrow_the_ledger(client: AsyncTestClient, web: Web, staffing: Staffing, settings: Settings) -> None:
    where = await make_places(settings)
    east = await staffing.submit(place_id=where["东园小区"], at=hours_ago(1))
    west = await staffing.submit(
        place_id=where["西楼"], submitter_kind=SubmitterKind.ENTERPRISE, category="parking",
        channel=AppealChannel.HOTLINE, at=hours_ago(2),
    )
    overdue = await staffing.submit(at=hours_ago(13))  # nobody responded within 12 hours
    due_soon = await staffing.submit(at=hours_ago(10))  # 2 of 12 hours left
    old = await staffing.submit(at=datetime.now(UTC) - timedelta(days=5))
    transferred = await staffing.transferred("cgj", at=hours_ago(3))
    rejected = await staffing.submit(at=hours_ago(4))
    await staffing.act(rejected, Action.REJECT, "staff", ActionInput(note="重复提交"))
    await sign_in(client, web, "staff")

    assert set(await listed(client)) == {east, west, overdue, due_soon, old, transferred, rejected}
    assert set(await listed(client, "status=open")) == {east, west, overdue, due_soon, old, transferred}
    assert await listed(client, "status=rejected") == [rejected]
    assert await listed(client, "category=parking") == [west]
    assert await listed(client, "channel=hotline") == [west]
    assert await listed(client, f"department={staffing.departments['cgj']}") == [transferred]
    assert await listed(client, f"place={where['东区']}") == [east]  # a community includes the places under it
    assert set(await listed(client, "deadline=overdue")) == {overdue, old}
    assert await listed(client, "deadline=due_soon") == [due_soon]
    five_days_ago = (datetime.now(UTC) - timedelta(days=5)).astimezone(staffing.limits.tz).date()
    assert await listed(client, f"from={five_days_ago}&to={five_days_ago}") == [old]
    assert old not in await listed(client, f"from={five_days_ago + timedelta(days=1)}")
    assert set(await listed(client, "status=open&deadline=overdue&channel=suggestion_box")) == {overdue, old}


async def test_ledger_shows_time_left_and_overdue(client: AsyncTestClient, web: Web, staffing: Staffing) -> None:
    await staffing.submit(at=hours_ago(13))
    await sign_in(client, web, "staff")
    page = await client.get("/appeals")
    assert "Overdue" in page.text and re.search(r"1 h \d+ min overdue", page.text) and "(Response)" in page.text
    await staffing.submit(at=hours_ago(1))
    page = await client.get("/appeals")
    assert "On track" in page.text and re.search(r"1[01] h \d+ min left", page.text)


async def test_ledger_pages_by_fifty(client: AsyncTestClient, web: Web, staffing: Staffing) -> None:
    references = await staffing.submit_many(51)
    await sign_in(client, web, "staff")
    first = await listed(client)
    second = await listed(client, "page=2")
    assert len(first) == 50 and len(second) == 1
    assert set(first) | set(second) == set(references)
    page = await client.get("/appeals?channel=hotline")
    assert 'href="/appeals?channel=hotline&amp;page=2"' in page.text


async def test_htmx_gets_only_the_results(client: AsyncTestClient, web: Web, staffing: Staffing) -> None:
    reference = await staffing.submit()
    await sign_in(client, web, "staff")
    response = await client.get("/appeals?status=open", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response.text.lstrip().startswith('<section id="ledger-results"') and reference in response.text
    restore = await client.get("/appeals?status=open", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert "<html" in restore.text


async def test_departments_see_their_cases_and_their_summons_only(client: AsyncTestClient, web: Web, staffing: Staffing) -> None:
    theirs = await staffing.transferred("cgj")
    summoned = await staffing.transferred("zjj")
    await staffing.act(
        summoned, Action.WHISTLE, "staff",
        ActionInput(department_ids=[staffing.departments["cgj"]], report_by=datetime.now(UTC) + timedelta(days=1)),
    )
    other = await staffing.transferred("zjj")
    unassigned = await staffing.submit()
    await sign_in(client, web, "dept-cgj")
    assert set(await listed(client)) == {theirs, summoned}
    assert (await client.get(f"/appeals/{other}")).status_code == 403
    assert (await client.get(f"/appeals/{unassigned}")).status_code == 403
    assert (await client.get("/appeals/export.csv")).status_code == 403
    page = await client.get(f"/appeals/{theirs}")
    assert NAME in page.text and PHONE in page.text and LOCATION in page.text  # they must contact the submitter


async def test_supervisors_read_everything_change_nothing_and_see_no_phone(client: AsyncTestClient, web: Web, staffing: Staffing) -> None:
    reference = await staffing.transferred("cgj")
    await sign_in(client, web, "supervisor")
    assert await listed(client) == [reference]
    page = await client.get(f"/appeals/{reference}")
    assert NAME in page.text and LOCATION in page.text
    assert PHONE not in page.text
    forms = re.findall(rf'action="/appeals/{reference}/(\w+)"', page.text)
    assert forms == ["comment"]


async def test_staff_and_assigned_grid_workers_see_the_phone(client: AsyncTestClient, web: Web, staffing: Staffing) -> None:
    reference = await staffing.submit()
    await sign_in(client, web, "staff")
    assert PHONE in (await client.get(f"/appeals/{reference}")).text
    await web.logout()

    await sign_in(client, web, "grid-worker")
    assert (await client.get(f"/appeals/{reference}")).status_code == 403  # not theirs yet
    assert (await client.get("/appeals")).status_code == 403
    grid_id = await in_session(staffing.settings, lambda s: _user_id(s, "grid-worker"))
    await staffing.act(reference, Action.TRANSFER, "staff", ActionInput(assignee_id=grid_id))
    page = await client.get(f"/appeals/{reference}")
    assert page.status_code == 200 and PHONE in page.text
    assert re.findall(rf'action="/appeals/{reference}/(\w+)"', page.text) == ["accept", "comment"]


async def _user_id(session: AsyncSession, username: str) -> Any:
    from server.services import accounts

    user = await accounts.get_user_by_username(session, username)
    assert user is not None
    return user.id


def read_csv(body: bytes) -> list[list[str]]:
    assert body.startswith(b"\xef\xbb\xbf"), "no UTF-8 BOM: Excel would garble the Chinese"
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


async def test_csv_export_for_staff_has_bom_chinese_headers_and_every_case(client: AsyncTestClient, web: Web, staffing: Staffing) -> None:
    first = await staffing.transferred("cgj")
    second = await staffing.submit(category="elevator", at=hours_ago(13))
    await sign_in(client, web, "staff")
    response = await client.get("/appeals/export.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = read_csv(response.content)
    header = rows[0]
    assert header[:3] == ["编号", "受理时间", "渠道"] and "联系电话" in header and "诉求人" in header and "责任部门" in header
    by_reference = {row[0]: dict(zip(header, row, strict=True)) for row in rows[1:]}
    assert set(by_reference) == {first, second}
    assert by_reference[first]["责任部门"] == "区城管"
    assert by_reference[first]["联系电话"] == PHONE and by_reference[first]["诉求人"] == NAME
    assert by_reference[first]["详细位置"] == LOCATION
    received = (await staffing.case(second)).received_at.astimezone(staffing.limits.tz).strftime("%Y-%m-%d %H:%M")
    assert by_reference[second]["受理时间"] == received

    filtered = read_csv((await client.get(f"/appeals/export.csv?department={staffing.departments['cgj']}")).content)
    assert [row[0] for row in filtered[1:]] == [first]


async def test_csv_for_supervisors_leaves_out_the_phone(client: AsyncTestClient, web: Web, staffing: Staffing) -> None:
    reference = await staffing.submit()
    await sign_in(client, web, "supervisor")
    response = await client.get("/appeals/export.csv")
    assert response.status_code == 200
    rows = read_csv(response.content)
    assert "联系电话" not in rows[0] and rows[1][0] == reference
    assert PHONE not in response.content.decode("utf-8-sig")


# --- staff intake -------------------------------------------------------------------------------------------


async def test_staff_register_a_hotline_appeal(client: AsyncTestClient, web: Web, staffing: Staffing, settings: Settings) -> None:
    where = await make_places(settings)
    await sign_in(client, web, "staff")
    form = {
        "channel": "hotline", "submitter_kind": "resident", "category": "property", "description": "物业费收了但电梯一直没修",
        "place": str(where["东园小区"]), "submitter_name": "王先生", "submitter_phone": "13900000002", "location_detail": "5号楼",
    }
    response = await web.post_form("/appeals/new", form)
    assert response.status_code == 303, response.text
    reference = response.headers["location"].rsplit("/", 1)[1]
    case = await staffing.case(reference)
    assert (case.channel, case.status, case.category, case.submitter_phone) == (AppealChannel.HOTLINE, AppealStatus.RECEIVED, "property", "13900000002")
    assert case.place_id == where["东园小区"]


async def test_intake_errors_keep_what_was_typed(client: AsyncTestClient, web: Web, staffing: Staffing) -> None:
    await sign_in(client, web, "staff")
    form = {
        "channel": "event", "submitter_kind": "enterprise", "category": "elevator", "description": "短",
        "place": "", "submitter_name": "孙经理", "submitter_phone": "abc", "location_detail": "",
    }
    response = await web.post_form("/appeals/new", form)
    assert response.status_code == 400
    for message in ["Please choose a category.", "Please describe the problem in at least 5 characters.",
                    "Please enter a valid phone number, or leave it empty."]:
        assert message in response.text
    assert 'value="孙经理"' in response.text and 'value="abc"' in response.text and ">短</textarea>" in response.text
    assert 'value="event" checked' in response.text
    assert await listed(client) == []


async def test_grid_workers_register_appeals_where_it_works_offline(client: AsyncTestClient, web: Web, staffing: Staffing, db: AsyncSession) -> None:
    """A grid worker has one way to record an appeal, the field app's (it works offline); a form posted
    from an old page still works, at places of the worker's grid only (the sync's rule, the same message)."""
    await sign_in(client, web, "grid-worker")
    page = await client.get("/appeals/new")
    assert (page.status_code, page.headers["location"]) == (303, "/field/appeal")
    form = {"channel": "visit", "submitter_kind": "resident", "category": "elderly_care", "description": "独居老人希望有人定期上门看看"}
    response = await web.post_form("/appeals/new", form, token_from="/field")
    assert response.status_code == 303
    assert (await client.get(response.headers["location"])).status_code == 200
    sub = await places.create_place(db, kind=PlaceKind.SUBDISTRICT, name="解放路街道", parent=None)
    community = await places.create_place(db, kind=PlaceKind.COMMUNITY, name="文华园社区", parent=sub)
    grid = await places.create_place(db, kind=PlaceKind.GRID, name="文华园第一网格", parent=community)
    elsewhere = await places.create_place(db, kind=PlaceKind.RESIDENTIAL_COMPOUND, name="文华园小区", parent=grid)
    await db.commit()  # the test worker has no grid: every place is outside it
    refused = await web.post_form("/appeals/new", {**form, "place": str(elsewhere.id)}, token_from="/field")
    assert refused.status_code == 400
    assert "This place is not in your grid." in refused.text or "这个地点不在您的网格内" in refused.text


# --- role homes ---------------------------------------------------------------------------------------------


async def test_staff_home_counts_open_due_soon_and_overdue(client: AsyncTestClient, web: Web, staffing: Staffing) -> None:
    await staffing.submit(at=hours_ago(13))
    await staffing.submit(at=hours_ago(10))
    await staffing.submit(at=hours_ago(1))
    await sign_in(client, web, "staff")
    page = (await client.get("/staff")).text
    assert re.search(r'href="/appeals\?status=open"><span class="stat-value">3</span>', page)
    assert re.search(r'href="/appeals\?deadline=due_soon"><span class="stat-value">1</span>', page)
    assert re.search(r'href="/appeals\?deadline=overdue"><span class="stat-value">1</span>', page)


async def test_department_home_lists_summons_and_its_cases(client: AsyncTestClient, web: Web, staffing: Staffing) -> None:
    assigned = await staffing.transferred("cgj")
    summoned = await staffing.transferred("zjj")
    await staffing.act(
        summoned, Action.WHISTLE, "staff",
        ActionInput(department_ids=[staffing.departments["cgj"]], report_by=datetime.now(UTC) + timedelta(days=1)),
    )
    await sign_in(client, web, "dept-cgj")
    page = (await client.get("/department")).text
    waiting = page.split('id="summons-waiting"')[1].split("</section>")[0]
    cases = page.split('id="department-cases"')[1].split("</section>")[0]
    assert REFERENCE_LINK.findall(waiting) == [summoned]
    assert REFERENCE_LINK.findall(cases) == [assigned]
    assert "Inbox" in page and re.search(r'<span class="badge nav-count">2<', page)  # transferred + summoned
    lead = page.split('class="lead"')[1].split("</p>")[0]
    assert "区城管" in lead  # a department user sees their department, not an empty "my area"
    assert "No area is assigned" not in page


async def test_grid_worker_home_lists_the_cases_assigned_to_them(client: AsyncTestClient, web: Web, staffing: Staffing) -> None:
    reference = await staffing.submit()
    await staffing.submit()
    grid_id = await in_session(staffing.settings, lambda s: _user_id(s, "grid-worker"))
    await staffing.act(reference, Action.TRANSFER, "staff", ActionInput(assignee_id=grid_id))
    await sign_in(client, web, "grid-worker")
    page = (await client.get("/grid")).text
    mine = page.split('id="my-cases"')[1].split("</section>")[0]
    assert REFERENCE_LINK.findall(mine) == [reference]
    assert "left" in mine


async def test_a_department_home_lists_the_most_urgent_cases_and_counts_the_rest(
    client: AsyncTestClient, web: Web, staffing: Staffing
) -> None:
    """However many cases pile up, a home lists HOME_CASES of them, nearest deadline first, and says how
    many more the ledger holds (issue 11: a home page must not grow with the data)."""
    references = await staffing.submit_many(ledger_service.HOME_CASES + 3)
    oldest = await staffing.submit(at=hours_ago(11))  # 1 hour to its response limit: the most urgent
    for reference in [*references, oldest]:
        await staffing.act(reference, Action.TRANSFER, "staff", ActionInput(department_id=staffing.departments["cgj"]))
    await sign_in(client, web, "dept-cgj")
    page = (await client.get("/department")).text
    cases = page.split('id="department-cases"')[1].split("</section>")[0]
    listed_here = REFERENCE_LINK.findall(cases)
    assert len(listed_here) == ledger_service.HOME_CASES
    assert listed_here[0] == oldest
    assert "4 more open cases in the ledger" in cases
    assert 'href="/appeals?status=open"' in cases


async def test_staff_search_by_case_number_phone_or_words(client: AsyncTestClient, web: Web, staffing: Staffing) -> None:
    lamp = await staffing.submit(at=hours_ago(3))
    rubbish = await staffing.submit(at=hours_ago(2), description="垃圾桶满了三天没人清理，气味很大", submitter_phone="139 1234 5678")
    await sign_in(client, web, "staff")
    assert await listed(client, f"q={lamp}") == [lamp]
    assert await listed(client, "q=垃圾桶 气味") == [rubbish]  # every word must appear
    assert await listed(client, "q=13912345678") == [rubbish]  # spaces in the stored phone do not matter
    assert await listed(client, "q=100%25") == []  # a wildcard is a character, not a wildcard
    page = (await client.get("/appeals?q=垃圾桶")).text
    assert "垃圾桶满了三天没人清理" in page  # the first line of the description, on each card
    assert 'value="垃圾桶"' in page  # the search box keeps what was typed


async def test_supervisors_cannot_find_cases_by_phone(client: AsyncTestClient, web: Web, staffing: Staffing) -> None:
    """Those who may not see phone numbers cannot probe for them either."""
    await staffing.submit(at=hours_ago(1), submitter_phone="139 1234 5678")
    await sign_in(client, web, "supervisor")
    assert await listed(client, "q=13912345678") == []
