"""Appeal statistics on a phone: the public summary, the staff dashboard and its filter, and Open311 keys."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from server.services.demo import DEMO_PASSWORD
from tests.browser.axe import assert_accessible
from tests.browser.conftest import LiveServer


def in_english(page: Page) -> None:
    page.goto("/lang/en?next=/login")


def sign_in(page: Page, username: str) -> None:
    page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_public_summary_for_anyone(page: Page, live_server: LiveServer) -> None:
    in_english(page)
    page.goto("/summary/appeals")
    expect(page.get_by_role("heading", name="Appeals: public summary")).to_be_visible()
    expect(page.get_by_text("Satisfaction rate").first).to_be_visible()
    expect(page.get_by_role("link", name="Open the suggestion box")).to_be_visible()
    assert_accessible(page)
    assert_nothing_clipped(page)


# Tables on a 390 px phone stack their cells (or scroll visibly): nothing is cut off at the edge.
CLIPPED = """() => [...document.querySelectorAll("table")].filter((table) => {
  const box = table.closest(".table-wrap") || table.parentElement;
  return box.scrollWidth > box.clientWidth + 1;
}).length + (document.scrollingElement.scrollWidth > window.innerWidth ? 100 : 0)"""


def assert_nothing_clipped(page: Page) -> None:
    assert page.evaluate(CLIPPED) == 0


def test_staff_pages_fit_a_phone(page: Page, live_server: LiveServer) -> None:
    """The ledger (cards, search first) and a case page with its whistle table fit 390 px."""
    in_english(page)
    sign_in(page, "staff")
    page.goto("/appeals")
    expect(page.get_by_role("searchbox", name="Search")).to_be_visible()
    assert_nothing_clipped(page)
    assert_accessible(page)
    page.locator("#ledger-results a[href^='/appeals/']").first.click()
    assert_nothing_clipped(page)
    assert_accessible(page)


def test_staff_filter_the_dashboard_by_period(page: Page, live_server: LiveServer) -> None:
    in_english(page)
    sign_in(page, "staff")
    page.get_by_role("link", name="Appeal statistics").click()
    expect(page.get_by_role("heading", name="Appeal statistics", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="By department")).to_be_visible()
    assert_accessible(page)
    page.get_by_label("Received from").fill("2026-01-01")
    page.get_by_label("Received until").fill("2026-01-31")
    page.get_by_label("Department", exact=True).select_option("cgj")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"from=2026-01-01&to=2026-01-31&department=cgj"))
    expect(page.get_by_label("Received from")).to_have_value("2026-01-01")
    expect(page.locator("[aria-labelledby=departments-title] tbody tr")).to_have_count(1)
    expect(page.locator("[aria-labelledby=departments-title] tbody")).to_contain_text("区城管")
    assert_accessible(page)


def test_admin_creates_and_revokes_an_open311_key(page: Page, live_server: LiveServer) -> None:
    in_english(page)
    sign_in(page, "admin")
    page.get_by_role("link", name="Open311 API keys").click()
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_text("Please name the system that will use the key.")).to_be_visible()
    page.get_by_label("System name").fill("12345 hotline platform")
    page.get_by_role("button", name="Create key").click()
    expect(page.locator("#new-key")).to_have_text(re.compile(r"^sz311_"))
    assert_accessible(page)
    page.get_by_role("button", name="Revoke 12345 hotline platform").click()
    expect(page.get_by_text(re.compile(r"^Revoked"))).to_be_visible()
    expect(page.locator("#new-key")).to_have_count(0)
