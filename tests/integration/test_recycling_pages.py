"""Recycling points (L4) through the app, on the demo's 文华园绿色回收驿站: cards, drop-offs (online and offline
through the sync API), redemptions, reversals, rates with history, the ledger export, who may do what, and
what the household's own page and the public board show (docs/boards.md, "recycling")."""

from __future__ import annotations

import csv
import io
import logging
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from server.models import (
    PointsEntry,
    PointsKind,
    RecyclingCategory,
    RecyclingDropoff,
    RecyclingDropoffLine,
    RecyclingGood,
    RecyclingHousehold,
    RecyclingRedemption,
    RecyclingStation,
)
from server.models.recycling import LedgerIsAppendOnly
from server.services import recycling
from server.services.demo import DEMO_PASSWORD, DemoReport
from server.services.demo_recycling import STATION
from server.settings import Settings
from tests.helpers import Web
from tests.integration.sync_world import Device


@dataclass
class Station:
    id: UUID
    categories: dict[str, UUID]
    goods: dict[str, UUID]


async def demo_station(db: AsyncSession) -> Station:
    station = await db.scalar(select(RecyclingStation).where(RecyclingStation.name == STATION))
    assert station is not None
    categories = {c.name: c.id for c in await recycling.categories_of(db, station.id)}
    goods = {g.name: g.id for g in await recycling.goods_of(db, station.id)}
    return Station(station.id, categories, goods)


async def new_card(db: AsyncSession, station_id: UUID, note: str = "") -> RecyclingHousehold:
    station = await db.get(RecyclingStation, station_id)
    assert station is not None
    household = await recycling.issue_card(db, station, note=note, now=datetime.now(UTC))
    await db.commit()
    return household


async def give_points(db: AsyncSession, station: Station, household: RecyclingHousehold, kg: str, category: str = "塑料") -> None:
    """A drop-off recorded by the service (塑料 earns 10 points per kg in the demo)."""
    row = await db.get(RecyclingStation, station.id)
    assert row is not None
    await recycling.record_dropoff(db, row, card=household.card_number, lines=[recycling.LineInput(station.categories[category], kg)],
                                   at=datetime.now(UTC), by_user_id=None)
    await db.commit()


async def count(db: AsyncSession, model: Any) -> int:
    await db.commit()  # a new read transaction: see what the app committed
    return await db.scalar(select(func.count()).select_from(model)) or 0


async def balance_of(db: AsyncSession, household_id: UUID) -> tuple[int, int]:
    """(the household's balance, the sum of its ledger entries)."""
    await db.commit()
    kept = await db.scalar(select(RecyclingHousehold.balance).where(RecyclingHousehold.id == household_id))
    summed = await db.scalar(select(func.coalesce(func.sum(PointsEntry.points), 0)).where(PointsEntry.household_id == household_id))
    return int(kept or 0), int(summed or 0)


def form_of(card: str, lines: list[tuple[str, str]]) -> dict[str, str]:
    data = {"card": card}
    for i, (category, kg) in enumerate(lines):
        data[f"category_{i}"], data[f"kg_{i}"] = category, kg
    return data


