"""Property disclosure (L2): the monthly figures' rules (one row per month, an edit replaces it, bad values
refused and nothing written), the fee schedule in fen, 东舍坊's demo story, and the pages (public page with
its charts and their text alternative, the staff editor keeping what was typed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.models import Place, PlaceKind, PropertyDisclosure, PropertyMonth
from server.services import demo, places
from server.services import property_disclosure as disclosure
from server.settings import Settings
from tests.helpers import Web


async def compound(db: AsyncSession, name: str = "东舍坊小区") -> Place:
    place = await db.scalar(select(Place).where(Place.name == name))
    assert place is not None
    return place


async def month_rows(db: AsyncSession, place: Place) -> int:
    return int(await db.scalar(select(func.count()).select_from(PropertyMonth).where(PropertyMonth.place_id == place.id)) or 0)


async def test_monthly_figures_are_checked_and_one_month_is_one_row(db: AsyncSession, settings: Settings,
                                                                    demo_data: demo.DemoReport) -> None:
    place = await compound(db, "文华园小区")
    now = datetime.now(UTC)
    before = await month_rows(db, place)
    next_month = (now.astimezone(settings.tz).date().replace(day=28) + timedelta(days=5)).strftime("%Y-%m")
    bad = [
        ({"month": "2024-03", "rate": "101", "complaints": "3"}, "rate"),
        ({"month": "2024-03", "rate": "-1", "complaints": ""}, "rate"),
        ({"month": "2024-03", "rate": "七十", "complaints": ""}, "rate"),
        ({"month": "2024-03", "rate": "", "complaints": "-2"}, "complaints"),
        ({"month": "2024-03", "rate": "", "complaints": "1.5"}, "complaints"),
        ({"month": "2024-13", "rate": "50", "complaints": "1"}, "month"),
        ({"month": next_month, "rate": "50", "complaints": "1"}, "month"),
        ({"month": "2024-03", "rate": "", "complaints": ""}, "rate"),
    ]
    for values, field in bad:
        with pytest.raises(disclosure.InvalidDisclosure) as refused:
            await disclosure.record_month(db, place, **values, now=now, tz=settings.tz)
        assert field in {p.field for p in refused.value.problems}, values
    assert await month_rows(db, place) == before

    await disclosure.record_month(db, place, month="2024-03", rate="55.5", complaints="9", now=now, tz=settings.tz)
    await disclosure.record_month(db, place, month="2024-3", rate="56", complaints="", now=now, tz=settings.tz)  # replaces
    rows = list(await db.scalars(select(PropertyMonth).where(PropertyMonth.place_id == place.id, PropertyMonth.month == datetime(2024, 3, 1).date())))
    assert [(r.collection_bp, r.complaints) for r in rows] == [(5600, None)]
    assert await month_rows(db, place) == before + 1


async def test_the_fee_schedule_is_kept_in_fen(db: AsyncSession, demo_data: demo.DemoReport) -> None:
    place = await compound(db, "文华园小区")
    with pytest.raises(disclosure.InvalidDisclosure) as refused:
        await disclosure.save(db, place, disclosure.DisclosureInput("方案", "标准", [("物业服务费", "1.2.3", "元/㎡·月"), ("", "", ""),
                                                                                   ("停车费", "150", "")]))
    messages = [p.message for p in refused.value.problems]
    assert messages[0].startswith("Line %(n)d of the fee schedule: please enter the price") and refused.value.problems[0].params == {"n": 1}
    assert refused.value.problems[1].params == {"n": 3}
    saved = await disclosure.save(db, place, disclosure.DisclosureInput("方案", "标准", [("物业服务费", "1.20", "元/㎡·月"), ("", "", ""),
                                                                                       ("停车费", "150", "元/个·月")]))
    assert saved.fees == [{"item": "物业服务费", "unit_price_fen": 120, "unit": "元/㎡·月"},
                          {"item": "停车费", "unit_price_fen": 15000, "unit": "元/个·月"}]
    assert await db.scalar(select(func.count()).select_from(PropertyDisclosure).where(PropertyDisclosure.place_id == place.id)) == 1
    # A street, a park or a building keeps no property disclosure.
    with pytest.raises(disclosure.InvalidDisclosure):
        await disclosure.save(db, await compound(db, "解放路沿街商铺"), disclosure.DisclosureInput("方案", "", []))


async def test_dongshefang_tells_the_seeds_story(client: AsyncTestClient, db: AsyncSession, demo_data: demo.DemoReport) -> None:
    """The seed: fee collection from under 5% to 70%, 12345 complaints down 35%; the page says it and charts it."""
    place = await compound(db)
    months = await disclosure.months(db, place.id)
    trend = disclosure.trend(months)
    assert trend.first_rate is not None and trend.first_rate.collection_bp is not None and trend.first_rate.collection_bp < 500
    assert trend.last_rate is not None and trend.last_rate.collection_bp == 7000
    assert trend.complaints_change_percent == -35

    listing = await client.get("/property")
    assert listing.status_code == 200 and f'href="/property/{place.code}"' in listing.text
    page = await client.get(f"/property/{place.code}")
    assert page.status_code == 200
    text = page.text
    assert "4.2%" in text and "70%" in text and "35%" in text  # the summary sentence
    assert text.count("<svg") >= 2 and text.count("chart-data") >= 2  # two charts, each with its table
    assert "0.85" in text and "元/㎡·月" in text  # the fee schedule
    assert (await client.get("/property/ZZZZZZ")).status_code == 404
    shop = await compound(db, "解放路沿街商铺")
    assert (await client.get(f"/property/{shop.code}")).status_code == 404  # not a compound


async def _staff(web: Web) -> None:
    response = await web.login("staff", demo.DEMO_PASSWORD)
    assert response.status_code == 303, response.text


async def test_staff_edit_the_disclosure_and_a_refused_form_keeps_what_was_typed(web: Web, english: None, db: AsyncSession,
                                                                                 demo_data: demo.DemoReport) -> None:
    place = await compound(db, "文华园小区")
    await _staff(web)
    path = f"/property/{place.code}"
    refused = await web.post_form(f"{path}/edit", {"reform_plan": "新方案：业主大会表决", "service_standards": "保洁每日两次",
                                                   "fee_item": "物业服务费", "fee_price": "一块二", "fee_unit": "元/㎡·月"})
    assert refused.status_code == 400
    assert "Line 1 of the fee schedule: please enter the price in yuan, e.g. 0.85." in refused.text
    assert "新方案：业主大会表决" in refused.text and 'value="一块二"' in refused.text
    for typo in ("1e30", "1E+27"):  # a number Decimal reads, but no price: refused like any typo, not a server error
        huge = await web.post_form(f"{path}/edit", {"reform_plan": "新方案：业主大会表决", "service_standards": "保洁每日两次",
                                                    "fee_item": "物业服务费", "fee_price": typo, "fee_unit": "元/㎡·月"})
        assert huge.status_code == 400, typo
        assert "Line 1 of the fee schedule: please enter the price in yuan, e.g. 0.85." in huge.text
        assert f'value="{typo}"' in huge.text and "新方案：业主大会表决" in huge.text
    assert "新方案" not in (await web.client.get(path)).text  # nothing written
    saved = await web.post_form(f"{path}/edit", {"reform_plan": "新方案：业主大会表决", "service_standards": "保洁每日两次",
                                                 "fee_item": "物业服务费", "fee_price": "1.35", "fee_unit": "元/㎡·月"})
    assert saved.status_code == 303
    assert "1.35" in (await web.client.get(path)).text

    rows = await month_rows(db, place)
    bad = await web.post_form(f"{path}/months", {"month": "2024-05", "rate": "120", "complaints": "4"})
    assert bad.status_code == 400
    assert "Please enter the collection rate as a percentage from 0 to 100." in bad.text
    assert 'value="120"' in bad.text and 'value="2024-05"' in bad.text
    assert await month_rows(db, place) == rows
    good = await web.post_form(f"{path}/months", {"month": "2024-05", "rate": "48.5", "complaints": "4"})
    assert good.status_code == 303
    assert await month_rows(db, place) == rows + 1
    edit = await web.client.get(f"{path}/edit")
    assert "Figures for 2024-05 saved." in edit.text and "48.5" in edit.text


async def test_a_compound_with_figures_but_nothing_published_has_no_public_page(web: Web, english: None, db: AsyncSession,
                                                                                settings: Settings,
                                                                                demo_data: demo.DemoReport) -> None:
    """Monthly figures entered first leave the disclosure empty: no listing, no page that says nothing, until
    a text or a fee schedule is saved."""
    parent = await db.get(Place, (await compound(db)).parent_id)
    new = await places.create_place(db, kind=PlaceKind.RESIDENTIAL_COMPOUND, name="测试新苑小区", parent=parent)
    await disclosure.record_month(db, new, month="2024-05", rate="40", complaints="3", now=datetime.now(UTC), tz=settings.tz)
    await db.commit()

    listing = await web.client.get("/property")
    assert listing.status_code == 200 and "测试新苑小区" not in listing.text
    assert (await web.client.get(f"/property/{new.code}")).status_code == 404

    await _staff(web)
    staff_listing = (await web.client.get("/property")).text
    missing = staff_listing[staff_listing.index("Compounds without a disclosure"):]
    assert "测试新苑小区" in missing  # staff are asked to start it
    saved = await web.post_form(f"/property/{new.code}/edit", {"reform_plan": "", "service_standards": "",
                                                               "fee_item": "物业服务费", "fee_price": "0.9", "fee_unit": "元/㎡·月"})
    assert saved.status_code == 303
    await web.logout()
    listing = await web.client.get("/property")
    assert "测试新苑小区" in listing.text
    page = await web.client.get(f"/property/{new.code}")
    assert page.status_code == 200 and "0.90" in page.text and "2024-05" in page.text
