"""Events (P5): 政策直通车, 政府开放日, 楼宇开放麦, 民生面对面, 星火小屋议事 — when, where, who hosted and
supervised, attendance, minutes, and the appeals raised there (through the appeals service, channel = event)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.i18n import N_
from server.models import Appeal, CommunityEvent, EventKind, Place
from server.services.errors import InvalidInput, ServiceError
from server.services.photos import process_photos, save_photo

KIND_LABELS = {
    EventKind.POLICY_EXPRESS: N_("Policy express"),  # 政策直通车
    EventKind.OPEN_DAY: N_("Government open day"),  # 政府开放日
    EventKind.OPEN_MIC: N_("Building open mic"),  # 楼宇开放麦
    EventKind.FACE_TO_FACE: N_("Face to face with residents"),  # 民生面对面
    EventKind.XINGHUO: N_("Xinghuo hut council"),  # 星火小屋议事
}
MAX_TOPIC = 120
MAX_MINUTES = 10000
PAGE_SIZE = 30


@dataclass
class EventInput:
    kind: str = ""
    topic: str = ""
    starts_at: datetime | None = None
    place_id: UUID | None = None
    venue: str = ""
    host: str = ""
    supervisors: list[str] = field(default_factory=list)
    attendance: str = ""
    minutes: str = ""


class InvalidEvent(InvalidInput):
    pass


async def save(session: AsyncSession, data: EventInput, event: CommunityEvent | None = None) -> CommunityEvent:
    problems: list[ServiceError] = []
    if data.kind not in {k.value for k in EventKind}:
        problems.append(ServiceError(N_("Please choose one of the options."), field="kind"))
    topic = data.topic.strip()
    if not topic:
        problems.append(ServiceError(N_("Please enter the topic."), field="topic"))
    elif len(topic) > MAX_TOPIC:
        problems.append(ServiceError(N_("Please keep the topic under %(n)d characters."), field="topic", n=MAX_TOPIC))
    if data.starts_at is None:
        problems.append(ServiceError(N_("Please enter the date and time."), field="starts_at"))
    attendance = None
    if data.attendance.strip():
        try:
            attendance = int(data.attendance.strip())
        except ValueError:
            attendance = -1
        if attendance < 0 or attendance > 100000:
            problems.append(ServiceError(N_("Please enter the attendance as a whole number."), field="attendance"))
    if len(data.minutes) > MAX_MINUTES:
        problems.append(ServiceError(N_("Please keep the minutes under %(n)d characters."), field="minutes", n=MAX_MINUTES))
    if data.place_id is not None and await session.get(Place, data.place_id) is None:
        problems.append(ServiceError(N_("This place does not exist."), field="place_id"))
    if problems:
        raise InvalidEvent(problems)
    assert data.starts_at is not None
    event = event or CommunityEvent()
    event.kind, event.topic, event.starts_at, event.place_id = EventKind(data.kind), topic, data.starts_at, data.place_id
    event.venue, event.host = data.venue.strip(), data.host.strip()
    event.supervisors = [s.strip() for s in data.supervisors if s.strip()][:30]
    event.attendance = attendance
    event.minutes = data.minutes.strip() or None
    session.add(event)
    await session.flush()
    return event


async def upcoming_and_past(session: AsyncSession, now: datetime, *, past_page: int = 1) -> tuple[list[CommunityEvent], list[CommunityEvent], int]:
    upcoming = list(await session.scalars(
        select(CommunityEvent).where(CommunityEvent.starts_at >= now).order_by(CommunityEvent.starts_at).limit(PAGE_SIZE)))
    total = int(await session.scalar(select(func.count()).select_from(CommunityEvent).where(CommunityEvent.starts_at < now)) or 0)
    past = list(await session.scalars(
        select(CommunityEvent).where(CommunityEvent.starts_at < now).order_by(CommunityEvent.starts_at.desc())
        .offset((max(1, past_page) - 1) * PAGE_SIZE).limit(PAGE_SIZE)))
    return upcoming, past, total


async def appeal_counts(session: AsyncSession, event_ids: list[UUID]) -> dict[UUID, int]:
    if not event_ids:
        return {}
    rows = await session.execute(select(Appeal.event_id, func.count()).where(Appeal.event_id.in_(event_ids)).group_by(Appeal.event_id))
    return {k: int(v) for k, v in rows.all()}


MAX_EVENT_PHOTOS = 6


async def add_photos(session: AsyncSession, event: CommunityEvent, raws: list[bytes], uploads_dir: Path,
                     remove: list[str] | None = None) -> CommunityEvent:
    """Keep the event's photos: remove the ones named, then add new ones (checked, downscaled and stored by
    content like appeal photos; event photos are public, they show the event, not a person's case)."""
    kept = [sha for sha in event.photos if sha not in set(remove or [])]
    if len(kept) + len(raws) > MAX_EVENT_PHOTOS:
        raise InvalidEvent([ServiceError(N_("An event keeps at most %(n)d photos."), field="photos", n=MAX_EVENT_PHOTOS)])
    try:
        processed = await process_photos(raws)
    except ServiceError as error:
        raise InvalidEvent([error]) from error
    for photo in processed:
        stored = save_photo(photo, uploads_dir)
        if stored.sha256 not in kept:
            kept.append(stored.sha256)
    event.photos = kept
    await session.flush()
    return event