async def test_the_operator_records_a_drop_off_and_the_household_sees_only_its_own(
    client: AsyncTestClient, web: Web, db: AsyncSession, demo_data: DemoReport
) -> None:
    station = await demo_station(db)
    assert (await web.login("station", DEMO_PASSWORD)).status_code == 303
    home = await client.get("/recycling")
    assert home.status_code == 303 and home.headers["location"] == f"/recycling/stations/{station.id}"

    issued = await web.post_form(f"/recycling/stations/{station.id}/households", {"note": "3号楼2单元 慕容秋水家"})
    assert issued.status_code == 303
    household = await db.scalar(select(RecyclingHousehold).where(RecyclingHousehold.note == "3号楼2单元 慕容秋水家"))
    assert household is not None and issued.headers["location"] == f"/recycling/households/{household.id}/card"
    card = await client.get(issued.headers["location"])
    assert card.status_code == 200 and "<svg" in card.text and f"/r/{household.token}" in card.text

    saved = await web.post_form(f"/recycling/stations/{station.id}/dropoff",
                                form_of(household.card_number, [(str(station.categories["纸类"]), "3.2"), (str(station.categories["塑料"]), "1.5")]))
    assert saved.status_code == 303
    page = await client.get(saved.headers["location"])
    assert "已记录" in page.text and "+41" in page.text  # 3.2 kg × 8 + 1.5 kg × 10
    assert await balance_of(db, household.id) == (41, 41)

    await web.logout()
    own = await client.get(f"/r/{household.token}")
    assert own.status_code == 200
    assert own.headers["x-robots-tag"] == "noindex" and own.headers["referrer-policy"] == "no-referrer"
    assert "41" in own.text and "纸类 3.2 kg" in own.text and "塑料 1.5 kg" in own.text
    assert "慕容秋水" not in own.text  # the station's note is not the household's page
    others = list(await db.scalars(select(RecyclingHousehold.card_number).where(RecyclingHousehold.id != household.id)))
    assert not [number for number in others if number in own.text]
    assert (await client.get("/r/" + "x" * 24)).status_code == 404

    board = await client.get("/boards/recycling")
    assert board.status_code == 200
    latest = re.findall(r"(\d\d:\d\d) (\S+) ([\d.]+) kg", board.text)
    assert ("纸类", "3.2") in [(name, weight) for _time, name, weight in latest]
    assert household.card_number not in board.text and "慕容秋水" not in board.text


async def test_bad_drop_offs_are_refused_clearly_with_what_was_typed_kept(
    client: AsyncTestClient, web: Web, db: AsyncSession, demo_data: DemoReport
) -> None:
    station = await demo_station(db)
    household = await new_card(db, station.id)
    before = (await count(db, RecyclingDropoff), await count(db, PointsEntry))
    await web.login("station", DEMO_PASSWORD)
    paper, plastic = str(station.categories["纸类"]), str(station.categories["塑料"])

    refused = await web.post_form(f"/recycling/stations/{station.id}/dropoff",
                                  form_of("0000 0000", [(paper, "-2"), (str(uuid.uuid4()), "3"), (plastic, "250"), (paper, "三公斤")]))
    assert refused.status_code == 400
    for message in ("本驿站没有卡号为 00000000 的积分卡", "重量必须大于 0 公斤", "请选择本驿站回收的品类", "每行最多 200 公斤",
                    "请以公斤为单位填写重量"):
        assert message in refused.text, message
    assert 'value="250"' in refused.text and 'value="三公斤"' in refused.text and 'value="0000 0000"' in refused.text

    empty = await web.post_form(f"/recycling/stations/{station.id}/dropoff", form_of(household.card_number, []))
    assert empty.status_code == 400 and "请至少填写一个品类及其重量" in empty.text
    zero = await web.post_form(f"/recycling/stations/{station.id}/dropoff", form_of(household.card_number, [(paper, "0")]))
    assert zero.status_code == 400 and "重量必须大于 0 公斤" in zero.text

    assert (await count(db, RecyclingDropoff), await count(db, PointsEntry)) == before
    assert await balance_of(db, household.id) == (0, 0)


