"""Events (P5): staff plan and record events and register the appeals raised there (channel = event); the
public page lists upcoming events before past ones and shows what came of each, never who raised what."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.models import Appeal, AppealChannel, CommunityEvent, Role
from server.services import events
from server.settings import Settings
from tests.helpers import Web
from tests.integration.staff_cases import in_session
from tests.integration.test_enterprise_pages import sign_in


async def add_event(settings: Settings, topic: str, starts_at: datetime, **changes: object) -> UUID:
    data = events.EventInput(kind="policy_express", topic=topic, starts_at=starts_at, venue="街道三楼会议室", host="街道经济发展办公室")
    for key, value in changes.items():
        setattr(data, key, value)

    async def work(session: AsyncSession) -> UUID:
        return (await events.save(session, data)).id

    return await in_session(settings, work)


async def test_staff_create_an_event_in_beijing_time(web: Web, english: None, settings: Settings, people: dict[Role, str]) -> None:
    await sign_in(web, "staff")
    refused = await web.post_form("/events/new", {"kind": "open_mic", "topic": "", "starts_at": "2026-05-20T14:30",
                                                  "supervisors": "张三（人大代表）", "attendance": "很多"})
    assert refused.status_code == 400
    assert "Please enter the topic." in refused.text and "Please enter the attendance as a whole number." in refused.text
    assert 'value="很多"' in refused.text and "张三（人大代表）" in refused.text

    saved = await web.post_form("/events/new", {
        "kind": "open_mic", "topic": "楼宇开放麦：企业用工", "starts_at": "2026-05-20T14:30", "venue": "鲁粮集团办公楼一楼",
        "host": "街道党工委", "supervisors": "张三（人大代表）\n\n李四（政协委员）\n", "attendance": "36", "minutes": "企业反映招工难。",
    })
    assert saved.status_code == 303, saved.text

    async def stored(session: AsyncSession) -> CommunityEvent:
        return (await session.scalars(select(CommunityEvent))).one()

    event = await in_session(settings, stored)
    assert event.starts_at == datetime(2026, 5, 20, 6, 30, tzinfo=UTC)  # 14:30 in Asia/Shanghai
    assert event.supervisors == ["张三（人大代表）", "李四（政协委员）"] and event.attendance == 36
    edit = await web.client.get(saved.headers["location"])
    assert "Event saved: 楼宇开放麦：企业用工." in edit.text
    assert 'value="2026-05-20T14:30"' in edit.text


async def test_an_appeal_raised_at_an_event_is_counted_publicly_without_who_raised_it(
    web: Web, english: None, settings: Settings, people: dict[Role, str],
) -> None:
    event_id = await add_event(settings, "政策直通车：稳岗补贴", datetime.now(UTC) - timedelta(days=1), minutes="讲解稳岗补贴申报。")
    await sign_in(web, "staff")
    path = f"/events/{event_id}/appeals"

    refused = await web.post_form(path, {"submitter_kind": "enterprise", "category": "", "description": "园区门口道路破损",
                                         "submitter_name": "赵经理", "submitter_phone": "13700001111"})
    assert refused.status_code == 400
    assert 'value="赵经理"' in refused.text and "园区门口道路破损" in refused.text

    enterprise_category = re.search(r'<optgroup label="Enterprise">\s*<option value="([^"]+)"', refused.text)
    assert enterprise_category
    done = await web.post_form(path, {"submitter_kind": "enterprise", "category": enterprise_category.group(1),
                                      "description": "园区门口道路破损", "submitter_name": "赵经理", "submitter_phone": "13700001111"})
    assert done.status_code == 303, done.text

    async def raised(session: AsyncSession) -> Appeal:
        return (await session.scalars(select(Appeal))).one()

    appeal = await in_session(settings, raised)
    assert appeal.channel == AppealChannel.EVENT and appeal.event_id == event_id
    edit = await web.client.get(done.headers["location"].split("#")[0])
    assert f"Appeal {appeal.reference} registered for this event." in edit.text

    await web.logout()
    public = await web.client.get(f"/events/{event_id}")
    assert public.status_code == 200
    assert re.search(r'id="appeal-count">1<', public.text)
    assert appeal.reference in public.text and "讲解稳岗补贴申报。" in public.text
    for private in ("赵经理", "13700001111", "园区门口道路破损"):
        assert private not in public.text
    listing = await web.client.get("/events")
    assert "Appeals raised" in listing.text and "赵经理" not in listing.text


async def test_the_public_list_shows_upcoming_events_before_past_ones(web: Web, settings: Settings, people: dict[Role, str]) -> None:
    now = datetime.now(UTC)
    await add_event(settings, "去年的民生面对面", now - timedelta(days=300), kind="face_to_face", attendance="52")
    await add_event(settings, "上周的政策直通车", now - timedelta(days=7))
    await add_event(settings, "下月的政府开放日", now + timedelta(days=30), kind="open_day")
    await add_event(settings, "明天的星火小屋议事", now + timedelta(days=1), kind="xinghuo")
    page = await web.client.get("/events")
    assert page.status_code == 200
    order = [page.text.index(topic) for topic in ("明天的星火小屋议事", "下月的政府开放日", "上周的政策直通车", "去年的民生面对面")]
    assert order == sorted(order)
    assert page.text.index('id="upcoming"') < order[0] < order[1] < page.text.index('id="past"') < order[2]


async def test_the_staff_list_links_to_editing(web: Web, settings: Settings, people: dict[Role, str]) -> None:
    event_id = await add_event(settings, "政策直通车：研发费用加计扣除", datetime.now(UTC) + timedelta(days=3))
    await sign_in(web, "staff")
    page = await web.client.get("/events/manage")
    assert page.status_code == 200 and f'href="/events/{event_id}/edit"' in page.text and 'href="/events/new"' in page.text


def _jpeg(colour: tuple[int, int, int]) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(out, "JPEG")
    return out.getvalue()


async def test_photos_of_an_event_show_on_its_public_page(web: Web, english: None, settings: Settings, people: dict[Role, str]) -> None:
    event_id = await add_event(settings, "民生面对面：加装电梯", datetime.now(UTC) - timedelta(days=2))
    await sign_in(web, "staff")
    token = await web.csrf()
    files = [("photos", ("a.jpg", _jpeg((200, 30, 30)), "image/jpeg")), ("photos", ("b.jpg", _jpeg((30, 200, 30)), "image/jpeg"))]
    saved = await web.client.post(f"/events/{event_id}/photos", data={"_csrf_token": token}, files=files)
    assert saved.status_code == 303, saved.text
    shas = await in_session(settings, lambda s: s.scalar(select(CommunityEvent.photos).where(CommunityEvent.id == event_id)))
    assert len(shas) == 2

    await web.logout()
    page = await web.client.get(f"/events/{event_id}")
    for sha in shas:
        assert f"/events/{event_id}/photos/{sha}" in page.text
        photo = await web.client.get(f"/events/{event_id}/photos/{sha}")
        assert photo.status_code == 200 and photo.headers["content-type"] == "image/jpeg"
    # A stored photo of something else is not served through this event.
    assert (await web.client.get(f"/events/{event_id}/photos/{'0' * 64}")).status_code == 404

    # Not an image: refused with the reason, the photos kept.
    await sign_in(web, "staff")
    token = await web.csrf()
    refused = await web.client.post(f"/events/{event_id}/photos", data={"_csrf_token": token},
                                    files=[("photos", ("notes.txt", b"not a photo", "text/plain"))])
    assert refused.status_code == 400 and "Photos must be JPEG, PNG or WebP images." in refused.text
    # Removing one keeps the other.
    removed = await web.client.post(f"/events/{event_id}/photos", data={"_csrf_token": token, "remove": shas[0]},
                                    files=[("photos", ("", b"", "application/octet-stream"))])
    assert removed.status_code == 303
    assert await in_session(settings, lambda s: s.scalar(select(CommunityEvent.photos).where(CommunityEvent.id == event_id))) == shas[1:]
