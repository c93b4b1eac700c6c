"""The baseline the page figures are compared with: a bare Litestar app returning a constant 4 KB HTML
page, served by the same uvicorn, in the same run (bench/pages.py interleaves the two)."""

from __future__ import annotations

from litestar import Litestar, MediaType, get

HEAD = "<!doctype html><html lang=zh-CN><meta charset=utf-8><title>baseline</title><body>"
PAGE = HEAD + "<p>baseline</p>" * ((4096 - len(HEAD)) // 15) + " " * ((4096 - len(HEAD)) % 15)  # 4096 bytes


@get("/{path:path}", media_type=MediaType.HTML)
async def constant(path: str) -> str:
    return PAGE


def create_app() -> Litestar:
    return Litestar(route_handlers=[constant])
