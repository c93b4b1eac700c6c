"""Notifications (X6): an in-app inbox always, plus pluggable outbound channels that never block the workflow."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import UUID

import httpx
from sqlalchemy import event, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from server.models import Notification, Role, User

logger = logging.getLogger("shanzhi.notifications")
OUTBOX_KEY = "shanzhi.outbound"
STAFF_KEY = "shanzhi.staff_ids"  # staff_ids() of the current transaction


@dataclass(frozen=True)
class Message:
    user_id: UUID
    kind: str
    text: str  # msgid; channels that send text translate it themselves
    params: dict[str, Any] = field(default_factory=dict)


class Channel(Protocol):
    name: str

    async def send(self, message: Message) -> None: ...


class LoggingChannel:
    """The default outbound channel: a log line per message."""

    name = "log"

    async def send(self, message: Message) -> None:
        logger.info("notify user=%s kind=%s %s %s", message.user_id, message.kind, message.text, message.params)


@dataclass
class WebhookChannel:
    """POSTs each message as JSON to a URL (an SMS or WeChat gateway sits behind it)."""

    url: str
    timeout: float = 5.0
    name: str = "webhook"

    async def send(self, message: Message) -> None:
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            response = await client.post(
                self.url,
                json={"user_id": str(message.user_id), "kind": message.kind, "text": message.text, "params": message.params},
            )
            response.raise_for_status()


_channels: list[Channel] = [LoggingChannel()]


def channels_for(webhook_url: str | None) -> list[Channel]:
    """The outbound channels a deployment asks for: always the log, plus a webhook when configured."""
    configured: list[Channel] = [LoggingChannel()]
    if webhook_url:
        configured.append(WebhookChannel(webhook_url))
    return configured


def configure_channels(channels: Iterable[Channel]) -> None:
    _channels[:] = list(channels)


def channels() -> list[Channel]:
    return list(_channels)


async def deliver(messages: list[Message]) -> None:
    """Send to every channel; a failing channel is logged and skipped, never raised."""
    for message in messages:
        for channel in channels():
            try:
                await channel.send(message)
            except Exception:  # noqa: BLE001 - an outbound failure must not affect the case
                logger.warning("channel %s failed for %s", channel.name, message.kind, exc_info=True)


@event.listens_for(Session, "after_commit")
def _send_after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint was released; the real commit comes later (or not at all)
    session.info.pop(STAFF_KEY, None)
    messages = session.info.pop(OUTBOX_KEY, None)
    if not messages:
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    task = loop.create_task(deliver(messages))
    _pending.add(task)
    task.add_done_callback(_pending.discard)


@event.listens_for(Session, "after_rollback")
def _drop_on_rollback(session: Session) -> None:
    if session.in_nested_transaction():
        return  # only a savepoint was rolled back; what the transaction queued before it stands
    session.info.pop(OUTBOX_KEY, None)
    session.info.pop(STAFF_KEY, None)


_pending: set[asyncio.Task[None]] = set()


async def notify(
    session: AsyncSession,
    user_ids: Iterable[UUID],
    *,
    kind: str,
    text: str,
    dedupe: str,
    appeal_id: UUID | None = None,
    params: dict[str, Any] | None = None,
) -> int:
    """Add an inbox entry per user, at most once per (dedupe, user); outbound sends happen after commit."""
    created = 0
    for user_id in dict.fromkeys(user_ids):
        key = f"{dedupe}:{user_id}"
        if await session.scalar(select(Notification.id).where(Notification.dedupe_key == key)) is not None:
            continue
        try:
            # A savepoint per entry: when another worker wrote the same key first, only this entry is dropped.
            async with session.begin_nested():
                session.add(
                    Notification(
                        user_id=user_id, kind=kind, appeal_id=appeal_id, message=text, params=params or {}, dedupe_key=key
                    )
                )
                await session.flush()
        except IntegrityError:
            continue
        session.sync_session.info.setdefault(OUTBOX_KEY, []).append(Message(user_id, kind, text, params or {}))
        created += 1
    return created


async def staff_ids(session: AsyncSession) -> list[UUID]:
    """Active staff and admins; asked once per transaction (a request, a sync batch, a job run)."""
    cached = session.sync_session.info.get(STAFF_KEY)
    if cached is None:
        rows = await session.scalars(select(User.id).where(User.role.in_([Role.STAFF, Role.ADMIN]), User.is_active.is_(True)))
        cached = session.sync_session.info[STAFF_KEY] = list(rows)
    return list(cached)


async def department_user_ids(session: AsyncSession, department_ids: Iterable[UUID]) -> list[UUID]:
    ids = list(department_ids)
    if not ids:
        return []
    rows = await session.scalars(
        select(User.id).where(User.department_id.in_(ids), User.role == Role.DEPARTMENT, User.is_active.is_(True))
    )
    return list(rows)


async def inbox(session: AsyncSession, user_id: UUID, limit: int = 100) -> list[Notification]:
    rows = await session.scalars(
        select(Notification).where(Notification.user_id == user_id).order_by(Notification.created_at.desc()).limit(limit)
    )
    return list(rows)


async def unread_count(session: AsyncSession, user_id: UUID) -> int:
    return await session.scalar(
        select(func.count()).select_from(Notification).where(Notification.user_id == user_id, Notification.read_at.is_(None))
    ) or 0


async def mark_all_read(session: AsyncSession, user_id: UUID, now: Any) -> None:
    await session.execute(
        update(Notification).where(Notification.user_id == user_id, Notification.read_at.is_(None)).values(read_at=now)
    )
