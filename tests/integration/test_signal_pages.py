"""晨曦信号 for helpers: the board shows only the elders of one's own chain (with their address and phone),
a signal on an elder's behalf records how, and an alert is acknowledged and resolved on its page with a
reason for a false alarm; helpers outside the chain see nothing of it."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.models import AlertOutcome, AlertStatus, CheckIn, CheckInMethod, Elder, ElderAlert, Role, User
from server.services import morning_signal
from server.services.morning_signal import ElderInput, HelperInput
from server.settings import Settings
from tests.conftest import TEST_PASSWORD
from tests.helpers import Web


async def enrol(db: AsyncSession, people: dict[Role, str], name: str, start: time, end: time) -> Elder:
    head = await db.scalar(select(User.id).where(User.username == people[Role.BUILDING_HEAD]))
    volunteer = await db.scalar(select(User.id).where(User.username == people[Role.VOLUNTEER]))
    elder = await morning_signal.enrol(db, ElderInput(name=name, address="东舍坊小区2号楼301", phone="13900002222", window_start=start,
                                                      window_end=end, grace_minutes=0), [
        HelperInput("building_head", "楼长", user_id=head), HelperInput("volunteer", "志愿者", user_id=volunteer)],
        now=datetime.now(UTC) - timedelta(days=2))
    await db.commit()
    return elder


async def login(web: Web, who: str) -> None:
    assert (await web.login(who, TEST_PASSWORD)).status_code == 303


async def test_a_helper_signals_on_behalf_from_the_board(web: Web, db: AsyncSession, people: dict[Role, str]) -> None:
    elder = await enrol(db, people, "赵桂英", time(0, 0), time(23, 59))  # waiting all day
    await login(web, people[Role.BUILDING_HEAD])
    page = await web.client.get("/signals")
    assert "赵桂英" in page.text and "东舍坊小区2号楼301" in page.text and "13900002222" in page.text
    token = await web.csrf("/signals")
    done = await web.client.post(f"/signals/{elder.id}/checkin", data={"_csrf_token": token, "method": "phone"})
    assert done.status_code == 303
    rows = list(await db.scalars(select(CheckIn).where(CheckIn.elder_id == elder.id)))
    head = await db.scalar(select(User.id).where(User.username == people[Role.BUILDING_HEAD]))
    assert [(r.method, r.by_user_id) for r in rows] == [(CheckInMethod.PHONE, head)]
    # A grid worker who is not in the chain sees nothing of this elder and cannot signal for them.
    await web.logout()
    await login(web, people[Role.GRID_WORKER])
    assert "赵桂英" not in (await web.client.get("/signals")).text
    token = await web.csrf("/signals")
    assert (await web.client.post(f"/signals/{elder.id}/checkin", data={"_csrf_token": token, "method": "phone"})).status_code == 404


async def test_an_alert_is_acknowledged_and_resolved_on_its_page(web: Web, db: AsyncSession, people: dict[Role, str],
                                                                   settings: Settings) -> None:
    elder = await enrol(db, people, "钱淑珍", time(0, 0), time(0, 1))  # the window is over: an alert is due
    today = morning_signal.day_of(elder, datetime.now(UTC), settings.tz)
    await morning_signal.sweep(db, morning_signal.schedule(elder, today, settings.tz).alert_at, settings.tz)  # a moved clock
    await db.commit()
    alert = await db.scalar(select(ElderAlert).where(ElderAlert.elder_id == elder.id, ElderAlert.day == today))
    assert alert is not None and alert.status == AlertStatus.OPEN
    alert_id: UUID = alert.id
    await login(web, people[Role.VOLUNTEER])
    board = await web.client.get("/signals")
    assert f"/signals/alerts/{alert_id}" in board.text
    token = await web.csrf(f"/signals/alerts/{alert_id}")
    assert (await web.client.post(f"/signals/alerts/{alert_id}/acknowledge", data={"_csrf_token": token})).status_code == 303
    refused = await web.client.post(f"/signals/alerts/{alert_id}/resolve", data={"_csrf_token": token, "outcome": "false_alarm", "note": ""})
    assert refused.status_code == 400 and 'id="note-error"' in refused.text
    resolved = await web.client.post(f"/signals/alerts/{alert_id}/resolve",
                                     data={"_csrf_token": token, "outcome": "false_alarm", "note": "老人去早市了，手机没带"})
    assert resolved.status_code == 303
    await db.commit()
    db.expire_all()
    done = await db.get(ElderAlert, alert_id)
    assert done is not None and (done.status, done.outcome, done.note) == (AlertStatus.RESOLVED, AlertOutcome.FALSE_ALARM, "老人去早市了，手机没带")
    page = await web.client.get(f"/signals/alerts/{alert_id}")
    assert page.text.count("<time") >= 3  # opened, sent, acknowledged, resolved
