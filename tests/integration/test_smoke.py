"""First contact: the login page in Chinese, health, the PWA manifest and worker."""

from __future__ import annotations

from litestar.testing import AsyncTestClient


async def test_login_page_is_chinese_by_default(client: AsyncTestClient) -> None:
    response = await client.get("/login")
    assert response.status_code == 200
    assert '<html lang="zh-CN">' in response.text
    assert "登录" in response.text
    assert "用户名" in response.text
