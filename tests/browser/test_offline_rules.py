"""Pages that look usable offline never lose data (issue 9, points 4 and 5), in a phone-sized Chromium:

- a form that posts to the server is disabled offline, visibly, and keeps what was typed;
- a form sent into a dead network gets our "not sent" page, and going back fills it in again;
- sign-out warns of records still waiting, syncs them first if asked, and works offline;
- /login opened offline shows the offline page, not the browser's error page;
- a weak signal (the server does not answer) falls back to the saved page after a few seconds;
- an address with a query string is never saved; saved pages go when the session ends, also when
  the browser simply dropped an expired session cookie; at most 60 pages are kept;
- the outbox keeps queued records through a database upgrade, retries a failed open, abandons a
  stalled photo upload (the next sync sends it), and Background Sync pushes only the signed-in
  user's device.
"""

from __future__ import annotations

import re
import signal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from playwright.sync_api import BrowserContext, Page, Route, expect
from sqlalchemy import delete, func, select

from server.models import Appeal, AppealPhoto, Role, StoreItem, SyncDevice, User
from server.services import accounts
from server.services.demo import DEMO_PASSWORD
from tests.browser.axe import assert_accessible
from tests.browser.conftest import LiveServer
from tests.browser.test_field_offline import field_ready, in_db, photo_file, sign_in, wait_for_saved_pages
from tests.browser.waiting import wait_controlled, wait_until


def controlled(page: Page) -> None:
    wait_controlled(page)


def saved(page: Page, path: str) -> bool:
    return page.evaluate("async (path) => Boolean(await (await caches.open('shanzhi-pages')).match(path))", path)


def wait_saved(page: Page, path: str) -> None:
    wait_until(page, "async (path) => Boolean(await (await caches.open('shanzhi-pages')).match(path))", arg=path, timeout=20_000)


def drafts(page: Page) -> list[str]:
    return page.evaluate("() => Object.keys(localStorage).filter((k) => k.startsWith('shanzhi.draft:'))")


def quick_appeal(page: Page, description: str, photo: Path | None = None) -> None:
    page.goto("/field/appeal")
    field_ready(page)
    page.locator('input[name="submitter_kind"][value="resident"]').check()
    page.locator("#category").select_option("facilities")
    page.locator("#description").fill(description)
    if photo is not None:
        page.locator("[data-photo-input]").set_input_files(photo)
    page.locator("form[data-field-form] button[type=submit]").click()
    expect(page.locator("[data-form-status].alert-success")).to_be_visible()


def appeals_described(server: LiveServer, description: str) -> int:
    return in_db(server.settings, lambda s: s.scalar(select(func.count()).select_from(Appeal).where(Appeal.description == description)))


def arrives_once(page: Page, live_server: LiveServer, description: str) -> None:
    """Wait (up to 20 s) for the phone's outbox to deliver the appeal described so: then it is there exactly once."""
    for _ in range(100):
        if appeals_described(live_server, description) == 1:
            break
        page.wait_for_timeout(200)
    assert appeals_described(live_server, description) == 1


# --- forms that post to the server ---------------------------------------------------------------------------


def test_a_form_is_disabled_offline_and_keeps_what_was_typed(page: Page, context: BrowserContext, live_server: LiveServer) -> None:
    sign_in(page, "staff")
    page.goto("/appeals/new")
    controlled(page)
    wait_saved(page, "/appeals/new")
    context.set_offline(True)
    page.reload()  # from the phone's saved copy
    description = page.locator("#description")
    description.fill("小区北门的路灯坏了三天，晚上很黑")
    submit = page.locator("form.form button[type=submit]")
    expect(submit).to_be_disabled()
    expect(page.get_by_role("status").filter(has_text="离线时无法提交，请联网后再试")).to_be_visible()
    assert_accessible(page)
    context.set_offline(False)
    expect(submit).to_be_enabled()
    expect(description).to_have_value("小区北门的路灯坏了三天，晚上很黑")
    expect(page.locator("[data-form-note=offline]")).to_have_count(0)


