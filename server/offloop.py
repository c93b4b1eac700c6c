"""CPU work off the event loop, a few at a time (photo decoding, password hashing).

`asyncio.to_thread` runs work in the loop's default thread pool, which all off-loop work shares. The
limit is taken on the loop, before a thread is asked for: work waiting its turn holds no thread, so a
burst of photo uploads cannot keep a sign-in's password check waiting for a thread (and the other way
round). One semaphore per event loop (one per server process; tests run several loops)."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class Slots:
    """At most `size` calls of `run` at once per event loop."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()

    def semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        slots = self._per_loop.get(loop)
        if slots is None:
            slots = self._per_loop[loop] = asyncio.Semaphore(self.size)
        return slots

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        async with self.semaphore():
            return await asyncio.to_thread(fn, *args)
