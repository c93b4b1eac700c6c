"""Signing in and out, sessions, throttling, redirects and the language switch, as a browser sees them."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator

import pytest
from argon2 import PasswordHasher
from httpx import Response
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.app import create_app
from server.models import Role, User
from server.security import SESSION_COOKIE
from server.settings import Settings
from server.web import ROLE_HOME
from tests.conftest import TEST_PASSWORD
from tests.helpers import Web


def session_cookie_header(response: Response) -> str | None:
    """The Set-Cookie header for the session cookie, if the response sets one."""
    for header in response.headers.get_list("set-cookie"):
        if header.startswith(f"{SESSION_COOKIE}="):
            return header
    return None


def session_cookie_value(response: Response) -> str:
    header = session_cookie_header(response)
    assert header is not None, "the response sets no session cookie"
    return header.split(";", 1)[0].split("=", 1)[1].strip('"')


def input_value(html: str, name: str) -> str:
    match = re.search(rf'<input[^>]*name="{name}"[^>]*value="([^"]*)"', html, re.S)
    assert match, f"no input {name} with a value"
    return match.group(1)


@pytest.mark.parametrize("role", list(Role), ids=lambda role: role.value)
async def test_login_redirects_to_role_home_showing_the_name(
    role: Role, client: AsyncTestClient, web: Web, people: dict[Role, str]
) -> None:
    """Each role lands on its own home page, which greets the user by name."""
    response = await web.login(people[role], TEST_PASSWORD)
    assert response.status_code == 303
    assert response.headers["location"] == ROLE_HOME[role]
    home = await client.get(ROLE_HOME[role])
    assert home.status_code == 200
    assert f"测试{role.value}" in home.text
    # Roles whose own areas are not built yet are told what they can do now, not a bare greeting.
    waiting = {Role.BUILDING_HEAD, Role.RESIDENT_REP, Role.STATION_OPERATOR, Role.CANTEEN_MANAGER, Role.VOLUNTEER}
    assert ('id="can-do-now"' in home.text) is (role in waiting)
    if role in waiting:
        for href in ('href="/summary/appeals"', 'href="/suggest"', 'href="/track"'):
            assert href in home.text


async def test_login_honours_a_same_site_next(web: Web, people: dict[Role, str]) -> None:
    """A login link that came from a page returns there."""
    response = await web.login(people[Role.ADMIN], TEST_PASSWORD, next_path="/places?view=all")
    assert response.status_code == 303
    assert response.headers["location"] == "/places?view=all"


@pytest.mark.parametrize("target", ["//evil.example", "https://evil.example/x", "/\\evil"])
async def test_login_ignores_an_off_site_next(target: str, web: Web, people: dict[Role, str]) -> None:
    """A crafted login link cannot bounce the user to another site."""
    response = await web.login(people[Role.STAFF], TEST_PASSWORD, next_path=target)
    assert response.status_code == 303
    assert response.headers["location"] == ROLE_HOME[Role.STAFF]


async def test_wrong_password_is_refused_keeping_the_username(web: Web, people: dict[Role, str]) -> None:
    """A wrong password shows a Chinese error and keeps what the user typed as username."""
    response = await web.login(people[Role.GRID_WORKER], "not-the-password")
    assert response.status_code == 400
    assert "用户名或密码错误" in response.text
    assert input_value(response.text, "username") == people[Role.GRID_WORKER]
    assert session_cookie_header(response) is None


async def test_unknown_username_gets_the_same_error(web: Web, people: dict[Role, str]) -> None:
    """An unknown username is not distinguishable from a wrong password."""
    response = await web.login("nobody-here", TEST_PASSWORD)
    assert response.status_code == 400
    assert "用户名或密码错误" in response.text


@pytest.mark.parametrize(("username", "password"), [("", ""), ("admin", ""), ("", TEST_PASSWORD), ("   ", "x")])
async def test_empty_fields_ask_for_both(username: str, password: str, web: Web, people: dict[Role, str]) -> None:
    """Missing username or password is answered with a Chinese prompt, not a login attempt."""
    response = await web.login(username, password)
    assert response.status_code == 400
    assert "请输入用户名和密码" in response.text


async def test_login_without_csrf_token_is_refused_in_chinese(client: AsyncTestClient, people: dict[Role, str]) -> None:
    """A login form posted without its CSRF token gets a readable "page expired" page."""
    response = await client.post("/login", data={"username": people[Role.ADMIN], "password": TEST_PASSWORD})
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert "页面已过期" in response.text
    assert '<html lang="zh-CN">' in response.text
    assert "Traceback" not in response.text
    assert "CSRF token verification failed" not in response.text
    assert session_cookie_header(response) is None


@pytest.fixture
async def limited_client(settings: Settings) -> AsyncIterator[AsyncTestClient]:
    """A client of an app that allows three login attempts a minute."""
    app = create_app(dataclasses.replace(settings, login_rate_limit=3))
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as test_client:
        test_client.follow_redirects = False
        yield test_client


async def test_too_many_failures_block_even_the_right_password(
    limited_client: AsyncTestClient, people: dict[Role, str]
) -> None:
    """After the limit of failures from this address, even the right password is refused from it for a
    while (the owner signing in from elsewhere is not: tests/unit/test_login_guard.py)."""
    web = Web(limited_client)
    for _ in range(3):
        failed = await web.login(people[Role.ADMIN], "wrong-password")
        assert failed.status_code == 400
    response = await web.login(people[Role.ADMIN], TEST_PASSWORD)
    assert response.status_code == 429
    assert "尝试次数过多" in response.text
    assert input_value(response.text, "username") == people[Role.ADMIN]
    assert session_cookie_header(response) is None
    assert (await limited_client.get("/admin")).status_code == 303


async def test_failures_below_the_limit_do_not_block(limited_client: AsyncTestClient, people: dict[Role, str]) -> None:
    """A couple of typos still let the user in."""
    web = Web(limited_client)
    for _ in range(2):
        assert (await web.login(people[Role.ADMIN], "wrong-password")).status_code == 400
    response = await web.login(people[Role.ADMIN], TEST_PASSWORD)
    assert response.status_code == 303


async def test_login_issues_a_new_session_id(client: AsyncTestClient, web: Web, people: dict[Role, str]) -> None:
    """A session id planted before login is never the one that becomes signed in."""
    client.cookies.set(SESSION_COOKIE, "planted-session-id", domain="testserver.local")
    response = await web.login(people[Role.ADMIN], TEST_PASSWORD)
    assert response.status_code == 303
    new_id = session_cookie_value(response)
    assert new_id not in ("", "planted-session-id")


async def test_signing_in_again_retires_the_previous_session(
    client: AsyncTestClient, web: Web, people: dict[Role, str]
) -> None:
    """Signing in again rotates the id, and the old id no longer signs anyone in."""
    first = session_cookie_value(await web.login(people[Role.ADMIN], TEST_PASSWORD))
    second_response = await web.login(people[Role.ADMIN], TEST_PASSWORD)
    assert second_response.status_code == 303
    second = session_cookie_value(second_response)
    assert second != first
    assert (await client.get("/admin")).status_code == 200
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, first, domain="testserver.local")
    response = await client.get("/admin")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=/admin")


async def test_session_cookie_lasts_30_days_and_is_protected(web: Web, people: dict[Role, str]) -> None:
    """Field phones stay signed in for 30 days; the cookie is hidden from scripts and other sites' posts."""
    header = session_cookie_header(await web.login(people[Role.GRID_WORKER], TEST_PASSWORD))
    assert header is not None
    attributes = [part.strip().lower() for part in header.split(";")[1:]]
    assert "max-age=2592000" in attributes
    assert "httponly" in attributes
    assert "samesite=lax" in attributes


