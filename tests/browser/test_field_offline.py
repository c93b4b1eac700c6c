"""The grid worker's field app offline, in a phone-sized Chromium (docs/field.md, docs/sync.md).

1. Online login, then no network for the page and the service worker: a visit with three appeals and
   a photo is recorded, survives a reload and a browser restart on the same profile, and syncs exactly
   once when the network is back; staff's ledger shows the three appeals once.
2. The server dies after committing a push but before answering; the retry after the restart is
   answered `duplicate` and creates nothing twice.
3. A write the server refuses shows its reason on the form and on the outbox page; the worker corrects
   it there, resends, and it syncs.
4. Two workers edit the same case offline; after both sync, each sees the conflict.

Texts are not matched (the UI language is zh-CN and catalogs are merged separately): the tests read
the states the page exposes (data-state-name, alert classes) and check the database.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from PIL import Image
from playwright.sync_api import BrowserContext, Page, Playwright, Route, expect
from sqlalchemy import func, select, update

from server.models import (
    Appeal,
    AppealChannel,
    AppealPhoto,
    Place,
    ReturnVisit,
    Role,
    SubmitterKind,
    SyncConflict,
    SyncMutation,
    User,
    Visit,
    current_actor,
)
from server.routes.field import FIELD_HOME, FIELD_PAGES
from server.services import accounts
from server.services import appeals as appeal_service
from server.services.appeal_workflow import Action
from server.services.appeals import ActionInput, Actor, AppealInput
from server.services.deadlines import TimeLimits
from server.services.demo import DEMO_PASSWORD
from server.settings import Settings
from tests.browser.axe import assert_accessible
from tests.browser.conftest import CHROMIUM_ARGS, PHONE_CONTEXT, LiveServer, chromium_path
from tests.conftest import run_isolated
from tests.integration.staff_cases import in_session
from tests.browser.waiting import SW_STATE, wait_until


# --- helpers ---------------------------------------------------------------------------------------


def in_db(settings: Settings, work: Any) -> Any:
    """Run `await work(session)` against the live server's database (committed on return)."""

    return run_isolated(asyncio.run, in_session(settings, work))


