"""Error responses as each client expects them (page, htmx fragment, JSON), and the headers every page carries."""

from __future__ import annotations

from litestar.testing import AsyncTestClient

from server.models import Role
from tests.conftest import TEST_PASSWORD
from tests.helpers import Web


async def test_unknown_page_is_a_chinese_404(client: AsyncTestClient) -> None:
    """A mistyped address shows a Chinese "page not found" page without internals."""
    response = await client.get("/no-such-page")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert '<html lang="zh-CN">' in response.text
    assert "页面不存在" in response.text
    assert "Traceback" not in response.text


async def test_unknown_page_follows_the_language_choice(client: AsyncTestClient) -> None:
    """After switching to English, the 404 page is in English."""
    await client.get("/lang/en")
    response = await client.get("/no-such-page")
    assert response.status_code == 404
    assert '<html lang="en">' in response.text
    assert "Page not found" in response.text
    assert "页面不存在" not in response.text


async def test_unknown_api_path_answers_json(client: AsyncTestClient) -> None:
    """API clients get JSON errors, not HTML pages."""
    response = await client.get("/api/x")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["status_code"] == 404
    assert body["error"]


async def test_other_roles_page_is_forbidden_in_chinese(web: Web, client: AsyncTestClient, people: dict[Role, str]) -> None:
    """A grid worker opening the admin page is told, in Chinese, that it is not theirs."""
    await web.login(people[Role.GRID_WORKER], TEST_PASSWORD)
    response = await client.get("/admin")
    assert response.status_code == 403
    assert '<html lang="zh-CN">' in response.text
    assert "无权访问" in response.text
    assert "Traceback" not in response.text


async def test_refused_htmx_request_gets_a_fragment(web: Web, client: AsyncTestClient, people: dict[Role, str]) -> None:
    """An htmx swap that is refused gets a message to swap in, not a whole page."""
    await web.login(people[Role.VOLUNTEER], TEST_PASSWORD)
    response = await client.get("/places", headers={"HX-Request": "true"})
    assert response.status_code == 403
    assert "<html" not in response.text
    assert "无权访问" in response.text


async def test_wrong_method_is_405(client: AsyncTestClient, web: Web) -> None:
    """A method the route does not offer is refused with 405 and a Chinese page."""
    token = await web.csrf()
    response = await client.delete("/login", headers={"x-csrftoken": token})
    assert response.status_code == 405
    assert "此处不支持该操作" in response.text
    assert "Traceback" not in response.text


async def test_malformed_login_body_is_a_chinese_client_error(client: AsyncTestClient, web: Web) -> None:
    """A garbled form body is a client error with a readable page, not a crash."""
    token = await web.csrf()
    response = await client.post(
        "/login",
        content=b"\xff\xfe\x00%%%&&==\xc3\x28username",
        headers={"content-type": "application/x-www-form-urlencoded", "x-csrftoken": token},
    )
    assert 400 <= response.status_code < 500
    assert response.headers["content-type"].startswith("text/html")
    assert '<html lang="zh-CN">' in response.text
    assert "Traceback" not in response.text


async def html_responses(client: AsyncTestClient, web: Web, people: dict[Role, str]) -> dict[str, object]:
    """A sample of HTML responses: pages, error pages, anonymous and signed in."""
    found = {
        "login": await client.get("/login"),
        "offline": await client.get("/offline"),
        "404": await client.get("/no-such-page"),
        "login error": await web.login("nobody-here", "wrong-password"),
    }
    await web.login(people[Role.STAFF], TEST_PASSWORD)
    found["home"] = await client.get("/staff")
    found["places"] = await client.get("/places")
    found["403"] = await client.get("/admin")
    found["403 fragment"] = await client.get("/admin", headers={"HX-Request": "true"})
    return found


async def test_every_html_response_carries_the_security_headers(
    client: AsyncTestClient, web: Web, people: dict[Role, str]
) -> None:
    """Every page forbids inline scripts, framing and MIME sniffing."""
    for name, response in (await html_responses(client, web, people)).items():
        headers = response.headers  # type: ignore[attr-defined]
        assert headers["content-type"].startswith("text/html"), name
        csp = headers["content-security-policy"]
        assert "'unsafe-inline'" not in csp, name
        assert "'unsafe-eval'" not in csp, name
        assert "frame-ancestors 'none'" in csp, name
        assert "script-src 'self'" in csp, name
        assert headers["x-content-type-options"] == "nosniff", name
        assert headers.get("referrer-policy"), name


async def test_html_responses_are_never_cached_and_vary_on_htmx(
    client: AsyncTestClient, web: Web, people: dict[Role, str]
) -> None:
    """Pages may hold personal data and differ for htmx swaps: no shared caching."""
    for name, response in (await html_responses(client, web, people)).items():
        headers = response.headers  # type: ignore[attr-defined]
        assert "hx-request" in headers.get("vary", "").lower(), name
        assert "no-store" in headers.get("cache-control", ""), name
