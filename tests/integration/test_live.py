"""Live updates (server/live.py): an announcement reaches subscribers only after its transaction commits,
and, with Redis, from one process to another (the worker's sweep to the web processes' pages)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from litestar.channels import ChannelsPlugin
from sqlalchemy.ext.asyncio import AsyncSession

from server import live
from server.db import make_alchemy_config
from server.settings import Settings

REDIS = "redis://127.0.0.1:6379/15"


async def next_event(plugin: ChannelsPlugin, trigger: object, timeout: float = 3.0) -> list[bytes]:
    got: list[bytes] = []
    async with plugin.start_subscription(["signals"]) as subscriber:
        await asyncio.sleep(0.1)
        await trigger()  # type: ignore[operator]
        try:
            async with asyncio.timeout(timeout):
                async for message in subscriber.iter_events():
                    got.append(message)
                    break
        except TimeoutError:
            pass
    return got


async def _commit_or_roll_back(settings: Settings, *, commit: bool) -> None:
    config = make_alchemy_config(settings)
    try:
        async with config.get_session() as session:
            assert isinstance(session, AsyncSession)
            live.announce(session, "signals")
            await (session.commit() if commit else session.rollback())
    finally:
        await config.get_engine().dispose()


async def test_an_announcement_goes_out_after_the_commit_only(settings: Settings) -> None:
    plugin = live.make_plugin(settings)  # memory
    async with plugin:
        await plugin._on_startup()  # noqa: SLF001 - the plugin outside an app
        stop = live.publish_through(plugin.publish)
        try:
            assert await next_event(plugin, lambda: _commit_or_roll_back(settings, commit=False), timeout=0.5) == []
            assert await next_event(plugin, lambda: _commit_or_roll_back(settings, commit=True)) == [b"changed"]
        finally:
            stop()
            await plugin._on_shutdown()  # noqa: SLF001


async def test_with_redis_another_process_hears_it(settings: Settings) -> None:
    redis_settings = replace(settings, redis_url=REDIS)
    pages = live.make_plugin(redis_settings)  # the web process
    worker = live.backend_for(redis_settings)  # the worker process, its own connection
    await pages._on_startup()  # noqa: SLF001
    await worker.on_startup()
    stop = live.publish_through(worker.publish)
    try:
        assert await next_event(pages, lambda: _commit_or_roll_back(settings, commit=True)) == [b"changed"]
    finally:
        stop()
        await live.close(worker)
        await pages._on_shutdown()  # noqa: SLF001
        await live.close(pages._backend)  # noqa: SLF001