async def test_a_redemption_takes_points_and_stock_together_or_nothing(
    client: AsyncTestClient, web: Web, db: AsyncSession, demo_data: DemoReport
) -> None:
    station = await demo_station(db)
    household = await new_card(db, station.id)
    await give_points(db, station, household, "10")  # 100 points
    redemptions = await count(db, RecyclingRedemption)
    row = await db.get(RecyclingStation, station.id)
    assert row is not None
    towel = await recycling.add_good(db, row, name="小毛巾", points="30", stock="1")
    await db.commit()
    towel_id, rice = towel.id, station.goods["大米（5公斤）"]
    await web.login("station", DEMO_PASSWORD)
    url = f"/recycling/stations/{station.id}/redeem"

    too_dear = await web.post_form(url, {"card": household.card_number, "good_id": str(rice), "quantity": "1"})
    assert too_dear.status_code == 400 and "需要 800 积分，本卡只有 100 积分" in too_dear.text
    too_many = await web.post_form(url, {"card": household.card_number, "good_id": str(towel_id), "quantity": "2"})
    assert too_many.status_code == 400 and "小毛巾库存只剩 1" in too_many.text
    nonsense = await web.post_form(url, {"card": household.card_number, "good_id": str(towel_id), "quantity": "-1"})
    assert nonsense.status_code == 400 and "请输入 1 到 20 之间的整数" in nonsense.text
    assert await count(db, RecyclingRedemption) == redemptions
    assert await balance_of(db, household.id) == (100, 100)

    done = await web.post_form(url, {"card": household.card_number, "good_id": str(towel_id), "quantity": "1"})
    assert done.status_code == 303
    assert await balance_of(db, household.id) == (70, 70)
    assert await db.scalar(select(RecyclingGood.stock).where(RecyclingGood.id == towel_id)) == 0

    gone = await web.post_form(url, {"card": household.card_number, "good_id": str(towel_id), "quantity": "1"})
    assert gone.status_code == 400 and "小毛巾已无库存" in gone.text
    assert await balance_of(db, household.id) == (70, 70)


async def test_a_wrong_entry_is_reversed_with_a_reason_never_edited(
    client: AsyncTestClient, web: Web, db: AsyncSession, demo_data: DemoReport
) -> None:
    station = await demo_station(db)
    household = await new_card(db, station.id)
    await give_points(db, station, household, "10")  # 100 points
    row = await db.get(RecyclingStation, station.id)
    assert row is not None
    soap = station.goods["香皂"]
    stock = await db.scalar(select(RecyclingGood.stock).where(RecyclingGood.id == soap))
    await recycling.redeem(db, row, card=household.card_number, good_id=soap, quantity="1", at=datetime.now(UTC), by_user_id=None)
    await db.commit()
    entries = {e.kind: e.id for e in await db.scalars(select(PointsEntry).where(PointsEntry.household_id == household.id))}
    await web.login("station", DEMO_PASSWORD)

    spent = await web.post_form(f"/recycling/entries/{entries[PointsKind.DROPOFF]}/reverse", {"reason": "称重录错"})
    assert spent.status_code == 400 and "冲正 100 积分后余额将为 -60" in spent.text
    silent = await web.post_form(f"/recycling/entries/{entries[PointsKind.REDEMPTION]}/reverse", {"reason": ""})
    assert silent.status_code == 400 and "请说明冲正原因" in silent.text
    assert await balance_of(db, household.id) == (40, 40)

    back = await web.post_form(f"/recycling/entries/{entries[PointsKind.REDEMPTION]}/reverse", {"reason": "住户没拿走香皂"})
    assert back.status_code == 303
    assert await db.scalar(select(RecyclingGood.stock).where(RecyclingGood.id == soap)) == stock  # the soap is back in stock
    undone = await web.post_form(f"/recycling/entries/{entries[PointsKind.DROPOFF]}/reverse", {"reason": "称重录错"})
    assert undone.status_code == 303
    assert await balance_of(db, household.id) == (0, 0)
    twice = await web.post_form(f"/recycling/entries/{entries[PointsKind.DROPOFF]}/reverse", {"reason": "再冲一次"})
    assert twice.status_code == 400 and "这条记录已经冲正过了" in twice.text
    reversals = list(await db.scalars(select(PointsEntry).where(PointsEntry.household_id == household.id,
                                                                PointsEntry.kind == PointsKind.REVERSAL)))
    assert sorted((r.points, r.reason) for r in reversals) == [(-100, "称重录错"), (60, "住户没拿走香皂")]
    again = await web.post_form(f"/recycling/entries/{reversals[0].id}/reverse", {"reason": "撤销冲正"})
    assert again.status_code == 400 and "冲正记录不能再冲正" in again.text

    # Entries are never edited, whatever the code path.
    entry = await db.get(PointsEntry, entries[PointsKind.DROPOFF])
    assert entry is not None
    entry.points = 1000
    with pytest.raises(LedgerIsAppendOnly):
        await db.flush()
    await db.rollback()


