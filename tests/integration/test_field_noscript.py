"""A field form sent as a plain POST (the page's script did not start, so the outbox never saw it):
nothing is recorded, and the page says so and shows what was typed, so it can be entered again
(issue 9, point 4; server/routes/field.py `field_form_without_script`)."""

from __future__ import annotations

import html

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.models import Appeal, Visit
from server.services import demo
from server.services.demo import DEMO_PASSWORD
from tests.helpers import Web

FIELD_FORMS = ["/field/visit", "/field/return-visit", "/field/appeal", "/field/appeals/edit", "/field/outcomes", "/field/signals"]


async def _count(db: AsyncSession, model: type) -> int:
    await db.commit()  # a fresh snapshot: see what the app committed
    return await db.scalar(select(func.count()).select_from(model)) or 0


async def test_a_field_appeal_sent_without_the_script_is_not_saved_and_shows_what_was_typed(
    client: AsyncTestClient, web: Web, db: AsyncSession, demo_data: demo.DemoReport
) -> None:
    await web.login("grid", DEMO_PASSWORD)
    appeals_before, visits_before = await _count(db, Appeal), await _count(db, Visit)
    description = "3号楼门口的井盖<b>松动</b>，晚上看不清"
    response = await web.post_form(
        "/field/appeal",
        {"submitter_kind": "resident", "category": "facilities", "description": description, "submitter_phone": "13800138000", "location_detail": "  "},
        token_from="/field/appeal",
    )
    assert response.status_code == 200
    page = response.text
    assert "未保存：现场工作页面没有正常启动" in page
    # Everything typed is on the page, as text (never markup), and nothing the person did not type.
    assert html.escape(description, quote=False) in page and "<b>松动</b>" not in page
    assert "13800138000" in page and "facilities" in page
    assert "<dt>location_detail</dt>" not in page  # left blank
    assert "<dt>_csrf_token</dt>" not in page
    # The way back is the same form.
    assert 'href="/field/appeal"' in page
    assert await _count(db, Appeal) == appeals_before
    assert await _count(db, Visit) == visits_before


@pytest.mark.parametrize("path", FIELD_FORMS)
async def test_every_field_form_sent_without_the_script_keeps_what_was_typed(
    client: AsyncTestClient, web: Web, demo_data: demo.DemoReport, path: str
) -> None:
    await web.login("grid", DEMO_PASSWORD)
    response = await web.post_form(path, {"notes": "独居老人，子女在外地，每周探访一次"})
    assert response.status_code == 200, path
    assert "未保存：现场工作页面没有正常启动" in response.text, path
    assert "独居老人，子女在外地，每周探访一次" in response.text, path
    assert f'href="{path}"' in response.text, path
