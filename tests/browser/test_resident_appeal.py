"""A resident on a phone reports a problem through a compound's QR link, follows it, and evaluates the result."""

from __future__ import annotations

import asyncio
import io
import re

from PIL import Image
from playwright.sync_api import Page, expect
from sqlalchemy import select

from server.db import make_alchemy_config, session_scope
from server.models import Appeal, Place, User
from server.services import appeals
from server.services.appeal_workflow import Action
from server.services.appeals import ActionInput, Actor
from server.services.deadlines import TimeLimits
from server.settings import Settings
from tests.browser.axe import assert_accessible
from tests.browser.conftest import LiveServer
from tests.conftest import run_isolated

RESOLUTION = "物业已清理楼道杂物，并张贴了禁止堆放的提示。"


async def _place_code(settings: Settings, name: str) -> str:
    config = make_alchemy_config(settings)
    try:
        async with session_scope(config) as session:
            return (await session.scalars(select(Place.code).where(Place.name == name))).one()
    finally:
        await config.get_engine().dispose()


async def _resolve_as_staff(settings: Settings, tracking_code: str) -> None:
    """What 李主任 does on the staff pages, done here through the same services."""
    config = make_alchemy_config(settings)
    limits = TimeLimits.from_settings(settings)
    try:
        async with session_scope(config) as session:
            appeal = (await session.scalars(select(Appeal).where(Appeal.tracking_code == tracking_code))).one()
            staff = Actor.for_user((await session.scalars(select(User).where(User.username == "staff"))).one())
            departments = await appeals.seed_departments(session)
            await appeals.act(session, appeal, Action.TRANSFER, staff, ActionInput(department_id=departments["cgj"].id), limits=limits)
            await appeals.act(session, appeal, Action.ACCEPT, staff, limits=limits)
            await appeals.act(session, appeal, Action.RESOLVE, staff, ActionInput(note=RESOLUTION), limits=limits)
    finally:
        await config.get_engine().dispose()


def phone_photo() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (1200, 1600), (90, 120, 60)).save(out, format="JPEG")
    return out.getvalue()


def send_suggestion(page: Page, description: str, photo_name: str, photo: bytes) -> None:
    """What a resident does on the suggestion box: a category, the problem, one photo, Send."""
    page.get_by_label("Category").select_option(label="Environment and sanitation")
    page.get_by_label("What is the problem or suggestion?").fill(description)
    page.get_by_label("Photos (optional, up to 3)").set_input_files([{"name": photo_name, "mimeType": "image/jpeg", "buffer": photo}])
    page.get_by_role("button", name="Send").click()


