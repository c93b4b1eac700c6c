"""Test helpers that act like a browser would: keep cookies, send the CSRF token, read pages."""

from __future__ import annotations

import re
from dataclasses import dataclass

from httpx import Response
from litestar.testing import AsyncTestClient

CSRF_RE = re.compile(r'name="csrf-token" content="([^"]*)"')


@dataclass
class Web:
    client: AsyncTestClient

    async def csrf(self, path: str = "/offline") -> str:
        page = await self.client.get(path)
        match = CSRF_RE.search(page.text)
        assert match, f"no CSRF token on {path}"
        return match.group(1)

    async def post_form(self, path: str, data: dict[str, str], *, token_from: str = "/offline") -> Response:
        token = await self.csrf(token_from)
        return await self.client.post(path, data={**data, "_csrf_token": token})

    async def login(self, username: str, password: str, next_path: str = "") -> Response:
        return await self.post_form("/login", {"username": username, "password": password, "next": next_path})

    async def logout(self) -> Response:
        token = await self.csrf("/offline")
        return await self.client.post("/logout", data={"_csrf_token": token})
