"""The PWA shell in a real Chromium on a phone: sign-in, service worker, offline page, updates, accessibility."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from server.services.demo import DEMO_PASSWORD, DEMO_USERS
from server.web import ROLE_HOME
from tests.browser.axe import assert_accessible
from tests.browser.conftest import LiveServer
from tests.browser.waiting import wait_controlled, wait_until


def sign_in(page: Page, username: str, password: str = DEMO_PASSWORD) -> None:
    page.goto("/login")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(password)
    page.get_by_role("button", name="登录").click()


def wait_until_controlled(page: Page) -> None:
    wait_controlled(page)


CACHED_FIELD_APP = """async () => {
  const names = await caches.keys();
  const urls = (await Promise.all(names.map(async (n) => (await (await caches.open(n)).keys()).map((r) => r.url)))).flat();
  return urls.some((url) => url.includes("/static/js/field.js"));
}"""


def wait_until_saved(page: Page, path: str) -> None:
    wait_until(page, "async (path) => Boolean(await caches.match(path))", arg=path)


def test_grid_worker_signs_in_and_the_app_opens_offline(page: Page, live_server: LiveServer) -> None:
    """王网格 signs in on a phone; once the server is gone, saved pages still open and others show the offline page."""
    page.goto("/login")
    expect(page.get_by_role("heading", name="登录")).to_be_visible()
    assert_accessible(page)
    wait_until_controlled(page)
    assert page.evaluate(CACHED_FIELD_APP) is False  # a visitor's phone gets the public shell only

    sign_in(page, "grid")
    expect(page).to_have_url(re.compile(r"/grid$"))
    expect(page.get_by_role("heading", name="王网格，您好")).to_be_visible()
    expect(page.get_by_text("东舍坊小区", exact=True)).to_be_visible()
    assert_accessible(page)

    wait_until_controlled(page)
    wait_until_saved(page, "/grid")
    wait_until(page, CACHED_FIELD_APP)  # the grid worker's phone gets the field app at once

    # Online again on a saved page: the worker revalidates its copy (ETag) and the unchanged page
    # costs a 304, not the page. (The outbox page has no clock on it: it cannot change in between.)
    page.goto("/field/outbox")
    wait_until_saved(page, "/field/outbox")
    page.goto("/field/outbox")
    wait_until(page, "() => document.readyState === 'complete'")
    for _ in range(50):  # the access log line is written just after the answer
        if '"GET /field/outbox HTTP/1.1" 304' in live_server.log_path.read_text():
            break
        page.wait_for_timeout(100)
    assert '"GET /field/outbox HTTP/1.1" 304' in live_server.log_path.read_text()
    page.goto("/grid")

    live_server.stop()

    page.goto("/grid")
    expect(page.get_by_role("heading", name="王网格，您好")).to_be_visible()

    page.goto("/department")  # never opened on this phone
    expect(page.get_by_role("heading", name="当前没有网络")).to_be_visible()
    assert_accessible(page)


def test_wrong_password_shows_a_chinese_error_and_keeps_the_username(page: Page, live_server: LiveServer) -> None:
    sign_in(page, "grid", "not-the-password")
    expect(page.get_by_role("alert")).to_have_text("用户名或密码错误，请检查后重试。")
    expect(page.get_by_label("用户名")).to_have_value("grid")
    expect(page.get_by_label("密码")).to_have_value("")
    expect(page.get_by_label("密码")).to_be_focused()
    assert_accessible(page)


def test_every_role_lands_on_its_own_home(page: Page, live_server: LiveServer) -> None:
    for person in DEMO_USERS:
        sign_in(page, person.username)
        expect(page).to_have_url(re.compile(re.escape(ROLE_HOME[person.role]) + "$"))
        expect(page.get_by_role("heading", level=1)).to_have_text(f"{person.display_name}，您好")
        assert_accessible(page)
        page.get_by_role("button", name="退出登录").click()
        expect(page.get_by_text("您已退出登录。")).to_be_visible()


def test_places_page_lists_the_tree_for_staff(page: Page, live_server: LiveServer) -> None:
    sign_in(page, "staff")
    page.get_by_role("link", name="地点").click()
    expect(page).to_have_url(re.compile(r"/places$"))
    for name in ["解放路街道", "东舍坊社区", "文华园第二网格", "山东物业创新产业园", "鲁粮集团办公楼"]:
        expect(page.get_by_text(name, exact=True)).to_be_visible()
    assert_accessible(page)


def test_english_switch(page: Page, live_server: LiveServer) -> None:
    page.goto("/login")
    page.get_by_role("link", name="English").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    assert_accessible(page)
    page.get_by_role("link", name="中文").click()
    expect(page.get_by_role("heading", name="登录")).to_be_visible()


def test_a_new_version_waits_for_the_user_to_refresh(page: Page, live_server: LiveServer) -> None:
    """A deploy never swaps code under an open page: the phone offers "有新版本，点击刷新" and updates on tap."""
    sign_in(page, "grid")
    wait_until_controlled(page)
    first = page.evaluate("async () => (await caches.keys()).filter(k => k.startsWith('shanzhi-static-'))")
    assert len(first) == 1

    live_server.stop()
    live_server.release = "2"
    live_server.start()

    page.reload()
    banner = page.get_by_role("button", name="有新版本，点击刷新")
    expect(banner).to_be_visible()
    assert_accessible(page)
    banner.click()
    wait_until(
        page,
        "async (old) => { const keys = await caches.keys();"
        " return keys.some(k => k.startsWith('shanzhi-static-') && k !== old) && !keys.includes(old); }",
        arg=first[0],
    )
    expect(page.get_by_role("button", name="有新版本，点击刷新")).to_be_hidden()
    expect(page.get_by_role("heading", name="王网格，您好")).to_be_visible()
