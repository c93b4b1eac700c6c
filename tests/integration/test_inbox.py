"""The in-app inbox (X6): a user's own notifications, newest first, linking to the case; the unread count in the
menu; marking everything read."""

from __future__ import annotations

import re

import pytest
from litestar.testing import AsyncTestClient

from server.models import Role
from server.settings import Settings
from tests.helpers import Web
from tests.integration.staff_cases import Staffing, make_staffing, sign_in

UNREAD_BADGE = re.compile(r'<span class="badge nav-count">(\d+)<')


@pytest.fixture
async def staffing(settings: Settings, people: dict[Role, str]) -> Staffing:
    return await make_staffing(settings)


async def test_staff_see_new_appeals_newest_first_with_links(client: AsyncTestClient, web: Web, staffing: Staffing) -> None:
    first = await staffing.submit()
    second = await staffing.submit()
    await sign_in(client, web, "staff")
    page = (await client.get("/inbox")).text
    assert page.index(f"New appeal {second}") < page.index(f"New appeal {first}")
    assert f'<a href="/appeals/{first}">New appeal {first}</a>' in page
    assert UNREAD_BADGE.findall(page) == ["2"]


async def test_marking_read_clears_the_badge_for_this_user_only(client: AsyncTestClient, web: Web, staffing: Staffing) -> None:
    reference = await staffing.transferred("cgj")
    await sign_in(client, web, "dept-cgj")
    page = (await client.get("/department")).text
    assert UNREAD_BADGE.findall(page) == ["1"]
    inbox = (await client.get("/inbox")).text
    assert f"Case {reference} was transferred to you" in inbox and "Mark all as read" in inbox

    response = await web.post_form("/inbox/read", {})
    assert response.status_code == 303 and response.headers["location"] == "/inbox"
    inbox = (await client.get("/inbox")).text
    assert UNREAD_BADGE.findall(inbox) == []
    assert f"Case {reference} was transferred to you" in inbox  # still listed, no longer new
    assert "Mark all as read" not in inbox

    await web.logout()
    await sign_in(client, web, "admin")  # the admin's own notice of the new case is still unread
    assert UNREAD_BADGE.findall((await client.get("/inbox")).text) == ["1"]


async def test_an_empty_inbox_says_so(client: AsyncTestClient, web: Web, staffing: Staffing) -> None:
    await staffing.submit()  # staff are told, volunteers are not
    await sign_in(client, web, "volunteer")
    page = (await client.get("/inbox")).text
    assert "No messages yet." in page and UNREAD_BADGE.findall(page) == []
    assert 'href="/inbox"' in page  # the menu entry is there for everyone signed in


async def test_inbox_needs_sign_in(client: AsyncTestClient) -> None:
    response = await client.get("/inbox")
    assert response.status_code == 303 and response.headers["location"].startswith("/login?next=/inbox")
