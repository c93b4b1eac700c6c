"""The canteen manager's pages (L5) and what the public sees: recording on a phone (bad input keeps what was
typed and writes nothing), receipts for the manager, staff, admins and supervisors only, reversal and
close from the ledger, the formula-safe CSV, the public board with this month's figures, and the demo."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime

from litestar.testing import AsyncTestClient
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.models import CanteenEntry, CanteenMonth, Role
from server.services import canteen, demo
from server.settings import Settings
from tests.conftest import TEST_PASSWORD
from tests.helpers import Web
from tests.integration.test_enterprise_pages import sign_in


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 160, 90)).save(out, "JPEG")
    return out.getvalue()


def _today(settings: Settings) -> date:
    return datetime.now(UTC).astimezone(settings.tz).date()


async def _entries(db: AsyncSession) -> int:
    return int(await db.scalar(select(func.count()).select_from(CanteenEntry)) or 0)


async def test_the_manager_records_on_a_phone_and_a_refusal_keeps_what_was_typed(
    web: Web, english: None, db: AsyncSession, settings: Settings, people: dict[Role, str]
) -> None:
    await sign_in(web, people[Role.CANTEEN_MANAGER])
    today = _today(settings).isoformat()
    form = await web.client.get("/canteen/entries/new")
    assert form.status_code == 200 and f'value="{today}"' in form.text
    refused = await web.post_form("/canteen/entries/new", {"category": "ingredients", "amount": "12.345", "day": today, "note": "菜场 =SUM(A1)"})
    assert refused.status_code == 400
    assert "Please enter at most two decimals (fen)." in refused.text
    assert 'value="12.345"' in refused.text and "菜场 =SUM(A1)" in refused.text
    assert '<option value="ingredients" selected>' in refused.text
    assert await _entries(db) == 0

    saved = await web.post_form("/canteen/entries/new", {"category": "ingredients", "amount": "386.5", "day": today, "note": "菜场 =SUM(A1)"})
    assert saved.status_code == 303
    assert saved.headers["location"].startswith(f"/canteen/entries/new?day={today}&direction=expense")
    after = await web.client.get(saved.headers["location"])
    assert "Recorded: Ingredients, 386.50 yuan on" in after.text
    assert '<option value="ingredients" selected>' in after.text  # the next spending starts where this one was
    entry = await db.scalar(select(CanteenEntry))
    assert entry is not None and entry.amount_fen == 38650 and entry.direction == "expense"

    meals = await web.post_form("/canteen/meals", {"meal_day": today, "meals": "一百"})
    assert meals.status_code == 400 and "Please enter the meals as a whole number from 0 to 5000." in meals.text and 'value="一百"' in meals.text
    meals = await web.post_form("/canteen/meals", {"meal_day": today, "meals": "᧚"})  # isdigit(), yet not a number int() takes
    assert meals.status_code == 400 and 'value="᧚"' in meals.text
    assert "Please enter the meals as a whole number from 0 to 5000." in meals.text
    meals = await web.post_form("/canteen/meals", {"meal_day": today, "meals": "142"})
    assert meals.status_code == 303

    ledger = await web.client.get("/canteen/ledger")
    assert "386.50" in ledger.text and "142" in ledger.text

    # The CSV is safe to open in Excel: the note's formula is neutralised.
    export = await web.client.get(f"/canteen/export.csv?month={today[:7]}")
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(export.content.decode("utf-8-sig"))))
    assert rows[0][:5] == ["Date", "Income or spending", "Category", "Line", "Amount (yuan)"]
    assert rows[1][:7] == [today, "Spending", "Ingredients", "Entry", "386.50", "decrease 386.50", "菜场 =SUM(A1)"]


async def test_receipts_are_seen_by_the_manager_staff_and_supervisors_only(
    client: AsyncTestClient, web: Web, db: AsyncSession, settings: Settings, people: dict[Role, str]
) -> None:
    await sign_in(web, people[Role.CANTEEN_MANAGER])
    token = await web.csrf("/canteen/entries/new")
    today = _today(settings).isoformat()
    saved = await client.post("/canteen/entries/new", data={"_csrf_token": token, "category": "equipment", "amount": "2680", "day": today},
                              files={"receipt": ("receipt.jpg", _jpeg(), "image/jpeg")})
    assert saved.status_code == 303, saved.text
    entry = await db.scalar(select(CanteenEntry))
    assert entry is not None and entry.receipt_sha
    receipt = f"/canteen/entries/{entry.id}/receipt"
    page = await client.get(f"/canteen/entries/{entry.id}")
    assert receipt in page.text
    assert (await client.get(receipt)).headers["content-type"] == "image/jpeg"
    await web.logout()

    seen = {}
    for role in (Role.ADMIN, Role.STAFF, Role.SUPERVISOR, Role.BUILDING_HEAD, Role.RESIDENT_REP, Role.VOLUNTEER, Role.GRID_WORKER):
        await web.login(people[role], TEST_PASSWORD)
        seen[role] = (await client.get(receipt)).status_code
        await web.logout()
    assert seen == {Role.ADMIN: 200, Role.STAFF: 200, Role.SUPERVISOR: 200, Role.BUILDING_HEAD: 403, Role.RESIDENT_REP: 403,
                    Role.VOLUNTEER: 403, Role.GRID_WORKER: 403}
    anonymous = await client.get(receipt)
    assert anonymous.status_code in {302, 303, 401} and entry.receipt_sha not in anonymous.text
    board = await client.get("/boards/canteen")
    assert board.status_code == 200 and entry.receipt_sha not in board.text and "/receipt" not in board.text
    assert "2,680.00" in board.text  # this month's spending, public


async def test_reverse_and_close_from_the_pages(web: Web, english: None, db: AsyncSession, settings: Settings,
                                                 people: dict[Role, str]) -> None:
    today = _today(settings)
    last_month = canteen.previous_month(canteen.month_of(today))
    wrong = await canteen.record_entry(db, canteen.EntryInput("donation", "500", last_month.isoformat()), actor_id=None,
                                       now=datetime.now(UTC), tz=settings.tz)
    await db.commit()
    await sign_in(web, people[Role.SUPERVISOR])
    assert (await web.post_form(f"/canteen/entries/{wrong.id}/reverse", {"reason": "x"})).status_code == 403  # supervisors read only
    await web.logout()
    await sign_in(web, people[Role.CANTEEN_MANAGER])
    page = f"/canteen/entries/{wrong.id}"
    refused = await web.post_form(f"{page}/reverse", {"reason": ""}, token_from=page)
    assert refused.status_code == 400 and "Please give the reason for the reversal." in refused.text
    reversed_ = await web.post_form(f"{page}/reverse", {"reason": "捐赠方撤回"}, token_from=page)
    assert reversed_.status_code == 303
    assert await _entries(db) == 2

    month = last_month.strftime("%Y-%m")
    running = await web.post_form(f"/canteen/months/{today:%Y-%m}/close", {})
    assert running.status_code == 400 and "is not over yet" in running.text
    closed = await web.post_form(f"/canteen/months/{month}/close", {})
    assert closed.status_code == 303
    ledger = await web.client.get(closed.headers["location"])
    assert "Closed by 测试canteen_manager on" in ledger.text and "Close " + month not in ledger.text
    again = await web.post_form(f"/canteen/months/{month}/close", {})
    assert again.status_code == 303 and "was already closed" in (await web.client.get(again.headers["location"])).text
    late = await web.post_form("/canteen/entries/new", {"category": "donation", "amount": "1", "day": last_month.isoformat()})
    assert late.status_code == 400 and f"{month} is closed: its figures are final and take no new entry or reversal." in late.text
    token = await web.csrf("/canteen/entries/new")
    with_receipt = await web.client.post("/canteen/entries/new", files={"receipt": ("receipt.jpg", _jpeg(), "image/jpeg")},
                                         data={"_csrf_token": token, "category": "equipment", "amount": "2680",
                                               "day": last_month.isoformat()})
    assert with_receipt.status_code == 400 and f"{month} is closed" in with_receipt.text and 'value="2680"' in with_receipt.text
    assert [p for p in settings.uploads_dir.rglob("*") if p.is_file()] == []  # the refused entry's receipt is not kept
    assert await _entries(db) == 2
    rows = await db.scalar(select(func.count()).select_from(CanteenMonth).where(CanteenMonth.closed_at.is_not(None)))
    assert rows == 1


async def test_the_board_shows_the_months_to_the_fen(client: AsyncTestClient, db: AsyncSession, settings: Settings,
                                                     people: dict[Role, str]) -> None:
    """The monthly chart's table (its text alternative) gives the ledger's figures, not rounded ones."""
    today = _today(settings)
    for category, amount in (("meal_sales", "45,678.95"), ("ingredients", "1,234.56")):
        await canteen.record_entry(db, canteen.EntryInput(category, amount, today.isoformat()), actor_id=None, now=datetime.now(UTC),
                                   tz=settings.tz)
    await db.commit()
    board = await client.get("/boards/canteen")
    assert board.status_code == 200
    assert f"<tr><th scope=\"row\">{today:%Y-%m}</th><td>45,678.95</td><td>1,234.56</td></tr>" in board.text
    assert "45,679.0" not in board.text


async def test_the_demo_canteen_and_its_board(client: AsyncTestClient, db: AsyncSession, settings: Settings,
                                              demo_data: demo.DemoReport) -> None:
    """Three months of entries up to today, the oldest closed; the board shows this month's sums, and the
    overview the same figures."""
    today = _today(settings)
    first = canteen.previous_month(canteen.previous_month(canteen.month_of(today)))
    assert await db.scalar(select(func.min(CanteenEntry.day))) == first
    closed = list(await db.scalars(select(CanteenMonth.month).where(CanteenMonth.closed_at.is_not(None))))
    assert closed == [first]
    assert await db.scalar(select(func.count()).select_from(CanteenEntry).where(CanteenEntry.reverses_id.is_not(None))) == 1
    this_month = await canteen.totals(db, canteen.month_of(today), canteen.next_month(canteen.month_of(today)))
    figures = (await client.get("/api/stats/overview")).json()
    assert figures["canteen_income_fen_this_month"] == this_month.income_fen > 0
    assert figures["canteen_spending_fen_this_month"] == this_month.expense_fen > 0
    assert figures["canteen_balance_fen_this_month"] == this_month.balance_fen
    board = await client.get("/boards/canteen")
    assert board.status_code == 200
    income = re.search(r'data-figure="income">([^<]+)<', board.text)
    assert income and income.group(1) == canteen.yuan(this_month.income_fen)
    assert f'data-month="{first:%Y-%m}"' in board.text and "已结账" in board.text
    # Idempotent: loading the demo again adds nothing.
    before = await db.scalar(select(func.count()).select_from(CanteenEntry))
    await demo.load_demo(db, settings)
    assert await db.scalar(select(func.count()).select_from(CanteenEntry)) == before
