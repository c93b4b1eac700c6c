"""What is typed into a form is kept on the phone as a draft (docs/field.md, "Every page the phone can
show offline"), and a draft is personal data: a resident's name and phone. In a phone-sized Chromium:

- signing out drops every draft; the next person sees an empty form;
- a session that ended (an expired cookie) keeps the draft for the person who typed it, and only for them,
  also when the form was sent after the session ended (the server's refusal page keeps it);
- a draft is only ever shown to the person who typed it;
- a draft typed with nobody signed in (the suggestion box on a shared phone) lives an hour, and goes
  as soon as the form reached the server.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser.axe import assert_accessible
from tests.browser.conftest import PHONE_CONTEXT, LiveServer
from tests.browser.test_field_offline import sign_in
from tests.browser.test_offline_rules import drafts

DESCRIPTION = "张大爷家厨房漏水，楼上住户不在家"
PHONE = "13800138000"


def type_an_appeal(page: Page) -> None:
    page.goto("/appeals/new")
    page.locator("#description").fill(DESCRIPTION)
    page.locator("#submitter_phone").fill(PHONE)
    expect(page.locator("#submitter_phone")).to_have_value(PHONE)
    assert len(drafts(page)) == 1, "what was typed is kept on the phone"


def expect_an_empty_appeal_form(page: Page) -> None:
    page.goto("/appeals/new")
    expect(page.get_by_role("heading", name="登记诉求")).to_be_visible()
    expect(page.locator("#description")).to_have_value("")
    expect(page.locator("#submitter_phone")).to_have_value("")
    expect(page.locator('[data-form-note="draft-restored"]')).to_have_count(0)


def test_signing_out_drops_drafts_and_the_next_person_gets_an_empty_form(page: Page, live_server: LiveServer) -> None:
    sign_in(page, "staff")
    type_an_appeal(page)
    page.get_by_role("button", name="退出登录").click()
    page.wait_for_url(re.compile(r"/login\?signed_out=1$"))
    assert drafts(page) == []
    sign_in(page, "admin")
    expect_an_empty_appeal_form(page)
    assert_accessible(page)


def test_a_session_that_ended_keeps_the_draft_for_its_owner_only(page: Page, context: BrowserContext, live_server: LiveServer) -> None:
    """The session cookie reached its Max-Age while staff were typing: signing in again gives them back what
    they typed (nothing lost); anyone else who signs in on this phone gets an empty form, and the draft goes."""
    sign_in(page, "staff")
    type_an_appeal(page)
    context.clear_cookies()  # the browser no longer sends the session cookie
    page.goto("/appeals/new")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    sign_in(page, "staff")
    page.goto("/appeals/new")
    expect(page.locator("#submitter_phone")).to_have_value(PHONE)
    expect(page.locator('[data-form-note="draft-restored"]')).to_be_visible()

    context.clear_cookies()
    page.goto("/appeals/new")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    sign_in(page, "admin")
    expect_an_empty_appeal_form(page)
    assert drafts(page) == []


def test_a_form_sent_after_the_session_ended_keeps_what_was_typed(page: Page, context: BrowserContext, live_server: LiveServer) -> None:
    """The cookie expired between typing and pressing send: the server refuses the form (401), and signing in
    again gives the form back as it was typed."""
    sign_in(page, "staff")
    type_an_appeal(page)
    kept = [c for c in context.cookies() if c["name"] != "shanzhi_session"]
    context.clear_cookies()
    context.add_cookies(kept)  # only the session went; the CSRF cookie stays, as it does in a browser
    page.locator("#description").locator("xpath=ancestor::form").locator("button[type=submit]").click()
    expect(page.locator(".error-code")).to_have_text("401")
    assert len(drafts(page)) == 1
    sign_in(page, "staff")
    page.goto("/appeals/new")
    expect(page.locator("#description")).to_have_value(DESCRIPTION)
    expect(page.locator("#submitter_phone")).to_have_value(PHONE)


def test_a_draft_is_shown_only_to_the_person_who_typed_it(
    page: Page, context: BrowserContext, browser: Browser, live_server: LiveServer
) -> None:
    """Even when another person's session reaches this phone with no sign-in page in between."""
    sign_in(page, "staff")
    type_an_appeal(page)
    elsewhere = browser.new_context(base_url=live_server.url, **PHONE_CONTEXT)
    try:
        sign_in(elsewhere.new_page(), "admin")
        context.clear_cookies()
        context.add_cookies(elsewhere.cookies())
    finally:
        elsewhere.close()
    expect_an_empty_appeal_form(page)
    assert drafts(page) == [], "another person's draft is dropped, not kept for later"


def test_a_draft_typed_with_nobody_signed_in_lives_an_hour_and_goes_once_sent(page: Page, live_server: LiveServer) -> None:
    start = datetime.now().astimezone()
    page.clock.install(time=start)
    page.goto("/suggest")
    page.locator("#category").select_option("facilities")
    page.locator("#description").fill("小区门口的路灯坏了两个星期，晚上很黑。")
    page.locator("#submitter_name").fill("刘阿姨")
    page.locator("#submitter_phone").fill(PHONE)
    expect(page.locator("#submitter_phone")).to_have_value(PHONE)
    page.clock.set_system_time(start + timedelta(minutes=50))
    page.reload()
    expect(page.locator("#submitter_phone")).to_have_value(PHONE)  # back within the hour: still there
    expect(page.locator('[data-form-note="draft-restored"]')).to_be_visible()
    assert_accessible(page)

    page.clock.set_system_time(start + timedelta(minutes=111))  # the hour since the last keystroke is over
    page.reload()
    expect(page.locator("#submitter_name")).to_have_value("")
    expect(page.locator("#submitter_phone")).to_have_value("")
    expect(page.locator("#description")).to_have_value("")
    assert drafts(page) == []

    page.locator("#category").select_option("facilities")
    page.locator("#description").fill("楼道里堆满了杂物，老人上下楼很危险。")
    page.locator("#submitter_phone").fill(PHONE)
    assert len(drafts(page)) == 1
    page.locator("form.form button[type=submit]").click()
    page.wait_for_url(re.compile(r"/track/"))
    assert drafts(page) == [], "the server has the suggestion: its draft is gone"