async def test_an_offline_drop_off_is_applied_once_at_the_rate_in_force_when_it_was_saved(
    client: AsyncTestClient, web: Web, db: AsyncSession, demo_data: DemoReport
) -> None:
    station = await demo_station(db)
    household = await new_card(db, station.id)
    paper = station.categories["纸类"]
    await web.login("staff", DEMO_PASSWORD)
    past = await web.post_form(f"/recycling/categories/{paper}/rates",
                               {"points_per_kg": "12", "effective_on": (datetime.now(UTC) - timedelta(days=2)).date().isoformat()})
    assert past.status_code == 400 and "新标准只能从今天或以后开始生效" in past.text
    raised = await web.post_form(f"/recycling/categories/{paper}/rates", {"points_per_kg": "12", "effective_on": ""})
    assert raised.status_code == 303
    page = await client.get(f"/recycling/stations/{station.id}/categories")
    assert "12 积分/公斤" in page.text and "8 积分/公斤" in page.text and "6 积分/公斤" in page.text  # the history
    await web.logout()

    await web.login("station", DEMO_PASSWORD)
    phone = Device()
    saved = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)  # before the raise: 8 points per kg
    fields = {"station_id": str(station.id), "card": household.card_number, "lines": [{"category_id": str(paper), "kg": "2.5"}]}
    mutation = phone.mutation("recycling", "dropoff", fields, recorded_at=saved)
    for expected in ("applied", "duplicate"):  # the answer was lost: the phone sends it again
        answer = await client.post("/sync/push", json=phone.batch(mutation), headers=phone.headers)
        assert answer.status_code == 200, answer.text
        assert [r["status"] for r in answer.json()["results"]] == [expected]
    await db.commit()
    rows = list(await db.scalars(select(RecyclingDropoff).where(RecyclingDropoff.household_id == household.id)))
    assert [(str(r.id), r.recorded_at, r.grams, r.points) for r in rows] == [(mutation["entity_id"], saved, 2500, 20)]
    assert await balance_of(db, household.id) == (20, 20)
    now_rate = phone.mutation("recycling", "dropoff", fields)  # saved just now: the new rate
    assert [r["status"] for r in (await client.post("/sync/push", json=phone.batch(now_rate), headers=phone.headers)).json()["results"]] == ["applied"]
    assert await balance_of(db, household.id) == (50, 50)

    unknown = phone.mutation("recycling", "dropoff", {**fields, "card": "00000000"})
    result = (await client.post("/sync/push", json=phone.batch(unknown), headers=phone.headers)).json()["results"][0]
    assert result["status"] == "rejected" and result["code"] == "invalid" and "card" in result["errors"]
    assert "00000000" in result["errors"]["card"]
    heavy = phone.mutation("recycling", "dropoff", {**fields, "lines": [{"category_id": str(paper), "kg": "999"}]})
    result = (await client.post("/sync/push", json=phone.batch(heavy), headers=phone.headers)).json()["results"][0]
    assert result["status"] == "rejected" and "lines.0.kg" in result["errors"]
    elsewhere = await recycling.create_station(db, name="东舍坊回收点", place_id=None)
    await db.commit()
    foreign = phone.mutation("recycling", "dropoff", {**fields, "station_id": str(elsewhere.id)})
    result = (await client.post("/sync/push", json=phone.batch(foreign), headers=phone.headers)).json()["results"][0]
    assert result["status"] == "rejected" and result["code"] == "forbidden"
    assert await balance_of(db, household.id) == (50, 50)