def photo_file(tmp_path: Path) -> Path:
    """A phone-camera-sized photo (larger than the 1600 px the device keeps)."""
    image = Image.new("RGB", (2400, 1800), (40, 120, 200))
    for x in range(0, 2400, 200):
        for y in range(0, 1800, 200):
            image.paste((200, 60 + x // 20, 30), (x, y, x + 100, y + 100))
    path = tmp_path / "shopfront.png"
    image.save(path)
    return path


def sign_in(page: Page, username: str) -> None:
    page.goto("/login")
    page.locator("#username").fill(username)
    page.locator("#password").fill(DEMO_PASSWORD)
    page.locator("form button[type=submit]").click()
    page.wait_for_url(re.compile(r"/(grid|staff|admin)$"))


def field_ready(page: Page) -> None:
    page.wait_for_selector("html[data-field-ready]", state="attached", timeout=20_000)


def wait_for_saved_pages(page: Page) -> None:
    """After the first online visit the service worker keeps every field page."""
    missing = """async (urls) => {
        const cache = await caches.open("shanzhi-pages");
        const found = await Promise.all(urls.map((url) => cache.match(url)));
        return urls.filter((url, i) => !found[i]);
    }"""
    try:
        wait_until(
            page,
            f"async (urls) => (await ({missing})(urls)).length === 0 && Boolean(navigator.serviceWorker.controller)",
            arg=FIELD_PAGES,
            timeout=20_000,
            interval=250,
        )
    except AssertionError as error:
        raise AssertionError(f"{error}; not saved: {page.evaluate(missing, FIELD_PAGES)}; {page.evaluate(SW_STATE)}") from None


def outbox_states(page: Page) -> list[str]:
    page.goto("/field/outbox")
    field_ready(page)
    return page.locator("[data-outbox-list] > li").evaluate_all("items => items.map((li) => li.dataset.stateName)")


def sync_now(page: Page) -> None:
    page.locator("[data-sync-now]").click()


def phone_context(playwright: Playwright, profile: Path, server: LiveServer, *, offline: bool = False) -> BrowserContext:
    context = playwright.chromium.launch_persistent_context(
        str(profile),
        executable_path=chromium_path(),
        headless=True,
        args=CHROMIUM_ARGS,
        base_url=server.url,
        offline=offline,
        **PHONE_CONTEXT,
    )
    context.set_default_timeout(15_000)
    return context


@pytest.fixture
def profile(tmp_path: Path) -> Path:
    path = tmp_path / "phone-profile"
    path.mkdir()
    return path


# --- 1. a day offline, a restart, one sync -------------------------------------------------------------------

SUBJECT = "解放路老街坊小馆"
DESCRIPTIONS = [
    "门口停车位被长期占用，顾客无处停车",
    "员工就餐难，附近缺少平价食堂",
    "想了解小微企业房租补贴政策怎么申请",
]


def fill_visit(page: Page, photo: Path) -> None:
    page.locator("#subject_name").fill(SUBJECT)
    page.locator("#place_id").select_option(index=1)
    page.locator("#notes").fill("老板反映三件事，已现场登记")
    page.locator("[data-add-policy]").click()
    page.locator("[data-policy-list] input").last.fill("小微企业房租补贴")
    categories = ["parking", "dining", "policy"]
    for n, (category, description) in enumerate(zip(categories, DESCRIPTIONS, strict=True), start=1):
        page.locator("[data-add-appeal]").click()
        item = page.locator("[data-appeal-item]").nth(n - 1)
        item.locator('input[value="enterprise"]').check()
        item.locator("[data-category-select]").select_option(category)
        item.locator("textarea").fill(description)
        if n == 1:
            item.locator("[data-photo-input]").set_input_files(photo)


REFS_COUNT = """(async () => {
  const db = await new Promise((ok, fail) => { const r = indexedDB.open("shanzhi-field"); r.onsuccess = () => ok(r.result); r.onerror = () => fail(r.error); });
  const n = await new Promise((ok) => { const r = db.transaction("refs").objectStore("refs").count(); r.onsuccess = () => ok(r.result); });
  db.close();
  return n;
})()"""


def test_a_visit_with_three_appeals_and_a_photo_survives_offline_restarts_and_syncs_once(
    playwright: Playwright, live_server: LiveServer, profile: Path, tmp_path: Path
) -> None:
    photo = photo_file(tmp_path)
    context = phone_context(playwright, profile, live_server)
    page = context.new_page()
    sign_in(page, "grid")
    field_ready(page)
    wait_for_saved_pages(page)
    assert_accessible(page)

    # No network, for the page and for the service worker.
    context.set_offline(True)
    worker = context.service_workers[0]
    assert worker.evaluate("fetch('/healthz').then(() => 'reached', () => 'failed')") == "failed"

    page.goto("/field/visit")
    field_ready(page)
    assert page.evaluate("navigator.onLine") is False
    fill_visit(page, photo)
    assert_accessible(page)
    page.locator("form[data-field-form] button[type=submit]").click()
    expect(page.locator("[data-form-status].alert-success")).to_be_visible()
    # The form is empty again, ready for the next door.
    expect(page.locator("#subject_name")).to_have_value("")
    expect(page.locator("[data-appeal-item]")).to_have_count(0)

    assert outbox_states(page) == ["pending"]
    expect(page.locator("[data-outbox-badge]").first).to_be_visible()
    assert_accessible(page)
    stored = page.evaluate(
        """async () => {
            const user = document.getElementById("field-app").dataset.worker;
            const [m] = await ShanzhiOutbox.list(user);
            const photo = await ShanzhiOutbox.photo(m.fields.appeals[0].photos[0]);
            const bitmap = await createImageBitmap(photo.blob);
            return {seq: m.seq, appeals: m.fields.appeals.length, hlc: m.hlc, device: m.device_id,
                    type: photo.blob.type, width: bitmap.width, height: bitmap.height};
        }"""
    )
    assert stored["appeals"] == 3
    assert stored["seq"] == 1
    assert re.fullmatch(r"\d{13}-[0-9a-f]{4}-" + re.escape(stored["device"]), stored["hlc"])
    # Downscaled on the phone: JPEG, long edge 1600.
    assert (stored["type"], stored["width"], stored["height"]) == ("image/jpeg", 1600, 1200)

    page.reload()
    field_ready(page)
    assert page.locator("[data-outbox-list] > li").evaluate_all("items => items.map((li) => li.dataset.stateName)") == ["pending"]
    page.goto("/field")
    field_ready(page)
    expect(page.locator("[data-visits-pending] li")).to_have_count(1)
    assert in_db(live_server.settings, lambda s: s.scalar(select(func.count()).select_from(Visit).where(Visit.subject_name == SUBJECT))) == 0

    # Close the browser; start it again on the same profile, still without a network. Playwright's
    # offline emulation reaches a service worker only once it is attached, and Chromium wakes the
    # worker for the pending Background Sync at start-up; so the server is unreachable as well.
    context.close()
    live_server.stop()
    context = phone_context(playwright, profile, live_server, offline=True)
    page = context.new_page()
    assert outbox_states(page) == ["pending"]
    assert_accessible(page)
    assert in_db(live_server.settings, lambda s: s.scalar(select(func.count()).select_from(Visit).where(Visit.subject_name == SUBJECT))) == 0

    # The network is back: the page flushes on `online`.
    live_server.start()
    context.set_offline(False)
    expect(page.locator('[data-outbox-list] > li[data-state-name="sent"]')).to_have_count(1, timeout=20_000)
    # Another flush changes nothing.
    sync_now(page)
    expect(page.locator("[data-sync-now]")).to_be_enabled()
    page.wait_for_timeout(500)

    async def check(session: Any) -> dict[str, Any]:
        visits = list(await session.scalars(select(Visit).where(Visit.subject_name == SUBJECT)))
        appeals = list(await session.scalars(select(Appeal).where(Appeal.description.in_(DESCRIPTIONS))))
        photos = await session.scalar(select(func.count()).select_from(AppealPhoto).where(AppealPhoto.appeal_id.in_([a.id for a in appeals])))
        receipts = await session.scalar(select(func.count()).select_from(SyncMutation).where(SyncMutation.entity_id.in_([v.id for v in visits])))
        return {"visits": visits, "appeals": appeals, "photos": photos, "receipts": receipts}

    found = in_db(live_server.settings, check)
    assert len(found["visits"]) == 1
    assert sorted(a.description for a in found["appeals"]) == sorted(DESCRIPTIONS)
    assert {a.visit_id for a in found["appeals"]} == {found["visits"][0].id}
    assert found["photos"] == 1
    assert found["receipts"] == 1

    # Staff's ledger shows each of the three appeals once.
    page.goto("/grid")
    assert page.evaluate(REFS_COUNT) > 0  # the worker's reference data is on the phone
    page.locator(".logout-form button").click()
    # Signing out drops it (residents' names and phones), whoever uses the phone next.
    expect(page.locator("[data-purge-pages]")).to_be_visible()
    left = page.evaluate(REFS_COUNT)
    for _ in range(50):
        if left == 0:
            break
        page.wait_for_timeout(200)
        left = page.evaluate(REFS_COUNT)
    assert left == 0
    sign_in(page, "staff")
    page.goto("/appeals?channel=visit")
    body = page.locator("main").inner_text()
    references = {a.reference for a in found["appeals"]}
    for reference in references:
        assert body.count(reference) == 1, reference
    context.close()


# --- 2. the server dies in the middle of a push ----------------------------------------------------------------


def test_server_killed_after_commit_before_answer_retry_creates_no_duplicates(
    page: Page, context: BrowserContext, live_server: LiveServer
) -> None:
    sign_in(page, "grid")
    field_ready(page)
    page.goto("/field/appeal")
    field_ready(page)
    description = "小区东门路灯不亮已经一周，晚上很黑"
    page.locator('input[name="submitter_kind"][value="resident"]').check()
    page.locator("#category").select_option("facilities")
    page.locator("#description").fill(description)

    pushes: list[int] = []

    def kill_after_commit(route: Route) -> None:
        pushes.append(1)
        if len(pushes) == 1:
            response = route.fetch()  # reaches the server, which commits and answers...
            assert response.status == 200
            live_server.stop()  # ...but dies before the answer reaches the phone
            route.abort("connectionreset")
        else:
            route.continue_()

    context.route("**/sync/push", kill_after_commit)
    page.locator("form[data-field-form] button[type=submit]").click()
    expect(page.locator("[data-form-status].alert-success")).to_be_visible()
    for _ in range(100):  # the immediate flush reaches the interception
        if pushes:
            break
        page.wait_for_timeout(100)
    assert pushes
    # The phone saw a dropped connection: the record stays pending.
    expect(page.locator("form[data-field-form] button[type=submit]")).to_be_enabled()
    assert outbox_states(page) == ["pending"]

    live_server.start()  # same port, same database
    sync_now(page)
    expect(page.locator('[data-outbox-list] > li[data-state-name="sent"]')).to_have_count(1, timeout=20_000)
    result = page.evaluate(
        "async () => (await ShanzhiOutbox.list(document.getElementById('field-app').dataset.worker))[0].result"
    )
    assert result["status"] == "duplicate"

    count = in_db(live_server.settings, lambda s: s.scalar(select(func.count()).select_from(Appeal).where(Appeal.description == description)))
    assert count == 1


# --- 3. a refused write is corrected on the outbox page ----------------------------------------------------------


def test_rejected_appeal_is_shown_corrected_on_the_outbox_page_and_syncs(page: Page, live_server: LiveServer) -> None:
    sign_in(page, "grid")
    page.goto("/field/appeal")
    field_ready(page)
    page.locator('input[name="submitter_kind"][value="resident"]').check()
    page.locator("#category").select_option("environment")
    # Six characters for the browser, two for the server once the spaces are trimmed.
    page.locator("#description").fill("  垃圾  ")
    page.locator("form[data-field-form] button[type=submit]").click()

    # The immediate flush answered `rejected`: the reason is on the form, what was typed is kept.
    expect(page.locator("[data-form-status].alert-error")).to_be_visible()
    expect(page.locator('[data-error-for="description"]')).to_be_visible()
    expect(page.locator("#description")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#description")).to_have_value("  垃圾  ")
    assert_accessible(page)

    assert outbox_states(page) == ["rejected"]
    item = page.locator("[data-outbox-list] > li").first
    expect(item.locator(".alert-error")).to_be_visible()
    item.locator("[data-fix-open]").click()
    editor = item.locator("form[data-fix]")
    expect(editor.locator('textarea[name="description"]')).to_have_attribute("aria-invalid", "true")
    assert_accessible(page)
    fixed = "垃圾桶满了三天没人清运，气味很大"
    editor.locator('textarea[name="description"]').fill(fixed)
    editor.locator("button[type=submit]").click()
    expect(page.locator('[data-outbox-list] > li[data-state-name="sent"]')).to_have_count(1, timeout=20_000)

    descriptions = in_db(
        live_server.settings,
        lambda s: s.scalars(select(Appeal.description).where(Appeal.description.in_([fixed, "垃圾", "  垃圾  "]))),
    )
    assert list(descriptions) == [fixed]


# --- 4. two workers, one case, no network ------------------------------------------------------------------------


async def _second_worker_and_shared_case(session: Any) -> str:
    grid = await session.scalar(select(User).where(User.username == "grid"))
    await accounts.create_user(
        session, username="grid2", password=DEMO_PASSWORD, role=Role.GRID_WORKER, display_name="李网格", place_id=grid.place_id
    )
    second = await session.scalar(select(User).where(User.username == "grid2"))
    # An open case in their grid that 李网格 registered and 王网格 handles: both may correct it.
    places = select(Place.id).where((Place.id == grid.place_id) | (Place.parent_id == grid.place_id))
    case = await session.scalar(
        select(Appeal).where(Appeal.assignee_id == grid.id, Appeal.status.in_(["received", "transferred", "in_progress"])).limit(1)
    )
    assert case is not None
    await session.execute(
        update(Appeal).where(Appeal.id == case.id).values(created_by_id=second.id, place_id=(await session.scalar(places)))
    )
    return str(case.id)


def test_two_workers_edit_the_same_case_offline_and_both_see_the_conflict(
    context: BrowserContext, live_server: LiveServer, browser: Any
) -> None:
    case_id = in_db(live_server.settings, _second_worker_and_shared_case)
    other = browser.new_context(base_url=live_server.url, **PHONE_CONTEXT)
    other.set_default_timeout(15_000)
    try:
        phones = {"grid": context.new_page(), "grid2": other.new_page()}
        for username, page in phones.items():
            sign_in(page, username)
            field_ready(page)
            wait_for_saved_pages(page)
            page.goto("/field")
            field_ready(page)  # pulled: the case is on the phone
        context.set_offline(True)
        other.set_offline(True)
        for username, page in phones.items():
            page.goto(f"/field/appeals/edit?id={case_id}")
            field_ready(page)
            expect(page.locator("#description")).not_to_have_value("")
            page.locator("#description").fill(f"{username} 现场核实：楼道灯坏了两盏，需要更换")
            page.locator("form[data-field-form] button[type=submit]").click()
            expect(page.locator("[data-form-status].alert-success")).to_be_visible()
        assert_accessible(phones["grid"])
        for page in phones.values():
            assert outbox_states(page) == ["pending"]  # still offline: from the service worker's cache

        # 王网格 syncs first, then 李网格: the second edit is stale.
        context.set_offline(False)
        expect(phones["grid"].locator('[data-outbox-list] > li[data-result="applied"]')).to_have_count(1, timeout=20_000)
        assert outbox_states(phones["grid"]) == ["sent"]
        other.set_offline(False)
        expect(phones["grid2"].locator('[data-outbox-list] > li[data-result="conflict"]')).to_have_count(1, timeout=20_000)
        assert outbox_states(phones["grid2"]) == ["sent"]

        conflicts = in_db(live_server.settings, lambda s: s.scalars(select(SyncConflict).where(SyncConflict.entity_id == UUID(case_id))))
        conflicts = list(conflicts)
        assert len(conflicts) == 1
        assert conflicts[0].fields == ["description"]

        # Both see it: 李网格 from the push answer and the pull, 王网格 from the pull.
        for page in phones.values():
            page.goto("/field/outbox")
            field_ready(page)
            sync_now(page)
            expect(page.locator("[data-conflict-list] > li")).to_have_count(1, timeout=20_000)
            page.goto("/field")
            field_ready(page)
            expect(page.locator("[data-conflict-list] > li")).to_have_count(1)
            assert_accessible(page)
    finally:
        other.close()



# --- 5. the "+1": return visits made offline, one of them on a case staff reopened meanwhile --------------------


async def _two_resolved_cases(session: Any, settings: Settings) -> tuple[str, str]:
    """Two cases 王网格 collected on visits, resolved by staff: both wait for their return visit."""
    grid = await session.scalar(select(User).where(User.username == "grid"))
    staff = await session.scalar(select(User).where(User.username == "staff"))
    shop = await session.scalar(select(Place).where(Place.name == "解放路沿街商铺"))
    limits = TimeLimits.from_settings(settings)
    references = []
    for description in ("商铺门前的井盖松动了，夜里有人踩空", "沿街商铺的招牌歪了，担心掉下来"):
        token = current_actor.set(grid.id)
        try:
            appeal = await appeal_service.submit(
                session, AppealInput(channel=AppealChannel.VISIT, submitter_kind=SubmitterKind.ENTERPRISE, category="enterprise_other",
                                     description=description, place_id=shop.id),
                actor=Actor.for_user(grid), limits=limits, uploads_dir=settings.uploads_dir,
            )
        finally:
            current_actor.reset(token)
        for action, payload in ((Action.ACCEPT, None), (Action.RESOLVE, ActionInput(note="已修好"))):
            await appeal_service.act(session, appeal, action, Actor.for_user(staff), payload, limits=limits)
        references.append(str(appeal.id))
    return references[0], references[1]


async def _reopen(session: Any, appeal_id: str, settings: Settings) -> None:
    staff = await session.scalar(select(User).where(User.username == "staff"))
    appeal = await session.get(Appeal, UUID(appeal_id))
    await appeal_service.act(session, appeal, Action.REOPEN, Actor.for_user(staff), ActionInput(note="商户说还没修好"),
                             limits=TimeLimits.from_settings(settings))


def test_return_visits_made_offline_apply_once_and_a_reopened_case_becomes_a_conflict_for_staff(
    context: BrowserContext, page: Page, live_server: LiveServer
) -> None:
    kept, reopened = in_db(live_server.settings, lambda s: _two_resolved_cases(s, live_server.settings))
    sign_in(page, "grid")
    page.goto(FIELD_HOME)
    field_ready(page)
    wait_for_saved_pages(page)

    context.set_offline(True)
    for appeal_id, evaluation in ((kept, "satisfied"), (reopened, "basically_satisfied")):
        page.goto("/field/return-visit")
        field_ready(page)
        page.locator("#appeal_id").select_option(appeal_id)
        page.locator('input[name="method"][value="phone"]').check()
        page.locator(f'input[name="evaluation"][value="{evaluation}"]').check()
        page.locator("#note").fill("电话回访，商户确认")
        page.locator("form[data-field-form] button[type=submit]").click()
        expect(page.locator("[data-form-status].alert-success")).to_be_visible()
    assert_accessible(page)
    assert outbox_states(page) == ["pending", "pending"]

    # While the phone is offline, staff reopen the second case.
    in_db(live_server.settings, lambda s: _reopen(s, reopened, live_server.settings))
    context.set_offline(False)
    sync_now(page)
    expect(page.locator('[data-outbox-list] > li[data-state-name="sent"]')).to_have_count(2, timeout=20_000)

    async def check(session: Any) -> dict[str, Any]:
        cases = {str(a.id): a for a in await session.scalars(select(Appeal).where(Appeal.id.in_([UUID(kept), UUID(reopened)])))}
        visits = [str(v.appeal_id) for v in await session.scalars(select(ReturnVisit).where(ReturnVisit.appeal_id.in_([UUID(kept), UUID(reopened)])))]
        conflicts = list(await session.scalars(select(SyncConflict)))
        return {"cases": cases, "visits": visits, "conflicts": conflicts}

    found = in_db(live_server.settings, check)
    assert found["cases"][kept].status.value == "evaluated" and found["cases"][kept].evaluation.value == "satisfied"
    assert found["visits"] == [kept]  # one return visit, on the case that was still resolved
    assert found["cases"][reopened].status.value == "in_progress"
    [conflict] = found["conflicts"]
    assert str(conflict.entity_id) == reopened and conflict.kind.value == "transition"

    # The worker sees it with the other conflicts; staff see it on the devices page, to re-apply or dismiss.
    page.goto(FIELD_HOME)
    field_ready(page)
    expect(page.locator("main")).to_contain_text(found["cases"][reopened].reference)
    page.goto("/grid")
    page.locator(".logout-form button").click()
    page.wait_for_url(re.compile(r"/login\?signed_out=1$"))  # sign-out checks the outbox first
    sign_in(page, "staff")
    page.goto("/sync/devices")
    expect(page.locator("main")).to_contain_text(found["cases"][reopened].reference)
    assert_accessible(page)
