"""The policy service in a phone-sized Chromium (docs/policies.md):

1. A QR guide opened by its poster's URL lists exactly its audience's live policies, counts one scan,
   and opens again with no network (the service worker kept it), counting nothing more.
2. A grid worker, offline, records a visit to an enterprise of the registry and pushes two of its
   matching policies from the list the phone computed; back online it syncs once, and the reach
   figures count both pushes.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from playwright.sync_api import BrowserContext, Page, expect
from sqlalchemy import func, select

from server.models import Enterprise, PolicyGuide, PolicyPush, SyncMutation, User
from server.services import enterprises, policies
from server.services.appeal_scope import grid_places_clause
from server.services.appeals import utc_now
from tests.browser.axe import assert_accessible
from tests.browser.conftest import LiveServer
from tests.browser.test_field_offline import field_ready, in_db, sign_in, wait_for_saved_pages
from tests.browser.waiting import wait_until

PAGE_SAVED = """async (path) => Boolean(navigator.serviceWorker.controller)
    && Boolean(await (await caches.open("shanzhi-pages")).match(path))"""


def guide_state(server: LiveServer, slug: str) -> tuple[int, list[str]]:
    async def read(session: Any) -> tuple[int, list[str]]:
        guide = await session.scalar(select(PolicyGuide).where(PolicyGuide.slug == slug))
        today = policies.local_today(server.settings.tz, utc_now())
        return guide.scan_count, [p.title for p in await policies.guide_policies(session, guide, today)]

    return in_db(server.settings, read)


def listed_titles(page: Page) -> list[str]:
    return page.locator("[data-guide-policies] [data-policy-title]").all_inner_texts()


def test_a_guide_opened_from_its_qr_code_opens_again_offline(context: BrowserContext, page: Page, live_server: LiveServer) -> None:
    slug = in_db(live_server.settings, lambda s: s.scalar(select(PolicyGuide.slug).order_by(PolicyGuide.slug).limit(1)))
    scans, expected = guide_state(live_server, slug)
    assert expected, "the demo guide lists policies"

    page.goto(f"/g/{slug}")
    assert [t.strip() for t in listed_titles(page)] == expected
    assert_accessible(page)
    wait_until(page, PAGE_SAVED, arg=f"/g/{slug}", timeout=20_000, interval=250)
    page.wait_for_timeout(500)  # the server writes the counts it holds every 0.2 s here
    # One open counted; the service worker's own save of the page is not an open.
    assert guide_state(live_server, slug)[0] == scans + 1

    context.set_offline(True)
    page.goto(f"/g/{slug}")
    assert [t.strip() for t in listed_titles(page)] == expected
    assert page.evaluate("navigator.onLine") is False
    page.wait_for_timeout(500)
    assert guide_state(live_server, slug)[0] == scans + 1  # an open with no network reaches nobody


def _target(server: LiveServer) -> dict[str, Any]:
    """A key or new enterprise the demo grid worker serves, with two matching policies not pushed yet."""

    async def find(session: Any) -> dict[str, Any]:
        worker = await session.scalar(select(User).where(User.username == "grid"))
        today = policies.local_today(server.settings.tz, utc_now())
        # One the field home lists (its first ten), so the test can see it there too.
        items, _total = await enterprises.work_list(session, worker.id, grid_places_clause(worker.place_id), today, limit=10)
        item = next(i for i in items if i.unpushed_count >= 2)
        chosen = [p.id for p in item.unpushed[:2]]
        before = {r.policy.id: r.pushed for r in await policies.reach(session, today=today, policy_ids=chosen)}
        return {"enterprise": item.enterprise.id, "name": item.enterprise.name, "policies": chosen, "reached_before": before}

    return in_db(server.settings, find)


def test_an_offline_visit_pushes_two_policies_and_syncs_once(context: BrowserContext, page: Page, live_server: LiveServer) -> None:
    target = _target(live_server)
    sign_in(page, "grid")
    field_ready(page)
    wait_for_saved_pages(page)
    # The phone has pulled the grid's enterprises and the policies it will match offline.
    wait_until(page, """async () => {
        const user = document.getElementById("field-app").dataset.worker;
        return (await ShanzhiOutbox.refs(user, "enterprise")).length > 0 && (await ShanzhiOutbox.refs(user, "policy")).length > 0;
    }""", timeout=20_000, interval=250)
    # The work list on the field home names the enterprise (drawn from the phone's copy).
    page.goto("/field")
    field_ready(page)
    expect(page.locator("[data-work-list]")).to_contain_text(target["name"])

    context.set_offline(True)
    page.goto("/field/visit")
    field_ready(page)
    assert page.evaluate("navigator.onLine") is False
    page.locator("#enterprise_id").select_option(str(target["enterprise"]))
    expect(page.locator("#subject_name")).to_have_value(target["name"])
    for policy_id in target["policies"]:
        page.locator(f'[data-push-list] input[value="{policy_id}"]').check()
    assert_accessible(page)
    page.locator("form[data-field-form] button[type=submit]").click()
    expect(page.locator("[data-form-status].alert-success")).to_be_visible()

    def pushed(session: Any) -> Any:
        return session.scalar(select(func.count()).select_from(PolicyPush).where(
            PolicyPush.enterprise_id == target["enterprise"], PolicyPush.policy_id.in_(target["policies"])))

    assert in_db(live_server.settings, pushed) == 0  # nothing reached the server while offline

    context.set_offline(False)
    page.goto("/field/outbox")
    field_ready(page)
    expect(page.locator('[data-outbox-list] > li[data-state-name="sent"]')).to_have_count(1, timeout=20_000)

    async def check(session: Any) -> dict[str, Any]:
        rows = list(await session.scalars(select(PolicyPush).where(
            PolicyPush.enterprise_id == target["enterprise"], PolicyPush.policy_id.in_(target["policies"]))))
        visit_ids = {r.visit_id for r in rows}
        receipts = await session.scalar(select(func.count()).select_from(SyncMutation).where(SyncMutation.entity_id.in_(visit_ids)))
        today = policies.local_today(live_server.settings.tz, utc_now())
        reach = {r.policy.id: r.pushed for r in await policies.reach(session, today=today, policy_ids=target["policies"])}
        enterprise = await session.get(Enterprise, target["enterprise"])
        return {"rows": rows, "visits": visit_ids, "receipts": receipts, "reach": reach, "last": enterprise.last_visited_at}

    found = in_db(live_server.settings, check)
    assert len(found["rows"]) == 2 and all(r.matched for r in found["rows"])
    assert len(found["visits"]) == 1 and found["receipts"] == 1
    assert found["reach"] == {UUID(str(p)): target["reached_before"][p] + 1 for p in target["policies"]}
    assert found["last"] is not None


def test_an_outcome_recorded_offline_reaches_the_reach_page(context: BrowserContext, page: Page, live_server: LiveServer) -> None:
    """The worker hears the enterprise was granted the policy, records it with no network, and it syncs."""

    async def awaiting(session: Any) -> dict[str, Any]:
        worker = await session.scalar(select(User).where(User.username == "grid"))
        lines = await enterprises.pushes_of_worker(session, worker.id, grid_places_clause(worker.place_id))
        line = next(x for x in lines if x.push.outcome.value == "pushed")
        return {"push": line.push.id, "policy": line.push.policy_id}

    target = in_db(live_server.settings, awaiting)
    sign_in(page, "grid")
    field_ready(page)
    wait_for_saved_pages(page)
    wait_until(page, """async () => {
        const user = document.getElementById("field-app").dataset.worker;
        return (await ShanzhiOutbox.refs(user, "policy_push")).length > 0;
    }""", timeout=20_000, interval=250)

    context.set_offline(True)
    page.goto("/field/outcomes")
    field_ready(page)
    page.locator("#push_id").select_option(str(target["push"]))
    page.locator('input[name="outcome"][value="granted"]').check()
    expect(page.locator("#amount_yuan")).to_be_visible()
    page.locator("#amount_yuan").fill("12,000")
    assert_accessible(page)
    page.locator("form[data-field-form] button[type=submit]").click()
    expect(page.locator("[data-form-status].alert-success")).to_be_visible()

    context.set_offline(False)
    page.goto("/field/outbox")
    field_ready(page)
    expect(page.locator('[data-outbox-list] > li[data-state-name="sent"]')).to_have_count(1, timeout=20_000)

    async def check(session: Any) -> Any:
        return await session.get(PolicyPush, target["push"])

    row = in_db(live_server.settings, check)
    assert (row.outcome.value, row.amount_yuan) == ("granted", 12000)