async def test_who_may_see_and_do_what_at_which_station(client: AsyncTestClient, web: Web, db: AsyncSession, demo_data: DemoReport) -> None:
    station = await demo_station(db)
    await web.login("staff", DEMO_PASSWORD)
    duplicate = await web.post_form("/recycling/stations", {"name": STATION, "place_id": "", "opening_hours": ""})
    assert duplicate.status_code == 400 and "已有同名的驿站" in duplicate.text
    created = await web.post_form("/recycling/stations", {"name": "东舍坊回收点", "place_id": "", "opening_hours": "周六 09:00–11:00"})
    assert created.status_code == 303
    other = created.headers["location"]
    await web.logout()

    await web.login("station", DEMO_PASSWORD)
    assert (await client.get(other)).status_code == 403
    assert (await client.get(f"{other}/dropoff")).status_code == 403
    assert (await client.get(f"/recycling/stations/{station.id}/dropoff")).status_code == 200
    assert (await client.get(f"/recycling/stations/{station.id}/categories")).status_code == 200
    await web.logout()

    await web.login("supervisor", DEMO_PASSWORD)
    assert (await client.get(other)).status_code == 200
    ledger = await client.get(f"/recycling/stations/{station.id}/ledger")
    assert ledger.status_code == 200 and "冲正" in ledger.text
    assert (await client.get(f"/recycling/stations/{station.id}/dropoff")).status_code == 403


async def test_the_points_ledger_exports_as_csv_that_excel_opens_safely(
    client: AsyncTestClient, web: Web, db: AsyncSession, demo_data: DemoReport
) -> None:
    station = await demo_station(db)
    entries = await count(db, PointsEntry)
    await web.login("station", DEMO_PASSWORD)
    response = await client.get(f"/recycling/stations/{station.id}/ledger.csv")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert response.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][:6] == ["时间", "记录编号", "卡号", "类型", "积分收入", "积分支出"]
    assert len(rows) == entries + 1
    assert not [cell for row in rows for cell in row if cell[:1] in ("=", "+", "-", "@", "\t", "\r")]
    kinds = {row[3] for row in rows[1:]}
    assert kinds == {"投递", "兑换", "冲正"}
    points_in = sum(int(r[4] or 0) for r in rows[1:])
    points_out = sum(int(r[5] or 0) for r in rows[1:])
    await db.commit()
    balances = await db.scalar(select(func.sum(RecyclingHousehold.balance)).where(RecyclingHousehold.station_id == station.id))
    assert points_in - points_out == balances


async def test_staff_keep_the_catalogue_and_categories(client: AsyncTestClient, web: Web, db: AsyncSession, demo_data: DemoReport) -> None:
    station = await demo_station(db)
    await web.login("staff", DEMO_PASSWORD)
    same = await web.post_form(f"/recycling/stations/{station.id}/categories", {"name": "纸类", "points_per_kg": "5"})
    assert same.status_code == 400 and "本驿站已有同名品类" in same.text
    odd = await web.post_form(f"/recycling/stations/{station.id}/categories", {"name": "旧衣物", "points_per_kg": "很多"})
    assert odd.status_code == 400 and "请输入整数" in odd.text and 'value="旧衣物"' in odd.text
    added = await web.post_form(f"/recycling/stations/{station.id}/categories", {"name": "旧衣物", "points_per_kg": "4"})
    assert added.status_code == 303
    assert await db.scalar(select(RecyclingCategory.id).where(RecyclingCategory.name == "旧衣物")) is not None

    free = await web.post_form(f"/recycling/stations/{station.id}/goods", {"name": "环保袋", "points": "0", "stock": "10"})
    assert free.status_code == 400 and "请输入 1 到 100000 之间的整数" in free.text
    assert (await web.post_form(f"/recycling/stations/{station.id}/goods", {"name": "环保袋", "points": "50", "stock": "10"})).status_code == 303
    bag = await db.scalar(select(RecyclingGood).where(RecyclingGood.name == "环保袋"))
    assert bag is not None
    await web.logout()

    await web.login("station", DEMO_PASSWORD)
    assert (await web.post_form(f"/recycling/stations/{station.id}/goods", {"name": "x", "points": "1", "stock": "1"})).status_code == 403
    short = await web.post_form(f"/recycling/goods/{bag.id}/stock", {"change": "-11"})
    assert short.status_code == 400 and "库存只有 10：最多只能出库 10" in short.text
    assert (await web.post_form(f"/recycling/goods/{bag.id}/stock", {"change": "+5"})).status_code == 303
    await db.commit()
    assert await db.scalar(select(RecyclingGood.stock).where(RecyclingGood.id == bag.id)) == 15


