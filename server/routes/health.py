"""Liveness and database reachability for load balancers and monitors."""

from __future__ import annotations

import asyncio

from litestar import Response, get
from litestar.datastructures import State
from sqlalchemy import text

from server.security import public

HEALTH_TIMEOUT_SECONDS = 3.0


@get("/healthz", opt=public(), skip_session=True)
async def healthz(state: State) -> Response[dict[str, str]]:
    engine = state.alchemy_engine
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means "not healthy", with its reason
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
        return Response({"status": "error", "database": reason}, status_code=503, headers={"Cache-Control": "no-store"})
    return Response({"status": "ok", "database": "ok"}, headers={"Cache-Control": "no-store"})


route_handlers = [healthz]
