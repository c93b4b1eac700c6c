"""The phone's copy of the matching rule (docs/policies.md, "Facets and the matching rule") gives the
server's answers, in a real Chromium:

1. `policyMatches` of pwa/js/field.js, the file as served (loaded as a module, with an export line
   added so the test can reach it), run over the enterprises × policies table of
   tests/unit/test_policy_matching.py, gives that table's answers and `policy_facets.matches`'s;
2. and over every profile of the facet values (unknown and missing values too);
3. the grid worker's field home, drawn by `drawWorkList` from what the phone pulled, lists the
   enterprises the server's work list names, in its order, with its counts of matching policies not
   pushed yet (the demo data: some hundred enterprises × 96 policies).

The records handed to `policyMatches` have the field pull's shape (docs/sync.md): a policy's facets as
lists of values, an enterprise's as one value each.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Route
from sqlalchemy import select

from server.models import User
from server.services import enterprises, policies
from server.services import policy_facets as facets
from server.services.appeal_scope import grid_places_clause
from server.services.appeals import utc_now
from server.services.field_sync import EnterpriseData, PolicyData
from server.services.policy_facets import Profile
from tests.browser.conftest import LiveServer
from tests.browser.test_field_offline import field_ready, in_db, sign_in
from tests.browser.waiting import wait_until
from tests.unit.test_policy_matching import ENTERPRISES, EXPECTED, POLICIES

PWA_JS = Path(__file__).resolve().parents[2] / "pwa" / "js"
ORIGIN = "http://phone.test"  # answered by the test itself: no server needed to run the rule


def policy_record(policy: Any) -> dict[str, list[str]]:
    """A policy as the field pull gives it to the phone (`_policy_data`: its facets as lists)."""
    return facets.lists_of(policy)


def enterprise_record(profile: Profile) -> dict[str, str | None]:
    """An enterprise as the field pull gives it to the phone (`_enterprise_data`: one value per facet)."""
    return asdict(profile)


def test_the_records_have_the_pulls_shape() -> None:
    """The keys handed to `policyMatches` below are the ones the pull sends, so the test runs what a phone runs."""
    assert set(policy_record(next(iter(POLICIES.values())))) <= set(PolicyData.__struct_fields__)
    assert set(enterprise_record(next(iter(ENTERPRISES.values())))) <= set(EnterpriseData.__struct_fields__)


@pytest.fixture(scope="module")
def rule_page(browser: Browser) -> Iterator[Page]:
    """One blank page with field.js loaded as a module; `window.policyMatches` is the file's own function."""
    context = browser.new_context()

    def answer(route: Route) -> None:
        path = route.request.url.removeprefix(ORIGIN).split("?")[0]
        if path == "/":
            route.fulfill(status=200, content_type="text/html", body="<!doctype html><title>rule</title>")
            return
        name = path.removeprefix("/static/js/")
        source = PWA_JS / name
        if "/" in name or not source.is_file():
            route.fulfill(status=404, body="")
            return
        text = source.read_text(encoding="utf-8")
        if name == "field.js" and not re.search(r"export\s*\{[^}]*\bpolicyMatches\b", text):
            text += "\nexport { policyMatches };\n"
        route.fulfill(status=200, content_type="text/javascript", body=text)

    context.route(f"{ORIGIN}/**", answer)
    page = context.new_page()
    page.goto(f"{ORIGIN}/")
    page.evaluate("async () => { window.policyMatches = (await import('/static/js/field.js')).policyMatches; }")
    assert page.evaluate("typeof window.policyMatches") == "function", "pwa/js/field.js defines policyMatches"
    yield page
    context.close()


def phone_answers(page: Page, policies_by_name: dict[str, Any], profiles: list[Profile]) -> list[set[str]]:
    """Per profile, the names of the policies `policyMatches` says it matches (one evaluate for all of them)."""
    names = list(policies_by_name)
    found: list[list[int]] = page.evaluate(
        """([policies, enterprises]) => enterprises.map((e) =>
            policies.map((p, i) => (window.policyMatches(p, e) ? i : -1)).filter((i) => i >= 0))""",
        [[policy_record(policies_by_name[n]) for n in names], [enterprise_record(p) for p in profiles]],
    )
    return [{names[i] for i in indexes} for indexes in found]