def test_a_form_sent_into_a_dead_network_says_not_sent_and_is_filled_in_again(page: Page, live_server: LiveServer) -> None:
    sign_in(page, "staff")
    page.goto("/appeals/new")
    controlled(page)
    text = "解放路沿街商铺门口井盖松动，有安全隐患"
    page.locator("#category").select_option("facilities")
    page.locator("#description").fill(text)
    live_server.stop()  # the phone thinks it is online; the network is gone
    page.locator("form.form button[type=submit]").click()
    expect(page.get_by_role("heading", name="没有发出：网络不通")).to_be_visible()
    assert_accessible(page)
    live_server.start()
    page.get_by_role("button", name="返回填写页面").click()
    page.wait_for_url(re.compile(r"/appeals/new$"))
    expect(page.locator("#description")).to_have_value(text)
    page.locator("form.form button[type=submit]").click()
    page.wait_for_url(re.compile(r"/appeals/\d{4}-\d{5}$"))
    assert appeals_described(live_server, text) == 1
    assert drafts(page) == [], "the draft is dropped once the server has the submission"


def test_login_opened_offline_shows_the_offline_page(page: Page, context: BrowserContext, live_server: LiveServer) -> None:
    page.goto("/login")
    controlled(page)
    context.set_offline(True)
    page.goto("/login")
    expect(page.get_by_role("heading", name="当前没有网络")).to_be_visible()


# --- signing out -------------------------------------------------------------------------------------------


def test_sign_out_with_waiting_records_offers_to_sync_first(page: Page, context: BrowserContext, live_server: LiveServer) -> None:
    sign_in(page, "grid")
    field_ready(page)
    wait_for_saved_pages(page)
    context.set_offline(True)
    description = "单元门禁坏了，外来人员随意进出"
    quick_appeal(page, description)
    live_server.stop()
    context.set_offline(False)  # a signal, but no server: the record cannot go yet
    page.get_by_role("button", name="退出登录").click()
    dialog = page.locator("#signout-dialog")
    expect(dialog).to_contain_text("还有 1 条记录未同步")
    assert_accessible(page)
    dialog.get_by_role("button", name="先同步，再退出").click()
    expect(dialog).to_contain_text("有 1 条记录未能发出")
    dialog.get_by_role("button", name="知道了").click()
    live_server.start()
    expect(dialog).to_contain_text("还有 1 条记录未同步")
    dialog.get_by_role("button", name="先同步，再退出").click()
    page.wait_for_url(re.compile(r"/login\?signed_out=1$"))
    assert appeals_described(live_server, description) == 1


def test_offline_sign_out_says_what_happens_to_waiting_records(page: Page, context: BrowserContext, live_server: LiveServer) -> None:
    sign_in(page, "grid")
    field_ready(page)
    wait_for_saved_pages(page)
    context.set_offline(True)
    description = "楼道灯不亮，老人上下楼不方便"
    quick_appeal(page, description)
    page.get_by_role("button", name="退出登录").click()
    dialog = page.locator("#signout-dialog")
    expect(dialog).to_contain_text("已在这部手机上退出登录。还有 1 条未同步的记录仍保存在这部手机上")
    dialog.get_by_role("button", name="知道了").click()
    expect(page.get_by_role("heading", name="当前没有网络")).to_be_visible()
    assert not saved(page, "/grid"), "pages with personal data stay on a phone nobody is signed in to"
    context.set_offline(False)
    page.goto("/offline")  # the next page with a network tells the server
    wait_until(page, "() => localStorage.getItem('shanzhi.pending-logout') === null", timeout=15_000)
    page.goto("/grid")
    expect(page).to_have_url(re.compile(r"/login"))
    assert appeals_described(live_server, description) == 0  # waiting for its user's next sign-in
    sign_in(page, "grid")
    field_ready(page)
    arrives_once(page, live_server, description)


# --- what the service worker keeps, and how long it waits -----------------------------------------------------


def test_a_weak_signal_falls_back_to_the_saved_page(page: Page, live_server: LiveServer) -> None:
    sign_in(page, "grid")
    field_ready(page)
    wait_saved(page, "/grid")
    assert live_server.process is not None
    live_server.process.send_signal(signal.SIGSTOP)  # connections are accepted, nothing answers
    try:
        started = page.evaluate("() => performance.now()")
        page.goto("/grid", timeout=15_000)
        expect(page.get_by_role("heading", name="王网格，您好")).to_be_visible()
        waited = page.evaluate("() => performance.now()")  # a new document: its clock starts at 0
        assert started >= 0 and waited < 15_000
    finally:
        live_server.process.send_signal(signal.SIGCONT)


