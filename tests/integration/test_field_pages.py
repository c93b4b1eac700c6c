"""The grid worker's field pages (F1-F3): what the server renders before the phone's own data takes over."""

from __future__ import annotations

import html
import json
import re

from litestar.testing import AsyncTestClient

from server.routes.field import FIELD_PAGES
from server.services import demo
from server.services.demo import DEMO_PASSWORD
from tests.helpers import Web


async def test_field_home_shows_the_grid_and_the_workers_open_cases(
    client: AsyncTestClient, web: Web, demo_data: demo.DemoReport
) -> None:
    await web.login("grid", DEMO_PASSWORD)
    page = (await client.get("/field")).text
    assert "东舍坊第一网格" in page
    # Every open case assigned to 王网格 links to its edit page.
    references = re.findall(r'href="/field/appeals/edit\?id=[0-9a-f-]+">(\d{4}-\d{5})<', page)
    assert references
    # The page scripts are loaded as files (no inline script under the CSP).
    assert "js/outbox.js" in page and "js/field.js" in page
    assert "<script>" not in page


async def test_every_field_page_renders_and_the_home_lists_them_for_the_service_worker(
    client: AsyncTestClient, web: Web, demo_data: demo.DemoReport
) -> None:
    await web.login("grid", DEMO_PASSWORD)
    for path in FIELD_PAGES:
        response = await client.get(path)
        assert response.status_code == 200, path
        assert 'id="field-text"' in response.text, path
    home = (await client.get("/grid")).text
    found = re.search(r'data-field-pages="([^"]+)"', home)
    assert found
    assert json.loads(html.unescape(found.group(1))) == FIELD_PAGES
    assert 'href="/field"' in home


async def test_visit_form_offers_the_grid_places_and_a_repeatable_appeal(
    client: AsyncTestClient, web: Web, demo_data: demo.DemoReport
) -> None:
    await web.login("grid", DEMO_PASSWORD)
    page = (await client.get("/field/visit")).text
    assert 'id="appeal-template"' in page
    assert "a__N__-description" in page
    place_select = page[page.index('id="place_id"') : page.index("</select>", page.index('id="place_id"'))]
    assert "东舍坊第一网格" in place_select
    # Places of other grids are not offered.
    assert "文华园第一网格" not in place_select