def test_the_phone_gives_the_rule_tables_answers(rule_page: Page) -> None:
    labels = list(ENTERPRISES)
    answers = dict(zip(labels, phone_answers(rule_page, POLICIES, [ENTERPRISES[n] for n in labels]), strict=True))
    for enterprise in labels:
        server = {name for name, policy in POLICIES.items() if facets.matches(policy, ENTERPRISES[enterprise])}
        assert answers[enterprise] == EXPECTED[enterprise] == server, enterprise


def test_the_phone_agrees_with_the_server_on_every_profile(rule_page: Page) -> None:
    """Every combination of facet values, plus a missing value and one the server does not know."""
    values = [[*facet.values, None, "unknown"] for facet in facets.FACETS]
    profiles = [Profile(*combination) for combination in itertools.product(*values)]
    differ = []  # (profile, the policies on which the phone and the server disagree)
    for profile, phone in zip(profiles, phone_answers(rule_page, POLICIES, profiles), strict=True):
        server = {name for name, policy in POLICIES.items() if facets.matches(policy, profile)}
        if phone != server:
            differ.append((profile, sorted(phone ^ server)))
    assert not differ, f"{len(differ)} of {len(profiles)} profiles differ, first: {differ[:3]}"


# --- the work list the phone draws ------------------------------------------------------------------------

WORK_ITEM = re.compile(r"/field/visit\?enterprise=([0-9a-f-]{36})$")


def server_work_list(server: LiveServer, limit: int) -> tuple[list[tuple[str, int]], int]:
    """The demo grid worker's work list as the server computes it (the same call as the field home)."""

    async def read(session: Any) -> tuple[list[tuple[str, int]], int]:
        worker = await session.scalar(select(User).where(User.username == "grid"))
        today = policies.local_today(server.settings.tz, utc_now())
        items, total = await enterprises.work_list(session, worker.id, grid_places_clause(worker.place_id), today, limit=limit)
        return [(str(i.enterprise.id), i.unpushed_count) for i in items], total

    return in_db(server.settings, read)


def test_the_phone_draws_the_servers_work_list(page: Page, live_server: LiveServer) -> None:
    sign_in(page, "grid")
    page.goto("/field")
    field_ready(page)
    wait_until(page, """async () => {
        const user = document.getElementById("field-app").dataset.worker;
        return (await ShanzhiOutbox.device(user)).pulledAt && (await ShanzhiOutbox.refs(user, "policy")).length > 0;
    }""", timeout=20_000, interval=250)
    shown = int(page.locator("[data-work-list]").get_attribute("data-shown") or "10")
    expected, total = server_work_list(live_server, shown)
    assert expected and total > len(expected), "the demo grid worker has more enterprises to visit than the home shows"

    # Empty the list the server rendered and have the phone draw it again from its pulled copy.
    page.evaluate("""() => {
        document.querySelector("[data-work-list]").replaceChildren();
        new BroadcastChannel("shanzhi-outbox").postMessage({ type: "refs-changed" });
    }""")
    wait_until(page, "() => document.querySelectorAll('[data-work-list] > li').length > 0", timeout=10_000)
    drawn: list[dict[str, str]] = page.evaluate("""() => [...document.querySelectorAll("[data-work-list] > li")].map((li) => ({
        href: li.querySelector("a").getAttribute("href"), note: li.querySelector(".small")?.textContent || "" }))""")
    phone = []
    for item in drawn:
        match = WORK_ITEM.search(item["href"])
        assert match, item
        counts = re.findall(r"\d+", item["note"])
        phone.append((match.group(1), int(counts[0]) if counts else 0))
    assert phone == expected
    more = page.locator("[data-work-more]")
    assert more.is_visible() and re.findall(r"\d+", more.inner_text()) == [str(total - len(expected))]
