"""The elder's own page (晨曦信号): one button, seven marks, nothing about anyone else; the link is the
credential, and a reissued link revokes the old one."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.models import CheckIn, CheckInMethod, Elder
from server.services import morning_signal
from server.services.morning_signal import ElderInput, HelperInput
from tests.helpers import Web


async def enrolled(db: AsyncSession) -> Elder:
    elder = await morning_signal.enrol(db, ElderInput(name="王秀兰", address="文华园小区7号楼1单元102", phone="13911112222",
                                                      window_start=time(0, 0), window_end=time(23, 59)),
                                       [HelperInput("family", "王女儿", phone="13800001111")], now=datetime(2026, 1, 1, tzinfo=UTC))
    await db.commit()
    return elder


async def test_the_elder_presses_the_button_and_sees_todays_mark(client: AsyncTestClient, web: Web, db: AsyncSession) -> None:
    elder = await enrolled(db)
    page = await client.get(f"/checkin/{elder.token}")
    assert page.status_code == 200 and 'class="checkin-button"' in page.text
    assert page.text.count('<li class="week-mark') == 7 and "is-signalled" not in page.text
    # Nothing personal on the page, not even the elder's own details, and no way elsewhere.
    for secret in ("王秀兰", "文华园小区7号楼", "13911112222", "王女儿", "13800001111"):
        assert secret not in page.text
    assert 'class="site-nav"' not in page.text and page.headers["x-robots-tag"] == "noindex"

    token = await web.csrf(f"/checkin/{elder.token}")
    pressed = await client.post(f"/checkin/{elder.token}", data={"_csrf_token": token})
    assert pressed.status_code == 303
    after = await client.get(f"/checkin/{elder.token}")
    assert "is-signalled" in after.text and 'role="status"' in after.text
    rows = list(await db.scalars(select(CheckIn).where(CheckIn.elder_id == elder.id)))
    assert [(r.method, r.by_user_id) for r in rows] == [(CheckInMethod.SELF, None)]


async def test_a_reissued_link_revokes_the_old_one(client: AsyncTestClient, db: AsyncSession) -> None:
    elder = await enrolled(db)
    old = elder.token
    elder.token = morning_signal.new_token()
    await db.commit()
    assert (await client.get(f"/checkin/{old}")).status_code == 404
    assert (await client.get(f"/checkin/{elder.token}")).status_code == 200
    assert (await client.get(f"/checkin/{elder.token}/manifest.webmanifest")).json()["start_url"] == f"/checkin/{elder.token}"
    assert (await client.get("/checkin/" + "y" * 40)).status_code == 404


async def test_a_press_queued_offline_arrives_once_with_the_time_it_was_pressed(client: AsyncTestClient, db: AsyncSession) -> None:
    """The elder's phone pushes through the sync API with the link as its credential (docs/sync.md)."""
    from tests.integration.sync_world import Device

    elder = await enrolled(db)
    phone = Device()
    pressed = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    mutation = phone.mutation("morning_signal", "checkin", {}, recorded_at=pressed)
    headers = {**phone.headers, "X-Shanzhi-Credential": f"checkin_token {elder.token}"}
    for expected in ("applied", "duplicate"):  # the answer was lost: the phone sends it again
        answer = await client.post("/sync/push", json=phone.batch(mutation), headers=headers)
        assert answer.status_code == 200, answer.text
        assert [r["status"] for r in answer.json()["results"]] == [expected]
    rows = list(await db.scalars(select(CheckIn).where(CheckIn.elder_id == elder.id)))
    assert [(r.at, r.method, str(r.id)) for r in rows] == [(pressed, CheckInMethod.SELF, mutation["entity_id"])]

    # Without the credential, or with a reissued (revoked) link, nothing is accepted.
    assert (await client.post("/sync/push", json=phone.batch(phone.mutation("morning_signal", "checkin", {})), headers=phone.headers)).status_code == 401
    old = elder.token
    elder.token = morning_signal.new_token()
    await db.commit()
    stale = {**phone.headers, "X-Shanzhi-Credential": f"checkin_token {old}"}
    assert (await client.post("/sync/push", json=phone.batch(phone.mutation("morning_signal", "checkin", {})), headers=stale)).status_code == 403


async def test_a_grid_worker_signals_for_an_elder_of_their_chain_offline(client: AsyncTestClient, web: Web, db: AsyncSession) -> None:
    """The field app's `morning_signal.checkin_for`: their own chain only, with how, at the time saved on the phone."""
    from server.models import Role
    from server.services import accounts
    from tests.integration.sync_world import Device

    worker = await accounts.create_user(db, username="wg", password="wg-password-1", role=Role.GRID_WORKER, display_name="王网格")
    other = await accounts.create_user(db, username="zg", password="zg-password-1", role=Role.GRID_WORKER, display_name="赵网格")
    elder = await morning_signal.enrol(db, ElderInput(name="孙桂珍", address="东舍坊小区1号楼"), [
        HelperInput("grid_worker", "王网格", user_id=worker.id)], now=datetime(2026, 1, 1, tzinfo=UTC))
    await db.commit()
    elder_id, worker_id = elder.id, worker.id
    assert other.id != worker_id

    assert (await web.login("wg", "wg-password-1")).status_code == 303
    phone = Device()
    pulled = (await client.get("/sync/pull", headers=phone.headers)).json()["records"]
    assert [(r["entity"], r["data"]["name"], r["data"]["address"]) for r in pulled if r["entity"] == "elder"] == [("elder", "孙桂珍", "东舍坊小区1号楼")]
    saved = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=40)
    mutation = phone.mutation("morning_signal", "checkin_for", {"elder_id": str(elder_id), "method": "phone", "note": "电话里声音很好"},
                              recorded_at=saved)
    answer = await client.post("/sync/push", json=phone.batch(mutation), headers=phone.headers)
    assert [r["status"] for r in answer.json()["results"]] == ["applied"]
    rows = list(await db.scalars(select(CheckIn).where(CheckIn.elder_id == elder_id)))
    assert [(r.at, r.method, r.by_user_id, r.note) for r in rows] == [(saved, CheckInMethod.PHONE, worker_id, "电话里声音很好")]

    # Another grid worker is not in the chain: refused, and the elder is not in their pull.
    await web.logout()
    assert (await web.login("zg", "zg-password-1")).status_code == 303
    stranger = Device()
    assert all(r["entity"] != "elder" for r in (await client.get("/sync/pull", headers=stranger.headers)).json()["records"])
    refused = await client.post("/sync/push", json=stranger.batch(stranger.mutation(
        "morning_signal", "checkin_for", {"elder_id": str(elder_id), "method": "in_person"})), headers=stranger.headers)
    assert refused.json()["results"][0]["code"] == "forbidden"
    assert len(list(await db.scalars(select(CheckIn).where(CheckIn.elder_id == elder_id)))) == 1