async def test_the_board_figures_are_the_sums_of_the_records(db: AsyncSession, settings: Settings, demo_data: DemoReport) -> None:
    now = datetime.now(UTC)
    board = await recycling.recycling_board(db, now, settings.tz)
    start, end = recycling.month_bounds(now, settings.tz)
    reversed_dropoffs = set(await db.scalars(select(PointsEntry.dropoff_id).where(PointsEntry.id.in_(
        select(PointsEntry.reverses_id).where(PointsEntry.reverses_id.is_not(None))))))
    dropoffs = [d for d in await db.scalars(select(RecyclingDropoff)) if start <= d.recorded_at < end and d.id not in reversed_dropoffs]
    assert dropoffs, "the demo has drop-offs this month"
    lines = [line for line in await db.scalars(select(RecyclingDropoffLine)) if line.dropoff_id in {d.id for d in dropoffs}]
    assert board["figures"]["grams"] == sum(line.grams for line in lines) == sum(d.grams for d in dropoffs)
    assert board["figures"]["households"] == len({d.household_id for d in dropoffs})
    assert board["figures"]["points_issued"] == sum(d.points for d in dropoffs)
    names = {c.id: c.name for c in await db.scalars(select(RecyclingCategory))}
    by_category: dict[str, int] = {}
    for line in lines:
        by_category[names[line.category_id]] = by_category.get(names[line.category_id], 0) + line.grams
    assert dict(board["by_category"]) == {name: recycling.kg(grams) for name, grams in by_category.items()}
    assert board["chart"].labels[-1] == now.astimezone(settings.tz).strftime("%Y-%m")


async def test_a_reversed_drop_off_leaves_the_public_board(
    client: AsyncTestClient, web: Web, db: AsyncSession, demo_data: DemoReport
) -> None:
    """150 kg typed for 1.5 kg and reversed: the lobby screen's latest drop-offs no longer show it."""
    station = await demo_station(db)
    household = await new_card(db, station.id)
    await give_points(db, station, household, "150", category="纸类")  # the demo's paper: at most 8 kg a line
    latest = [(name, kg) for _time, _day, name, kg in (await recycling.recycling_board(db, datetime.now(UTC), ZoneInfo("Asia/Shanghai")))["latest"]]
    assert ("纸类", "150") in latest
    board = await client.get("/boards/recycling")
    assert "纸类 150 kg" in board.text

    entry = await db.scalar(select(PointsEntry.id).where(PointsEntry.household_id == household.id))
    await web.login("station", DEMO_PASSWORD)
    assert (await web.post_form(f"/recycling/entries/{entry}/reverse", {"reason": "1.5 公斤录成了 150"})).status_code == 303
    await db.commit()
    assert not [grams for _at, _name, grams in await recycling.latest_lines(db, limit=1000) if grams == 150_000]
    assert not [grams for _at, _name, grams in await recycling.latest_lines(db, limit=1000, station_id=station.id) if grams == 150_000]
    board = await client.get("/boards/recycling")
    assert board.status_code == 200 and "纸类 150 kg" not in board.text


