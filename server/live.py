"""Live updates for pages that watch something change (the 晨曦信号 board and alert pages today; the
livelihood boards next): Server-Sent Events over Litestar Channels. docs/architecture.md, "Live updates".

- A service that changes something a live page shows calls `announce(session, channel)`; the channel is
  published **after the commit** (a rolled-back change announces nothing), with no payload: a page that
  hears "changed" fetches its fresh HTML (htmx), so nothing personal travels through the broker.
- The broker is in memory by default (one process: `shanzhi serve` with its embedded worker), Redis
  pub/sub when `SHANZHI_REDIS_URL` is set (several web processes, and `shanzhi worker` on its own).
- Pages also poll every 30 s, so a missed event (a phone waking up, a proxy closing the stream) costs at
  most that long.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable, Iterable
from typing import Any

from litestar.channels import ChannelsPlugin
from litestar.channels.backends.base import ChannelsBackend
from litestar.channels.backends.memory import MemoryChannelsBackend
from litestar.response.sse import ServerSentEventMessage
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from server.settings import Settings

logger = logging.getLogger("shanzhi.live")
CHANNELS = ("signals",)  # and one channel per live board, "board.<name>" (server/services/boards.py)
PENDING_KEY = "shanzhi.live"
KEY_PREFIX = "SHANZHI_LIVE"

_publishers: list[Callable[[set[str]], None]] = []


def backend_for(settings: Settings) -> ChannelsBackend:
    if settings.redis_url:
        from litestar.channels.backends.redis import RedisChannelsPubSubBackend
        from redis.asyncio import Redis

        return RedisChannelsPubSubBackend(redis=Redis.from_url(settings.redis_url), key_prefix=KEY_PREFIX)
    return MemoryChannelsBackend()


async def close(backend: ChannelsBackend) -> None:
    """Stop a backend made by `backend_for` and close its Redis connections (the plugin's own shutdown
    leaves the client open)."""
    await backend.on_shutdown()
    redis = getattr(backend, "_redis", None)
    if redis is not None:
        await redis.aclose()


async def close_client(plugin: ChannelsPlugin) -> None:
    """At the app's shutdown (after the plugin stopped its backend): close a Redis client."""
    redis = getattr(plugin._backend, "_redis", None)  # noqa: SLF001 - Litestar keeps the backend private
    if redis is not None:
        await redis.aclose()


def make_plugin(settings: Settings) -> ChannelsPlugin:
    return ChannelsPlugin(backend=backend_for(settings), channels=CHANNELS, arbitrary_channels_allowed=True)


def announce(session: AsyncSession | Session, *channels: str) -> None:
    """Publish `channels` once the session's transaction commits."""
    sync_session = session.sync_session if isinstance(session, AsyncSession) else session
    sync_session.info.setdefault(PENDING_KEY, set()).update(channels)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return
    channels = session.info.pop(PENDING_KEY, None)
    if channels:
        for publish in list(_publishers):
            publish(set(channels))


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    if not session.in_nested_transaction():
        session.info.pop(PENDING_KEY, None)


def publish_through(publish: Callable[[bytes, Iterable[str]], Any]) -> Callable[[], None]:
    """Send announcements with `publish(data, channels)` (a ChannelsPlugin's, or a backend's coroutine),
    from whatever thread committed; returns the function that stops it."""
    loop = asyncio.get_running_loop()

    def send(channels: set[str]) -> None:
        def go() -> None:
            result = publish(b"changed", sorted(channels))
            if asyncio.iscoroutine(result):
                task = loop.create_task(result)
                task.add_done_callback(lambda t: t.cancelled() or t.exception() and logger.warning("live update not sent", exc_info=t.exception()))

        loop.call_soon_threadsafe(go)

    _publishers.append(send)
    return lambda: _publishers.remove(send) if send in _publishers else None


class LivePublisher:
    """Background task of the web app: announcements committed in this process go out through its plugin."""

    def __init__(self, plugin: ChannelsPlugin) -> None:
        self.plugin = plugin
        self._stop: Callable[[], None] | None = None

    async def start(self) -> None:
        self._stop = publish_through(self.plugin.publish)

    async def stop(self) -> None:
        if self._stop is not None:
            self._stop()
            self._stop = None


async def events(plugin: ChannelsPlugin, channel: str, *, seconds: float) -> AsyncGenerator[ServerSentEventMessage, None]:
    """The stream a page subscribes to: an opening comment, then "changed" whenever the channel is
    announced, for `seconds` (`SHANZHI_LIVE_STREAM_SECONDS`); then it ends and the browser's EventSource
    connects again after `retry` (so no connection is held forever by a page left open)."""
    async with plugin.start_subscription([channel]) as subscriber:
        yield ServerSentEventMessage(comment="live", retry=3000)
        if seconds <= 0:
            return
        try:
            async with asyncio.timeout(seconds):
                async for _message in subscriber.iter_events():
                    yield ServerSentEventMessage(event="changed", data="1")
        except TimeoutError:
            return