def test_the_home_reached_by_signing_in_is_saved_for_offline_use(page: Page, context: BrowserContext, live_server: LiveServer) -> None:
    """The worker already controls the sign-in page, so the home page arrives as the answer to a POST,
    which the worker never saves itself: the page asks for it to be saved, and it opens offline."""
    page.goto("/login")
    controlled(page)
    sign_in(page, "staff")
    expect(page).to_have_url(re.compile(r"/staff$"))
    wait_saved(page, "/staff")
    context.set_offline(True)
    page.goto("/staff")
    expect(page.get_by_role("heading", name="李主任，您好")).to_be_visible()
    context.set_offline(False)


def test_an_address_with_a_query_is_never_saved(page: Page, live_server: LiveServer) -> None:
    sign_in(page, "grid")
    field_ready(page)
    page.goto("/field/visit?subject_name=张三&notes=独居")
    field_ready(page)
    page.goto("/grid")
    wait_saved(page, "/grid")
    keys = page.evaluate("async () => (await (await caches.open('shanzhi-pages')).keys()).map((r) => r.url)")
    assert keys and not [k for k in keys if "?" in k]


def test_saved_pages_go_when_the_session_ends(page: Page, live_server: LiveServer) -> None:
    sign_in(page, "staff")
    controlled(page)
    page.goto("/appeals")
    wait_saved(page, "/appeals")

    async def end_sessions(session: Any) -> None:
        await session.execute(delete(StoreItem))

    in_db(live_server.settings, end_sessions)  # the session expired on the server
    page.goto("/staff")
    expect(page).to_have_url(re.compile(r"/login\?next=/staff&expired=1$"))
    wait_until(page, "async () => !(await (await caches.open('shanzhi-pages')).match('/appeals'))", timeout=15_000)


def test_saved_pages_go_when_the_browser_drops_an_expired_session(page: Page, context: BrowserContext, live_server: LiveServer) -> None:
    """The session cookie reached its Max-Age (the server's record ends at the same moment): the browser
    stops sending it, so the server cannot tell anyone was signed in. The sign-in page the next page lands
    on still drops the saved pages, the reference data and who was signed in; a record still waiting
    stays on the phone and goes in when its worker signs in again."""
    user_id = _grid_user_id(live_server)
    sign_in(page, "grid")
    field_ready(page)
    wait_for_saved_pages(page)
    context.set_offline(True)
    description = "会话过期前登记的诉求：小区东门护栏倒了"
    quick_appeal(page, description)
    context.clear_cookies()
    context.set_offline(False)
    page.goto("/grid")
    expect(page).to_have_url(re.compile(r"/login\?next=/grid$"))
    wait_until(
        page,
        """async () => !(await (await caches.open('shanzhi-pages')).match('/grid'))
            && (await ShanzhiOutbox.currentUser()) === null""",
        timeout=15_000,
    )
    assert page.evaluate("async (user) => (await ShanzhiOutbox.counts(user)).pending", user_id) == 1, "nothing unsent is lost"
    assert page.evaluate("async (user) => (await ShanzhiOutbox.refs(user, 'place')).length", user_id) == 0
    assert_accessible(page)
    context.set_offline(True)
    page.goto("/grid")
    expect(page.get_by_role("heading", name="当前没有网络")).to_be_visible()
    expect(page.get_by_role("heading", name="王网格，您好")).to_have_count(0)
    context.set_offline(False)
    assert appeals_described(live_server, description) == 0
    sign_in(page, "grid")
    field_ready(page)
    arrives_once(page, live_server, description)


PAGES_LIMIT = 60  # pwa/service-worker.js; docs/field.md says so to the people using the phone