async def test_logout_ends_the_session(client: AsyncTestClient, web: Web, people: dict[Role, str]) -> None:
    """After signing out, protected pages ask to sign in again and the login page says so."""
    await web.login(people[Role.STAFF], TEST_PASSWORD)
    assert (await client.get("/staff")).status_code == 200
    response = await web.logout()
    assert response.status_code == 303
    signed_out_page = await client.get(response.headers["location"])
    assert signed_out_page.status_code == 200
    assert "您已退出登录" in signed_out_page.text
    protected = await client.get("/staff")
    assert protected.status_code == 303
    assert protected.headers["location"].startswith("/login?next=/staff")


async def test_a_late_answer_for_the_previous_session_does_not_sign_the_next_user_out(
    client: AsyncTestClient, web: Web, people: dict[Role, str]
) -> None:
    """On a shared phone a page (or the service worker) may still be loading with the old session when
    someone else signs in; its answer, arriving late, must not end the new session."""
    old = session_cookie_value(await web.login(people[Role.GRID_WORKER], TEST_PASSWORD))
    await web.logout()
    await web.login(people[Role.STAFF], TEST_PASSWORD)
    late = await client.get("/field", headers={"cookie": f"{SESSION_COOKIE}={old}"})
    assert late.status_code == 303 and late.headers["location"].startswith("/login?next=/field")
    assert session_cookie_header(late) is None
    assert (await client.get("/staff")).status_code == 200


async def test_logout_needs_the_csrf_token(client: AsyncTestClient, web: Web, people: dict[Role, str]) -> None:
    """Another site cannot sign the user out with a bare POST."""
    await web.login(people[Role.STAFF], TEST_PASSWORD)
    response = await client.post("/logout")
    assert response.status_code == 403
    assert (await client.get("/staff")).status_code == 200


async def test_deactivated_user_is_signed_out(
    client: AsyncTestClient, web: Web, people: dict[Role, str], db: AsyncSession
) -> None:
    """Deactivating an account ends its open sessions at the next request."""
    await web.login(people[Role.SUPERVISOR], TEST_PASSWORD)
    assert (await client.get("/supervisor")).status_code == 200
    user = await db.scalar(select(User).where(User.username == people[Role.SUPERVISOR]))
    assert user is not None
    user.is_active = False
    await db.commit()
    response = await client.get("/supervisor")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=/supervisor")
    login_page = await client.get("/login")
    assert login_page.status_code == 200
    assert "测试supervisor" not in login_page.text