def test_a_resident_reports_follows_and_evaluates(page: Page, live_server: LiveServer) -> None:
    code = run_isolated(asyncio.run, _place_code(live_server.settings, "东舍坊小区"))
    # Assert on the English texts, so the test holds before and after the Chinese catalog is merged.
    page.goto(f"/lang/en?next=/suggest/{code}")
    expect(page.get_by_role("heading", name="Suggestion box")).to_be_visible()
    expect(page.get_by_text("Place: 东舍坊小区")).to_be_visible()
    expect(page.get_by_label("Resident")).to_be_checked()  # a compound's QR code means a resident
    assert_accessible(page)

    send_suggestion(page, "3号楼楼道堆满杂物，老人上下楼很危险。", "corridor.jpg", phone_photo())

    expect(page).to_have_url(re.compile(r"/track/[A-Za-z0-9_-]{20,}\?new=1$"))
    expect(page.get_by_role("heading", name="Your case has been received")).to_be_visible()
    link = page.locator("#tracking-link")
    tracking_url = link.get_attribute("href") or ""
    assert tracking_url.startswith(f"{live_server.url}/track/")
    expect(link).to_have_text(tracking_url)
    expect(page.get_by_role("img", name="Photo 1 you sent")).to_be_visible()
    expect(page.get_by_text("Once your case is resolved, you can evaluate it here.")).to_be_visible()
    reference, query_code = page.locator("#case-number").inner_text(), page.locator("#query-code").inner_text()
    assert re.fullmatch(r"\d{4}-\d{5}", reference) and re.fullmatch(r"\d{6}", query_code)
    assert_accessible(page)

    # Days later, from the public home, with only what was written down.
    page.goto("/")
    assert_accessible(page)
    page.get_by_role("link", name="Follow your case").first.click()
    expect(page).to_have_url(re.compile(r"/track$"))
    page.get_by_label("Case number").fill(reference)
    page.get_by_label("Query code").fill("000000" if query_code != "000000" else "111111")
    page.get_by_role("button", name="Show my case").click()
    expect(page.get_by_role("alert")).to_contain_text("No case matches this number and query code.")
    expect(page.get_by_label("Case number")).to_have_value(reference)
    assert_accessible(page)
    page.get_by_label("Query code").fill(query_code)
    page.get_by_role("button", name="Show my case").click()
    expect(page).to_have_url(tracking_url)

    run_isolated(asyncio.run, _resolve_as_staff(live_server.settings, tracking_url.rsplit("/", 1)[1]))

    page.goto(tracking_url)
    expect(page.locator("#resolution-note")).to_have_text(RESOLUTION)
    expect(page.locator("#case-status")).to_have_text("Resolved")
    expect(page.get_by_text("区城管")).to_be_visible()
    assert_accessible(page)

    page.get_by_label("Satisfied", exact=True).check()
    page.get_by_label("Comment (optional)").fill("打扫得很干净，谢谢！")
    page.get_by_role("button", name="Send evaluation").click()
    expect(page.get_by_text("Thank you. Your evaluation: Satisfied")).to_be_visible()
    expect(page.locator("#case-status")).to_have_text("Evaluated")
    expect(page.get_by_role("button", name="Send evaluation")).to_have_count(0)  # folded away
    assert_accessible(page)

    # Until the case is closed the resident may change their mind; theirs is the evaluation that counts.
    page.get_by_text("Change my evaluation").click()
    page.get_by_label("Basically satisfied").check()
    page.get_by_role("button", name="Send evaluation").click()
    expect(page.get_by_text("Thank you. Your evaluation: Basically satisfied")).to_be_visible()
    assert_accessible(page)


def camera_photo() -> bytes:
    """A phone camera's photo: 12 megapixels of detail, over the server's 5 MB limit."""
    out = io.BytesIO()
    Image.merge("RGB", [Image.effect_noise((4000, 3000), 90 + 10 * i) for i in range(3)]).save(out, format="JPEG", quality=95)
    data = out.getvalue()
    assert len(data) > 5 * 1024 * 1024
    return data


def test_a_camera_photo_is_shrunk_on_the_phone_and_a_refusal_keeps_the_text(page: Page, live_server: LiveServer) -> None:
    """An ordinary 8 MB camera photo goes through (shrunk on the phone, as the field app does); a file
    the phone cannot shrink and the server cannot take (413) costs the resident nothing they typed."""
    page.goto("/lang/en?next=/suggest")
    send_suggestion(page, "小区门口的垃圾桶满了，三天没人清理。", "IMG_2001.jpg", camera_photo())
    expect(page).to_have_url(re.compile(r"/track/[A-Za-z0-9_-]{20,}\?new=1$"))
    expect(page.get_by_role("img", name="Photo 1 you sent")).to_be_visible()

    page.goto("/suggest")
    send_suggestion(page, "楼下的路灯坏了两个星期，晚上很黑。", "scan.jpg", b"\xff\xd8" + b"\x00" * (17 * 1024 * 1024))
    expect(page.get_by_role("heading", name="The photos are too large")).to_be_visible()
    assert_accessible(page)
    page.get_by_role("link", name="Back to the suggestion box").click()
    expect(page.get_by_label("What is the problem or suggestion?")).to_have_value("楼下的路灯坏了两个星期，晚上很黑。")
