"""Walk the authorization table against the running app: every route, every role, anonymous too."""

from __future__ import annotations

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from server.models import Role
from tests.authz_table import ANONYMOUS, PRINCIPALS, TABLE
from tests.conftest import TEST_PASSWORD
from tests.helpers import Web


def declared_routes(app: Litestar) -> set[tuple[str, str]]:
    found = set()
    for route in app.routes:
        for method in getattr(route, "methods", set()):
            if method != "OPTIONS":  # CORS preflight, answered by Litestar itself
                found.add((method, route.path))
    return found


def test_every_route_is_in_the_table(app: Litestar) -> None:
    table = {(row.method, row.route) for row in TABLE}
    served = declared_routes(app)
    assert served - table == set(), "routes missing from tests/authz_table.py"
    assert table - served == set(), "rows in tests/authz_table.py for routes the app does not serve"


def test_every_handler_declares_its_access(app: Litestar) -> None:
    missing = [
        (route.path, handler.handler_name)
        for route in app.routes
        for handler in getattr(route, "route_handlers", [])
        if "access" not in handler.opt and not handler.handler_name.endswith("options_handler")
    ]
    assert missing == []


def principal_id(principal: str | Role) -> str:
    return principal if isinstance(principal, str) else principal.value


@pytest.mark.parametrize("principal", PRINCIPALS, ids=principal_id)
async def test_table_holds_against_the_app(
    principal: str | Role, client: AsyncTestClient, web: Web, people: dict[Role, str]
) -> None:
    if principal != ANONYMOUS:
        response = await web.login(people[principal], TEST_PASSWORD)  # type: ignore[index]
        assert response.status_code == 303, response.text
    wrong: list[str] = []
    for row in TABLE:
        if row.route == "/logout":
            continue  # walked last: it ends the session
        status, refused = await attempt(client, web, row.method, row.path, dict(row.data))
        if refused == row.allows(principal):
            wrong.append(f"{row.method} {row.path}: status {status}, expected {'allowed' if row.allows(principal) else 'refused'}")
    logout = next(row for row in TABLE if row.route == "/logout")
    status, refused = await attempt(client, web, "POST", "/logout", {})
    if refused == logout.allows(principal):
        wrong.append(f"POST /logout: status {status}")
    assert wrong == []


async def attempt(client: AsyncTestClient, web: Web, method: str, path: str, data: dict[str, str]) -> tuple[int, bool]:
    """(status, refused). Refused means 401/403, or a redirect to the login page that comes back here."""
    if method in {"GET", "HEAD"}:
        response = await client.request(method, path)
    else:
        token = await web.csrf("/offline")
        response = await client.request(method, path, data={**data, "_csrf_token": token})
    location = response.headers.get("location", "")
    refused = response.status_code in {401, 403} or (
        response.status_code in {302, 303} and location.startswith("/login?next=")
    )
    return response.status_code, refused
