"""QR posters (A1): the SVG QR code encodes the place's suggestion-box URL; who may print them."""

from __future__ import annotations

import re

import pytest
import qrcode
from litestar.testing import AsyncTestClient
from qrcode.constants import ERROR_CORRECT_M
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.models import LEAF_KINDS, Place, Role
from server.services.demo import DEMO_PASSWORD, DEMO_USERS, DemoReport
from tests.helpers import Web

BASE = "http://testserver.local"
SVG_RE = re.compile(r'<svg [^>]*class="qr-code"[^>]*>.*?</svg>', re.S)
MODULE_RE = re.compile(r"M(\d+),(\d+)H\d+V\d+H\d+z")


def dark_modules(svg: str) -> set[tuple[int, int]]:
    """The dark squares the SVG path draws, as (row, column), quiet zone included."""
    path = re.search(r'<path d="([^"]+)"', svg)
    assert path, "the QR SVG has no path"
    return {(int(y), int(x)) for x, y in MODULE_RE.findall(path.group(1))}


def expected_modules(url: str) -> set[tuple[int, int]]:
    """The modules of a QR code for `url`, built independently with the same error correction and quiet zone."""
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=4)
    code.add_data(url)
    code.make(fit=True)
    return {(r, c) for r, row in enumerate(code.get_matrix()) for c, dark in enumerate(row) if dark}


async def place_named(db: AsyncSession, name: str) -> Place:
    place = await db.scalar(select(Place).where(Place.name == name))
    assert place is not None
    return place


async def sign_in(web: Web, role: Role) -> None:
    """As the demo person of that role (the demo data set has one per role)."""
    person = next(p for p in DEMO_USERS if p.role is role)
    assert (await web.login(person.username, DEMO_PASSWORD)).status_code == 303


async def test_a_poster_carries_a_qr_code_of_the_places_suggestion_box(
    web: Web, db: AsyncSession, demo_data: DemoReport
) -> None:
    await sign_in(web, Role.STAFF)
    compound = await place_named(db, "东舍坊小区")
    page = await web.client.get(f"/places/{compound.code}/poster")
    assert page.status_code == 200
    url = f"{BASE}/suggest/{compound.code}"
    svgs = SVG_RE.findall(page.text)
    assert len(svgs) == 1
    assert 'role="img"' in svgs[0]
    assert dark_modules(svgs[0]) == expected_modules(url)
    assert dark_modules(svgs[0]) != expected_modules(f"{BASE}/suggest/ZZZZZZ")  # the comparison can tell URLs apart
    assert url in page.text
    assert compound.name in page.text and compound.code in page.text
    assert "css/print.css" in page.text
    assert "style=" not in svgs[0]  # the CSP forbids inline styles


async def test_the_print_all_page_has_one_poster_per_leaf_place(
    web: Web, db: AsyncSession, demo_data: DemoReport
) -> None:
    await sign_in(web, Role.ADMIN)
    page = await web.client.get("/places/posters")
    assert page.status_code == 200
    leaves = list(await db.scalars(select(Place).where(Place.kind.in_(LEAF_KINDS))))
    assert page.text.count('<article class="poster"') == len(leaves) == 5
    svgs = SVG_RE.findall(page.text)
    for place in leaves:
        assert f"{BASE}/suggest/{place.code}" in page.text
    assert {frozenset(dark_modules(svg)) for svg in svgs} == {
        frozenset(expected_modules(f"{BASE}/suggest/{place.code}")) for place in leaves
    }
    grid = await place_named(db, "东舍坊第一网格")
    assert grid.code not in page.text  # grids and communities get no poster in the print-all set


async def test_an_unknown_place_has_no_poster(web: Web, demo_data: DemoReport) -> None:
    await sign_in(web, Role.STAFF)
    assert (await web.client.get("/places/ZZZZZZ/poster")).status_code == 404


@pytest.mark.parametrize(
    ("role", "single", "all_posters"),
    [
        (Role.ADMIN, 200, 200),
        (Role.STAFF, 200, 200),
        (Role.GRID_WORKER, 200, 403),
        (Role.SUPERVISOR, 403, 403),
        (Role.RESIDENT_REP, 403, 403),
    ],
    ids=lambda value: value.value if isinstance(value, Role) else str(value),
)
async def test_who_may_print_posters(
    role: Role, single: int, all_posters: int, web: Web, db: AsyncSession, demo_data: DemoReport
) -> None:
    await sign_in(web, role)
    compound = await place_named(db, "东舍坊小区")
    assert (await web.client.get(f"/places/{compound.code}/poster")).status_code == single
    assert (await web.client.get("/places/posters")).status_code == all_posters


async def test_anonymous_visitors_are_sent_to_sign_in(client: AsyncTestClient, db: AsyncSession, demo_data: DemoReport) -> None:
    compound = await place_named(db, "东舍坊小区")
    response = await client.get(f"/places/{compound.code}/poster")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")


async def test_the_places_page_links_posters_only_for_those_who_may_print(
    web: Web, db: AsyncSession, demo_data: DemoReport
) -> None:
    compound = await place_named(db, "东舍坊小区")
    await sign_in(web, Role.STAFF)
    page = (await web.client.get("/places")).text
    assert f'href="/places/{compound.code}/poster"' in page
    assert 'href="/places/posters"' in page
    await web.logout()
    await sign_in(web, Role.SUPERVISOR)
    page = (await web.client.get("/places")).text
    assert compound.code in page
    assert "/poster" not in page
