"""Notifications (X6): an in-app inbox entry always, and durable outbound messages for the configured
channels (a webhook now; SMS or WeChat gateways behind it).

An outbound message is a row written in the same transaction as its cause (invariant 10): a rollback
takes it away, a commit keeps it even if the process stops the next moment. The worker delivers due
messages at least once (`deliver_due`): it leases a batch in one short transaction, sends outside any
transaction, then records each result, retrying failures with exponential back-off until
MAX_ATTEMPTS. The message id travels as the idempotency key, so a receiver can drop a repeat.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

import httpx
from sqlalchemy import event, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from server.i18n import current_locale, gettext
from server.models import Notification, OutboundMessage, OutboundStatus, Role, User

logger = logging.getLogger("shanzhi.notifications")
STAFF_KEY = "shanzhi.staff_ids"  # staff_ids() of the current transaction
DEPARTMENTS_KEY = "shanzhi.department_users"  # department_user_ids() of the current transaction
LOGGED_KEY = "shanzhi.notified"  # notices of the current transaction, logged after commit
CREATED_KEY = "shanzhi.outbound_created"

MAX_ATTEMPTS = 10
FIRST_RETRY = timedelta(seconds=30)
LONGEST_WAIT = timedelta(hours=1)
LEASE = timedelta(minutes=2)  # an attempt under way; a worker that died mid-send is retried after it
BATCH = 50


@dataclass(frozen=True)
class Message:
    """What a channel is given to send. `id` is the idempotency key (the outbound row's id)."""

    user_id: UUID | None
    kind: str
    text: str  # msgid; channels that send text translate it themselves
    params: dict[str, Any] = field(default_factory=dict)
    id: UUID | None = None


class Channel(Protocol):
    name: str

    async def send(self, message: Message) -> None: ...


@dataclass
class WebhookChannel:
    """POSTs each message as JSON to a URL (an SMS or WeChat gateway sits behind it). The message id
    is in the body and in the Idempotency-Key header: a retried message carries the same one."""

    url: str
    timeout: float = 5.0
    name: str = "webhook"

    async def send(self, message: Message) -> None:
        body = {
            "id": str(message.id) if message.id else None,
            "user_id": str(message.user_id) if message.user_id else None,
            "kind": message.kind,
            "text": message.text,
            "params": message.params,
            "text_zh": render_text(message.text, message.params, "zh_CN"),
        }
        headers = {"Idempotency-Key": str(message.id)} if message.id else {}
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            response = await client.post(self.url, json=body, headers=headers)
            response.raise_for_status()


_channels: list[Channel] = []
_public_base: list[str] = [""]  # SHANZHI_PUBLIC_URL, for links in messages sent outside


def channels_for(webhook_url: str | None) -> list[Channel]:
    """The outbound channels a deployment asks for: a webhook when configured, else none (the inbox
    and the log always have every notice)."""
    return [WebhookChannel(webhook_url)] if webhook_url else []


def configure_channels(channels: Iterable[Channel], *, public_url: str | None = None) -> None:
    """The outbound channels, and the public address links in outbound messages are built on."""
    _channels[:] = list(channels)
    _public_base[0] = public_url or ""


def public_link(path: str) -> str:
    """A link for a message read outside the app (an SMS): absolute on SHANZHI_PUBLIC_URL when it is
    set; otherwise the path alone (a message has no request whose host could stand in)."""
    return f"{_public_base[0]}{path}"


def channels() -> list[Channel]:
    return list(_channels)


def render_text(message: str, params: dict[str, Any] | None, locale: str | None = None) -> str:
    """A notice in a language; the one place notices are formatted (inbox, log, webhook)."""
    token = current_locale.set(locale) if locale else None
    try:
        text = gettext(message)
        params = {k: v for k, v in (params or {}).items() if not isinstance(v, list | dict)}
        try:
            return text % params if params else text
        except (KeyError, TypeError, ValueError):
            return text
    finally:
        if token is not None:
            current_locale.reset(token)


# --- Writing notices ----------------------------------------------------------------------------------


_wake: list[Callable[[], None]] = []


def on_new_outbound(callback: Callable[[], None]) -> Callable[[], None]:
    """Call `callback` after a commit that stored outbound messages (the embedded worker wakes up)."""
    _wake.append(callback)
    return lambda: _wake.remove(callback)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint was released; the real commit comes later (or not at all)
    session.info.pop(STAFF_KEY, None)
    session.info.pop(DEPARTMENTS_KEY, None)
    for message in session.info.pop(LOGGED_KEY, []):
        logger.info("notify user=%s kind=%s: %s", message.user_id, message.kind, render_text(message.text, message.params, "zh_CN"))
    if session.info.pop(CREATED_KEY, False):
        for wake in list(_wake):
            wake()


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    if session.in_nested_transaction():
        return  # only a savepoint was rolled back; what the transaction queued before it stands
    for key in (LOGGED_KEY, STAFF_KEY, DEPARTMENTS_KEY, CREATED_KEY):
        session.info.pop(key, None)


def text_phone(session: AsyncSession, phone: str, kind: str, text: str, params: dict[str, Any], appeal_id: UUID | None = None) -> int:
    """A message for someone with no account (a resident who left a phone number), through every
    outbound channel (the gateway behind the webhook sends it as an SMS); stored in this transaction,
    sent by the worker. Returns the number of messages stored (0 when no channel is configured)."""
    rows = _outbound(None, kind, text, {**params, "phone": phone}, appeal_id)
    session.add_all(rows)
    if rows:
        session.sync_session.info[CREATED_KEY] = True
    return len(rows)


def _outbound(user_id: UUID | None, kind: str, text: str, params: dict[str, Any], appeal_id: UUID | None) -> list[OutboundMessage]:
    """One message per configured outbound channel, due now (the worker sends it after the commit)."""
    return [
        OutboundMessage(
            channel=channel.name, user_id=user_id, kind=kind, message=text, params=params,
            appeal_id=appeal_id, status=OutboundStatus.PENDING, attempts=0, next_attempt_at=datetime.now(UTC),
        )
        for channel in _channels
    ]


@dataclass(frozen=True)
class Notice:
    """One notice for some users: an inbox entry each, at most once per (dedupe, user)."""

    user_ids: tuple[UUID, ...]
    kind: str
    text: str  # msgid
    dedupe: str
    appeal_id: UUID | None = None
    params: dict[str, Any] | None = None


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
    """An inbox entry per user, at most once per (dedupe, user), and an outbound message per configured
    channel, all in the caller's transaction."""
    notice = Notice(tuple(user_ids), kind, text, dedupe, appeal_id, params)
    return await notify_many(session, [notice])


KEYS_PER_QUERY = 500


async def values_present(session: AsyncSession, column: Any, values: Sequence[Any]) -> set[Any]:
    """Which of these values `column` holds: one query per KEYS_PER_QUERY values, not one per value
    (jobs and batches check thousands of dedupe keys at once)."""
    found: set[Any] = set()
    for i in range(0, len(values), KEYS_PER_QUERY):
        found.update(await session.scalars(select(column).where(column.in_(values[i : i + KEYS_PER_QUERY]))))
    return found


async def notify_many(session: AsyncSession, notices: Sequence[Notice]) -> int:
    """Every notice's entries in one savepoint (one per entry only if another worker wrote one first):
    a job that tells thousands of people costs a few statements, not a few per person (issue 11)."""
    wanted: dict[str, tuple[Notice, UUID]] = {}
    for notice in notices:
        for user_id in notice.user_ids:
            wanted.setdefault(f"{notice.dedupe}:{user_id}", (notice, user_id))
    if not wanted:
        return 0
    done = await values_present(session, Notification.dedupe_key, list(wanted))
    todo = [(key, notice, user_id) for key, (notice, user_id) in wanted.items() if key not in done]
    if not todo:
        return 0

    def rows(key: str, notice: Notice, user_id: UUID) -> list[Any]:
        params = notice.params or {}
        made: list[Any] = [
            Notification(
                user_id=user_id, kind=notice.kind, appeal_id=notice.appeal_id, message=notice.text, params=params, dedupe_key=key
            )
        ]
        return made + _outbound(user_id, notice.kind, notice.text, params, notice.appeal_id)

    created: list[tuple[str, Notice, UUID]] = []
    try:
        async with session.begin_nested():
            for entry in todo:
                session.add_all(rows(*entry))
            await session.flush()
        created = todo
    except IntegrityError:
        # Another worker wrote some of the same keys meanwhile: one savepoint per entry drops only those.
        for entry in todo:
            try:
                async with session.begin_nested():
                    session.add_all(rows(*entry))
                    await session.flush()
            except IntegrityError:
                continue
            created.append(entry)
    logged = session.sync_session.info.setdefault(LOGGED_KEY, [])
    logged += [Message(user_id, notice.kind, notice.text, notice.params or {}) for _key, notice, user_id in created]
    if _channels and created:
        session.sync_session.info[CREATED_KEY] = True
    return len(created)


# --- Delivering outbound messages (the worker) ------------------------------------------------------------


def retry_delay(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min, 4 min ... at most an hour, after the `attempts`-th failure."""
    return min(FIRST_RETRY * (2 ** max(attempts - 1, 0)), LONGEST_WAIT)


@dataclass
class DeliveryReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0


async def deliver_due(session_factory: Callable[[], Any], now: datetime) -> DeliveryReport:
    """Send every due outbound message once; record each result. `session_factory()` opens a session
    (an async context manager); each step commits on its own, and nothing is sent inside a transaction."""
    report = DeliveryReport()
    by_name = {c.name: c for c in _channels}
    async with session_factory() as session:
        query = (
            select(OutboundMessage)
            .where(OutboundMessage.status == OutboundStatus.PENDING, OutboundMessage.next_attempt_at <= now)
            .order_by(OutboundMessage.next_attempt_at, OutboundMessage.id)
            .limit(BATCH)
            .with_for_update(skip_locked=True)  # PostgreSQL: two workers never lease the same message
        )
        due = list(await session.scalars(query))
        for row in due:
            row.attempts += 1
            row.next_attempt_at = now + LEASE
        leased = [
            (row.id, row.channel, Message(row.user_id, row.kind, row.message, dict(row.params or {}), id=row.id), row.attempts)
            for row in due
        ]
        await session.commit()
    results: list[tuple[UUID, int, str | None]] = []
    for message_id, channel_name, message, attempts in leased:
        channel = by_name.get(channel_name)
        error: str | None = None
        if channel is None:
            error = f"channel {channel_name!r} is not configured"
        else:
            try:
                await channel.send(message)
            except Exception as exc:  # noqa: BLE001 - any failure is retried; the case is never affected
                error = f"{type(exc).__name__}: {exc}"[:255]
                logger.warning("channel %s failed for message %s (attempt %d): %s", channel_name, message_id, attempts, error)
        results.append((message_id, attempts, error))
    if not results:
        return report
    async with session_factory() as session:
        for message_id, attempts, error in results:
            if error is None:
                values: dict[str, Any] = {"status": OutboundStatus.SENT, "sent_at": now, "last_error": None}
                report.sent += 1
            elif attempts >= MAX_ATTEMPTS:
                values = {"status": OutboundStatus.FAILED, "last_error": error}
                report.failed += 1
            else:
                values = {"last_error": error, "next_attempt_at": now + retry_delay(attempts)}
                report.retried += 1
            await session.execute(update(OutboundMessage).where(OutboundMessage.id == message_id).values(**values))
        await session.commit()
    return report


async def outbound_summary(session: AsyncSession) -> dict[OutboundStatus, int]:
    rows = await session.execute(select(OutboundMessage.status, func.count()).group_by(OutboundMessage.status))
    counts = dict.fromkeys(OutboundStatus, 0)
    counts.update({status: count for status, count in rows})
    return counts


async def recent_outbound(session: AsyncSession, *, status: OutboundStatus | None = None, limit: int = 100) -> list[OutboundMessage]:
    query = select(OutboundMessage).order_by(OutboundMessage.created_at.desc()).limit(limit)
    if status is not None:
        query = query.where(OutboundMessage.status == status)
    return list(await session.scalars(query))


async def retry_failed(session: AsyncSession, now: datetime) -> int:
    """Send every failed message again (an admin fixed the gateway): back to pending, due now."""
    result = await session.execute(
        update(OutboundMessage)
        .where(OutboundMessage.status == OutboundStatus.FAILED)
        .values(status=OutboundStatus.PENDING, attempts=0, next_attempt_at=now)
    )
    return result.rowcount or 0


# --- Reading the inbox ------------------------------------------------------------------------------------


async def staff_ids(session: AsyncSession) -> list[UUID]:
    """Active staff and admins; asked once per transaction (a request, a sync batch, a job run)."""
    cached = session.sync_session.info.get(STAFF_KEY)
    if cached is None:
        rows = await session.scalars(select(User.id).where(User.role.in_([Role.STAFF, Role.ADMIN]), User.is_active.is_(True)))
        cached = session.sync_session.info[STAFF_KEY] = list(rows)
    return list(cached)


async def department_user_ids(session: AsyncSession, department_ids: Iterable[UUID]) -> list[UUID]:
    """Active users of these departments; each department asked once per transaction (a job run tells
    thousands of cases' departments)."""
    ids = list(dict.fromkeys(department_ids))
    if not ids:
        return []
    known: dict[UUID, list[UUID]] = session.sync_session.info.setdefault(DEPARTMENTS_KEY, {})
    missing = [i for i in ids if i not in known]
    if missing:
        for department_id in missing:
            known[department_id] = []
        rows = await session.execute(
            select(User.department_id, User.id).where(
                User.department_id.in_(missing), User.role == Role.DEPARTMENT, User.is_active.is_(True)
            )
        )
        for department_id, user_id in rows:
            known[department_id].append(user_id)
    return [user_id for i in ids for user_id in known[i]]


async def inbox(session: AsyncSession, user_id: UUID, limit: int = 100) -> list[Notification]:
    rows = await session.scalars(
        select(Notification).where(Notification.user_id == user_id).order_by(Notification.created_at.desc()).limit(limit)
    )
    return list(rows)


UNREAD_SHOWN = 99  # the menu badge says "99+" beyond this


async def unread_count(session: AsyncSession, user_id: UUID) -> int:
    """Unread notices, counted up to UNREAD_SHOWN + 1: asked on every page, it must not cost more for
    someone with thousands waiting (issue 11)."""
    unread = (
        select(Notification.id)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        .limit(UNREAD_SHOWN + 1)
        .subquery()
    )
    return await session.scalar(select(func.count()).select_from(unread)) or 0


async def mark_all_read(session: AsyncSession, user_id: UUID, now: Any) -> None:
    await session.execute(
        update(Notification).where(Notification.user_id == user_id, Notification.read_at.is_(None)).values(read_at=now)
    )

