"""Slowing password guessing without locking the owner out (docs/deployment.md, "Sign-in protection").

- A (username, address) pair is refused for the rest of the minute after `limit` failures: the
  guesser is stopped, and the owner, signing in from their own phone or office, is not.
- An address is refused after `3 * limit` failures a minute whatever the usernames (password spraying).
- A username that keeps failing from anywhere answers more and more slowly (a progressive delay of
  up to MAX_DELAY seconds before the password is checked), but the right password still gets in.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from litestar.stores.base import Store

from server.throttle import FailureThrottle

WINDOW = 60  # seconds
MAX_DELAY = 3.0  # seconds
FREE_FAILURES = 5  # failures of a username per window before answers slow down


@dataclass
class LoginGuard:
    store: Store
    limit: int

    def _pair(self, username: str, address: str) -> str:
        return f"login:pair:{username}|{address}"

    def _address(self, address: str) -> str:
        return f"login:ip:{address}"

    def _user(self, username: str) -> str:
        return f"login:user:{username}"

    async def blocked(self, username: str, address: str) -> bool:
        pair = FailureThrottle(self.store, limit=self.limit, window=WINDOW)
        spraying = FailureThrottle(self.store, limit=3 * self.limit, window=WINDOW)
        return await pair.is_blocked(self._pair(username, address)) or await spraying.is_blocked(self._address(address))

    async def delay(self, username: str) -> float:
        """Seconds to wait before checking this username's password (0 for a username not under attack)."""
        raw = await self.store.get(self._user(username))
        failures = int(raw) if raw is not None else 0
        return min(max(0, failures - FREE_FAILURES) * 0.25, MAX_DELAY)

    async def slow_down(self, username: str) -> None:
        seconds = await self.delay(username)
        if seconds:
            await asyncio.sleep(seconds)

    async def failed(self, username: str, address: str) -> None:
        await FailureThrottle(self.store, limit=self.limit, window=WINDOW).record_failure(
            self._pair(username, address), self._address(address), self._user(username)
        )

    async def succeeded(self, username: str, address: str) -> None:
        await FailureThrottle(self.store, limit=self.limit, window=WINDOW).reset(self._pair(username, address))
