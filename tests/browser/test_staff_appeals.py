"""Staff transfer a case and blow the whistle; the department sees the summons, reports in, accepts and resolves;
the staff case page shows who reported and who is late. On a phone-sized Chromium, in English, axe on every page."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

from playwright.sync_api import Page, expect
from sqlalchemy import update

from server.db import make_alchemy_config, session_scope
from server.models import AppealChannel, Department, SubmitterKind, Summons
from server.services import appeals
from server.services.appeals import Actor, AppealInput
from server.services.deadlines import TimeLimits
from server.services.demo import DEMO_PASSWORD
from server.settings import Settings
from tests.browser.axe import assert_accessible
from tests.browser.conftest import LiveServer
from tests.conftest import run_isolated

DESCRIPTION = "解放路沿街商铺门口的井盖松动，夜里有电动车摔倒"


async def _submit(settings: Settings) -> str:
    config = make_alchemy_config(settings)
    try:
        async with session_scope(config) as session:
            appeal = await appeals.submit(
                session,
                AppealInput(
                    channel=AppealChannel.SUGGESTION_BOX, submitter_kind=SubmitterKind.RESIDENT, category="facilities",
                    description=DESCRIPTION, submitter_name="钱先生", submitter_phone="13700000003",
                ),
                actor=Actor.submitter(), limits=TimeLimits.from_settings(settings), uploads_dir=settings.uploads_dir,
            )
            return appeal.reference
    finally:
        await config.get_engine().dispose()


async def _report_in_deadline_passes(settings: Settings, reference: str, department: str) -> None:
    """Time passes: the department's report-in deadline is now behind us (the live server keeps the real clock)."""
    config = make_alchemy_config(settings)
    try:
        async with session_scope(config) as session:
            appeal = await appeals.get_by_reference(session, reference)
            assert appeal is not None
            dept_id = (await session.execute(Department.__table__.select().where(Department.name == department))).one().id
            await session.execute(
                update(Summons).where(Summons.appeal_id == appeal.id, Summons.department_id == dept_id)
                .values(report_by=datetime.now(UTC) - timedelta(hours=1))
            )
    finally:
        await config.get_engine().dispose()


async def _tracking_code(settings: Settings, reference: str) -> str:
    config = make_alchemy_config(settings)
    try:
        async with session_scope(config) as session:
            appeal = await appeals.get_by_reference(session, reference)
            assert appeal is not None
            return appeal.tracking_code
    finally:
        await config.get_engine().dispose()


def sign_in(page: Page, username: str) -> None:
    page.goto("/lang/en?next=/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Hello")


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You have signed out.")).to_be_visible()


def open_action(page: Page, action: str) -> None:
    page.locator(f"#action-{action} > summary").click()


def test_staff_whistle_and_the_department_reports_in_and_resolves(page: Page, live_server: LiveServer) -> None:
    reference = run_isolated(asyncio.run, _submit(live_server.settings))

    # 李主任 (staff) finds the case in the ledger and transfers it to 区城管.
    sign_in(page, "staff")
    assert_accessible(page)
    page.get_by_role("navigation", name="Main menu").get_by_role("link", name="Appeals ledger").click()
    expect(page.get_by_role("heading", name="Appeals ledger")).to_be_visible()
    assert_accessible(page)
    page.get_by_role("link", name=reference).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(reference)
    expect(page.get_by_text("13700000003")).to_be_visible()
    assert_accessible(page)

    open_action(page, "transfer")
    transfer = page.locator("#action-transfer")
    transfer.get_by_label("To a department").select_option(label="区城管")
    # Every note says who will read it; internal is the default, a reply to the resident a choice.
    transfer.get_by_label("Note (optional)").fill("钱先生家有卧床老人，上门前先电话联系")
    expect(transfer.get_by_label("Internal only (staff and departments)")).to_be_checked()
    transfer.get_by_role("button", name="Transfer").click()
    expect(page.get_by_role("status").filter(has_text="Transferred to 区城管.")).to_be_visible()  # what just happened
    expect(page.get_by_text("To department: 区城管")).to_be_visible()
    expect(page.get_by_text("Internal note")).to_be_visible()
    assert_accessible(page)
    tracking = run_isolated(asyncio.run, _tracking_code(live_server.settings, reference))
    page.goto(f"/track/{tracking}")
    expect(page.get_by_text("Transfer", exact=True)).to_be_visible()
    expect(page.get_by_text("钱先生家有卧床老人")).to_have_count(0)  # never on the resident's page
    page.goto(f"/appeals/{reference}")

    # The whistle: 区住建 and 区城管 must report in by tomorrow.
    open_action(page, "whistle")
    whistle = page.locator("#action-whistle")
    whistle.get_by_label("区住建").check()
    whistle.get_by_label("区城管").check()
    whistle.get_by_role("button", name="Blow the whistle").click()
    summons = page.locator("#summons").locator("xpath=..")
    expect(summons.get_by_role("row")).to_have_count(3)
    expect(summons.get_by_text("Awaiting report-in")).to_have_count(2)
    assert_accessible(page)
    sign_out(page)

    # 赵科长 (区城管) sees the summons on the home page and in the inbox.
    sign_in(page, "dept")
    waiting = page.locator("section", has=page.locator("#summons-waiting"))
    expect(waiting.get_by_role("link", name=reference)).to_be_visible()
    assert_accessible(page)
    page.get_by_role("navigation", name="Main menu").get_by_role("link", name=re.compile(r"^Inbox")).click()
    expect(page.get_by_role("link", name=f"Your department is summoned for case {reference}")).to_be_visible()
    expect(page.get_by_role("link", name=f"Case {reference} was transferred to you")).to_be_visible()
    assert_accessible(page)
    page.get_by_role("link", name=f"Your department is summoned for case {reference}").click()

    open_action(page, "report_in")
    page.get_by_label("What your department will do").fill("我局今天下午派人到现场更换井盖")
    page.locator("#action-report_in").get_by_role("button", name="Report in").click()
    expect(page.locator("#summons").locator("xpath=..").get_by_text("Reported in", exact=True)).to_be_visible()
    open_action(page, "accept")
    page.locator("#action-accept").get_by_role("button", name="Start handling").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("In progress")
    open_action(page, "resolve")
    page.get_by_label("How the problem was resolved").fill("已更换井盖并加固，现场已清理")
    page.locator("#action-resolve").get_by_role("button", name="Resolve").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Resolved")
    expect(page.get_by_text("已更换井盖并加固，现场已清理").first).to_be_visible()
    assert_accessible(page)
    sign_out(page)

    # The report-in deadline passes; the staff case page shows who reported and who is late.
    run_isolated(asyncio.run, _report_in_deadline_passes(live_server.settings, reference, "区住建"))
    sign_in(page, "staff")
    page.goto(f"/appeals/{reference}")
    table = page.locator("#summons").locator("xpath=..")
    reported = table.get_by_role("row").filter(has_text="区城管")
    expect(reported).to_contain_text("Reported in")
    expect(reported).to_contain_text("赵科长（区城管）")
    expect(reported).to_contain_text("我局今天下午派人到现场更换井盖")
    expect(table.get_by_role("row").filter(has_text="区住建")).to_contain_text("Late, not reported")
    assert_accessible(page)