def test_at_most_sixty_pages_are_kept_the_oldest_go_first(page: Page, context: BrowserContext, live_server: LiveServer) -> None:
    """Staff open more cases than the phone keeps: the newest pages stay (the last one opens offline),
    the first ones went, and the offline page is always there."""

    async def case_references(session: Any) -> list[str]:
        return list(await session.scalars(select(Appeal.reference).order_by(Appeal.reference).limit(PAGES_LIMIT + 2)))

    references = in_db(live_server.settings, case_references)
    assert len(references) == PAGES_LIMIT + 2
    sign_in(page, "staff")
    controlled(page)
    for reference in references:
        page.goto(f"/appeals/{reference}", wait_until="commit")
    last = f"/appeals/{references[-1]}"
    wait_saved(page, last)
    keys = page.evaluate("async () => (await (await caches.open('shanzhi-pages')).keys()).map((r) => new URL(r.url).pathname)")
    assert len(keys) <= PAGES_LIMIT
    assert "/offline" in keys
    assert f"/appeals/{references[0]}" not in keys, "the oldest pages go first"
    assert f"/appeals/{references[-2]}" in keys
    context.set_offline(True)
    page.goto(last)
    expect(page.get_by_role("heading", name=re.compile(references[-1]))).to_be_visible()
    context.set_offline(False)


# --- the outbox under browser faults ----------------------------------------------------------------------


def _grid_user_id(server: LiveServer) -> str:
    return str(in_db(server.settings, lambda s: s.scalar(select(User.id).where(User.username == "grid"))))


def test_records_queued_by_an_older_outbox_survive_the_upgrade(page: Page, live_server: LiveServer) -> None:
    """A phone last used with outbox database version 1 holds a queued appeal; the new app keeps it and sends it."""
    user_id = _grid_user_id(live_server)
    device_id, description = str(uuid4()), "版本升级前登记的诉求：小区健身器材损坏"
    mutation = {
        "mutation_id": str(uuid4()), "device_id": device_id, "user_id": user_id, "seq": 1, "entity": "appeal",
        "entity_id": str(uuid4()), "op": "create", "base_version": None, "hlc": "",
        "fields": {"submitter_kind": "resident", "category": "facilities", "description": description, "place_id": None, "photos": []},
        "recorded_at": None, "photos": [], "summary": description, "state": "pending", "result": None, "created_at": 0, "sent_at": None,
    }
    page.goto("/offline")
    page.evaluate(
        """async ({userId, deviceId, mutation}) => {
            const db = await new Promise((ok, fail) => {
              const r = indexedDB.open("shanzhi-field", 1);
              r.onupgradeneeded = () => {  // the version-1 schema, as the old outbox.js made it
                const d = r.result;
                d.createObjectStore("devices", { keyPath: "userId" });
                const o = d.createObjectStore("outbox", { keyPath: "mutation_id" });
                o.createIndex("by_device_seq", ["device_id", "seq"], { unique: true });
                o.createIndex("by_user", "user_id");
                d.createObjectStore("photos", { keyPath: "sha" });
                const refs = d.createObjectStore("refs", { keyPath: ["userId", "entity", "id"] });
                refs.createIndex("by_user_entity", ["userId", "entity"]);
              };
              r.onsuccess = () => ok(r.result); r.onerror = () => fail(r.error);
            });
            const now = Date.now();
            mutation.hlc = `${String(now).padStart(13, "0")}-0000-${deviceId}`;
            mutation.recorded_at = new Date(now).toISOString();
            mutation.created_at = now;
            const tx = db.transaction(["devices", "outbox"], "readwrite");
            tx.objectStore("devices").put({ userId, deviceId, seq: 1, clock: { wall: now, counter: 0 }, cursor: null, pulledAt: null });
            tx.objectStore("outbox").put(mutation);
            await new Promise((ok) => { tx.oncomplete = ok; });
            db.close();
        }""",
        {"userId": user_id, "deviceId": device_id, "mutation": mutation},
    )
    sign_in(page, "grid")
    field_ready(page)
    arrives_once(page, live_server, description)
    assert page.evaluate("() => new Promise((ok) => { const r = indexedDB.open('shanzhi-field'); r.onsuccess = () => { ok(r.result.version); r.result.close(); }; })") == 2


