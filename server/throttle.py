"""Counting failed attempts per key in a Litestar store (memory, or Redis when configured)."""

from __future__ import annotations

from litestar.stores.base import Store


class FailureThrottle:
    """At most `limit` failures per key in a sliding-ish `window` seconds; success does not reset others' keys."""

    def __init__(self, store: Store, *, limit: int, window: int) -> None:
        self.store = store
        self.limit = limit
        self.window = window

    async def is_blocked(self, *keys: str) -> bool:
        for key in keys:
            raw = await self.store.get(key)
            if raw is not None and int(raw) >= self.limit:
                return True
        return False

    async def record_failure(self, *keys: str) -> None:
        for key in keys:
            raw = await self.store.get(key)
            count = int(raw) + 1 if raw is not None else 1
            # The window starts at the first failure; later failures do not extend it.
            remaining = await self.store.expires_in(key) if raw is not None else None
            await self.store.set(key, str(count), expires_in=remaining if remaining and remaining > 0 else self.window)

    async def reset(self, *keys: str) -> None:
        for key in keys:
            await self.store.delete(key)
