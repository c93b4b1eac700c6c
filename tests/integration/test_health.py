"""The health probe: OK with a reachable database, a 503 with a reason when it is not."""

from __future__ import annotations

import dataclasses

from litestar.testing import AsyncTestClient

from server.app import create_app
from server.settings import Settings
from tests.conftest import PG_URL

UNREACHABLE_URL = (
    "postgresql+asyncpg://postgres@127.0.0.1:1/x" if PG_URL else "sqlite+aiosqlite:////nonexistent-dir/x.db"
)


async def test_healthz_reports_ok(client: AsyncTestClient) -> None:
    """A monitor sees the app and its database up."""
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}
    assert "no-store" in response.headers["cache-control"]


async def test_healthz_reports_an_unreachable_database(settings: Settings) -> None:
    """With the database gone, the probe says so with 503 and a short reason, no trace."""
    app = create_app(dataclasses.replace(settings, database_url=UNREACHABLE_URL))
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as client:
        response = await client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert isinstance(body["database"], str) and body["database"].strip()
    assert body["database"] != "ok"
    assert "Traceback" not in response.text