def test_a_failed_database_open_is_tried_again(page: Page, live_server: LiveServer) -> None:
    page.goto("/offline")
    page.evaluate(
        """() => {
            const open = indexedDB.open.bind(indexedDB);
            let failures = 1;
            indexedDB.open = (...args) => {
              if (failures-- > 0) throw new DOMException("the disk is busy", "UnknownError");
              return open(...args);
            };
        }"""
    )
    page.add_script_tag(url="/static/js/outbox.js")
    first = page.evaluate("() => ShanzhiOutbox.counts('someone').then(() => 'ok', (e) => e.name)")
    assert first == "UnknownError"
    assert page.evaluate("() => ShanzhiOutbox.counts('someone')") == {"pending": 0, "rejected": 0, "sent": 0}


def test_a_stalled_photo_upload_is_abandoned_and_the_next_sync_sends_it(
    page: Page, context: BrowserContext, live_server: LiveServer, tmp_path: Path
) -> None:
    sign_in(page, "grid")
    field_ready(page)
    wait_for_saved_pages(page)
    context.set_offline(True)
    description = "垃圾桶满了没人清运，见照片"
    quick_appeal(page, description, photo_file(tmp_path))
    stalled: list[Route] = []
    context.route("**/sync/photos/**", lambda route: stalled.append(route))  # never answered
    page.evaluate("() => { ShanzhiOutbox.settings.photoTimeoutMs = 1500; }")
    context.set_offline(False)
    for _ in range(100):  # the sync started by the network coming back reaches the stalled upload
        if stalled:
            break
        page.wait_for_timeout(100)
    assert stalled
    # It gives up on the photo and lets go of the outbox: had it kept the flush lock, the sync below
    # would wait behind the upload that is never answered, and nothing would arrive.
    page.wait_for_timeout(2500)
    context.unroute("**/sync/photos/**")
    page.locator("[data-sync-now]").click()
    for _ in range(100):
        if appeals_described(live_server, description) == 1:
            break
        page.wait_for_timeout(200)

    async def photos(session: Any) -> int:
        return await session.scalar(
            select(func.count()).select_from(AppealPhoto).join(Appeal, Appeal.id == AppealPhoto.appeal_id).where(Appeal.description == description)
        )

    assert in_db(live_server.settings, photos) == 1


def test_background_sync_pushes_only_the_signed_in_users_device(page: Page, context: BrowserContext, live_server: LiveServer) -> None:
    """王网格 left a record on a shared phone that the server has never seen; 张网格 signs in on it. However
    the phone syncs (the page, or the service worker in the background), 王网格's device is never
    pushed with 张网格's session: it waits for 王网格, and then goes in under his name."""

    async def second_worker(session: Any) -> str:
        grid = await session.scalar(select(User).where(User.username == "grid"))
        await accounts.create_user(
            session, username="grid2", password=DEMO_PASSWORD, role=Role.GRID_WORKER, display_name="张网格", place_id=grid.place_id,
        )
        return str(grid.id)

    wang = in_db(live_server.settings, second_worker)
    description = "共用手机上留下的记录：消防通道堆放杂物"
    page.goto("/offline")
    page.add_script_tag(url="/static/js/outbox.js")
    wang_device = page.evaluate(
        """async ({user, description}) => {
            const fields = { submitter_kind: "resident", category: "facilities", description, place_id: null, photos: [] };
            const [m] = await ShanzhiOutbox.enqueue(user, [{ entity: "appeal", entity_id: crypto.randomUUID(), op: "create", fields, summary: description }]);
            return m.device_id;
        }""",
        {"user": wang, "description": description},
    )
    sign_in(page, "grid2")
    field_ready(page)
    [worker] = context.service_workers
    # What the service worker's sync handler does, in the service worker itself.
    worker.evaluate("async () => { const user = await self.ShanzhiOutbox.currentUser(); if (user) await self.ShanzhiOutbox.flush(user); }")
    assert in_db(live_server.settings, lambda s: s.get(SyncDevice, UUID(wang_device))) is None
    assert appeals_described(live_server, description) == 0
    assert page.evaluate("async (user) => (await ShanzhiOutbox.counts(user)).pending", wang) == 1

    page.get_by_role("button", name="退出登录").click()
    page.wait_for_url(re.compile(r"/login"))
    sign_in(page, "grid")
    field_ready(page)
    for _ in range(100):
        if appeals_described(live_server, description) == 1:
            break
        page.wait_for_timeout(200)
    device = in_db(live_server.settings, lambda s: s.get(SyncDevice, UUID(wang_device)))
    assert device is not None and str(device.user_id) == wang