async def test_deactivated_user_cannot_sign_in(web: Web, people: dict[Role, str], db: AsyncSession) -> None:
    """A deactivated account's right password is refused like a wrong one."""
    user = await db.scalar(select(User).where(User.username == people[Role.VOLUNTEER]))
    assert user is not None
    user.is_active = False
    await db.commit()
    response = await web.login(people[Role.VOLUNTEER], TEST_PASSWORD)
    assert response.status_code == 400
    assert "用户名或密码错误" in response.text


async def test_unknown_session_cookie_means_expired(client: AsyncTestClient) -> None:
    """An expired session sends the user to sign in, with a notice saying why."""
    client.cookies.set(SESSION_COOKIE, "no-such-session", domain="testserver.local")
    response = await client.get("/places")
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("/login?next=/places")
    assert "expired=1" in location
    login_page = await client.get(location)
    assert login_page.status_code == 200
    assert "登录已过期" in login_page.text


async def test_anonymous_visit_redirects_to_login_with_next(client: AsyncTestClient) -> None:
    """An anonymous visitor is sent to the login page, which remembers where they were going."""
    response = await client.get("/admin")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/admin"
    login_page = await client.get("/login?next=/admin")
    assert input_value(login_page.text, "next") == "/admin"


async def test_anonymous_htmx_request_is_told_to_navigate(client: AsyncTestClient) -> None:
    """An htmx swap cannot follow a redirect into a fragment; it gets HX-Redirect to the login page."""
    response = await client.get("/places", headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response.headers["hx-redirect"] == "/login?next=/places"


async def test_language_switch_to_english_and_back(client: AsyncTestClient) -> None:
    """The language switch changes every following page, and switches back."""
    response = await client.get("/lang/en?next=/login")
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    english = await client.get("/login")
    assert '<html lang="en">' in english.text
    assert "Sign in" in english.text
    assert "登录" not in english.text
    await client.get("/lang/zh_CN")
    chinese = await client.get("/login")
    assert '<html lang="zh-CN">' in chinese.text
    assert "登录" in chinese.text


async def test_unknown_language_changes_nothing(client: AsyncTestClient) -> None:
    """An unsupported language code leaves the current language as it is."""
    response = await client.get("/lang/fr")
    assert response.status_code == 303
    assert "shanzhi_lang" not in response.headers.get("set-cookie", "")
    assert '<html lang="zh-CN">' in (await client.get("/login")).text
    await client.get("/lang/en")
    await client.get("/lang/xx")
    assert '<html lang="en">' in (await client.get("/login")).text


async def test_language_switch_ignores_an_off_site_next(client: AsyncTestClient) -> None:
    """The language switch cannot be used as an open redirect."""
    response = await client.get("/lang/en?next=//evil.example")
    assert response.status_code == 303
    assert response.headers["location"] == "/"


async def test_anonymous_visitors_get_no_session_cookie(client: AsyncTestClient, web: Web) -> None:
    """Residents scanning a QR code leave no session behind."""
    for path in ("/login", "/offline", "/", "/manifest.webmanifest"):
        assert session_cookie_header(await client.get(path)) is None, path
    assert session_cookie_header(await web.login("nobody-here", "wrong-password")) is None


async def test_password_is_stored_as_argon2_hash(people: dict[Role, str], db: AsyncSession) -> None:
    """Only an argon2 hash of the password is kept."""
    user = await db.scalar(select(User).where(User.username == people[Role.ADMIN]))
    assert user is not None
    assert user.password_hash.startswith("$argon2id$")
    assert TEST_PASSWORD not in user.password_hash
    assert PasswordHasher().verify(user.password_hash, TEST_PASSWORD)


async def test_login_records_the_time(web: Web, people: dict[Role, str], db: AsyncSession) -> None:
    """A successful login is recorded on the account."""
    await web.login(people[Role.DEPARTMENT], TEST_PASSWORD)
    user = await db.scalar(select(User).where(User.username == people[Role.DEPARTMENT]))
    assert user is not None
    assert user.last_login_at is not None


async def test_signed_in_user_visiting_login_goes_home(client: AsyncTestClient, web: Web, people: dict[Role, str]) -> None:
    """A signed-in user opening the login page is sent on to their home page."""
    await web.login(people[Role.CANTEEN_MANAGER], TEST_PASSWORD)
    response = await client.get("/login")
    assert response.status_code == 303
    assert response.headers["location"] == ROLE_HOME[Role.CANTEEN_MANAGER]


async def test_the_form_token_cookie_outlives_a_browser_restart_like_the_session(client: AsyncTestClient, settings: Settings) -> None:
    """A grid worker's session survives closing the browser, and so must the form token: pages saved
    on the phone carry it, and a new one would turn every saved form (sign-out too) into 页面已过期."""
    response = await client.get("/login")
    cookies = [v for k, v in response.headers.multi_items() if k.lower() == "set-cookie" and v.startswith("shanzhi_csrf=")]
    assert len(cookies) == 1
    assert f"Max-Age={settings.session_max_age}" in cookies[0]