async def test_a_lost_card_is_replaced_keeping_the_points_and_the_old_card_stops_working(
    client: AsyncTestClient, web: Web, db: AsyncSession, demo_data: DemoReport, caplog: pytest.LogCaptureFixture
) -> None:
    station = await demo_station(db)
    household = await new_card(db, station.id, note="5号楼 丢卡的那户")
    await give_points(db, station, household, "10")  # 100 points
    old_number, old_token, household_id = household.card_number, household.token, household.id
    assert (await client.get(f"/r/{old_token}")).status_code == 200

    await web.login("supervisor", DEMO_PASSWORD)  # reads, never replaces
    page = await client.get(f"/recycling/households/{household_id}")
    assert page.status_code == 200 and "replace-card" not in page.text
    assert (await web.post_form(f"/recycling/households/{household_id}/replace-card", {})).status_code == 403
    await web.logout()

    await web.login("station", DEMO_PASSWORD)
    page = await client.get(f"/recycling/households/{household_id}")
    assert f'action="/recycling/households/{household_id}/replace-card"' in page.text and "补办" in page.text
    with caplog.at_level(logging.INFO, logger="shanzhi.audit"):
        replaced = await web.post_form(f"/recycling/households/{household_id}/replace-card", {})
    assert replaced.status_code == 303 and replaced.headers["location"] == f"/recycling/households/{household_id}/card"
    await db.commit()
    renewed = await db.get(RecyclingHousehold, household_id, populate_existing=True)
    assert renewed is not None
    new_number, new_token = renewed.card_number, renewed.token
    assert new_number != old_number and new_token != old_token and len(new_number) == recycling.CARD_DIGITS
    assert renewed.note == "5号楼 丢卡的那户" and await balance_of(db, household_id) == (100, 100)
    audit = [r.getMessage() for r in caplog.records if r.name == "shanzhi.audit" and "card_replace" in r.getMessage()]
    assert len(audit) == 1 and str(household_id) in audit[0] and old_number in audit[0] and new_number in audit[0]
    assert old_token not in audit[0] and new_token not in audit[0]

    card = await client.get(replaced.headers["location"])  # printable, as for a new card
    assert card.status_code == 200 and "<svg" in card.text and f"/r/{new_token}" in card.text
    assert recycling.format_card(new_number) in card.text and f"/r/{old_token}" not in card.text
    assert recycling.format_card(old_number) in card.text  # the flash: which card no longer works

    # The old number is unknown at the station; the new one earns on the same account.
    paper = str(station.categories["纸类"])
    refused = await web.post_form(f"/recycling/stations/{station.id}/dropoff", form_of(old_number, [(paper, "1")]))
    assert refused.status_code == 400 and f"本驿站没有卡号为 {old_number} 的积分卡" in refused.text
    redeem = await web.post_form(f"/recycling/stations/{station.id}/redeem",
                                 {"card": old_number, "good_id": str(station.goods["香皂"]), "quantity": "1"})
    assert redeem.status_code == 400 and f"本驿站没有卡号为 {old_number} 的积分卡" in redeem.text
    assert (await web.post_form(f"/recycling/stations/{station.id}/dropoff", form_of(new_number, [(paper, "1")]))).status_code == 303
    assert await balance_of(db, household_id) == (108, 108)
    search = await client.get(f"/recycling/stations/{station.id}/households?q={old_number}")
    assert "没有找到积分卡" in search.text
    await web.logout()

    assert (await client.get(f"/r/{old_token}")).status_code == 404
    own = await client.get(f"/r/{new_token}")
    assert own.status_code == 200 and "108" in own.text and "塑料 10 kg" in own.text  # the history came along


async def test_the_database_refuses_a_negative_balance_or_stock(db: AsyncSession, demo_data: DemoReport) -> None:
    """The CHECK constraints of the migration, whatever code writes: the services' checks are not the only guard."""
    station = await demo_station(db)
    household = await new_card(db, station.id)
    with pytest.raises(IntegrityError):
        await db.execute(update(RecyclingHousehold).where(RecyclingHousehold.id == household.id).values(balance=-1))
    await db.rollback()
    with pytest.raises(IntegrityError):
        await db.execute(update(RecyclingGood).where(RecyclingGood.id == station.goods["香皂"]).values(stock=-1))
    await db.rollback()
    await db.execute(update(RecyclingGood).where(RecyclingGood.id == station.goods["香皂"]).values(stock=0))  # zero is fine
    await db.rollback()
