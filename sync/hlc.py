"""Hybrid logical clocks: timestamps that order edits across phones whose wall clocks disagree.

After Kulkarni et al., "Logical Physical Clocks" (2014). Each stamp is (wall time in ms, counter,
node id). A clock never goes backwards, a stamp made after seeing another is greater than it, and
stamps stay close to real time, so the sync engine can apply field-level last-writer-wins even when
a grid worker's phone is minutes off. The text form sorts like the stamp itself.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

MAX_COUNTER = 0xFFFF
# A stamp further ahead of our wall clock than this comes from a phone with a wrong clock; taking it
# would drag every later stamp into the future.
DEFAULT_MAX_DRIFT_MS = 5 * 60 * 1000
_PACKED = re.compile(r"^(\d{13})-([0-9a-f]{4})-([A-Za-z0-9_.:-]{1,64})$")


class ClockDriftError(ValueError):
    """A remote stamp is too far ahead of this clock's wall time."""


@dataclass(frozen=True, order=True, slots=True)
class HLC:
    wall_ms: int
    counter: int
    node: str

    def pack(self) -> str:
        """Fixed-width text (wall ms, hex counter, node): string order equals stamp order."""
        return f"{self.wall_ms:013d}-{self.counter:04x}-{self.node}"

    @classmethod
    def parse(cls, text: str) -> HLC:
        match = _PACKED.match(text)
        if match is None:
            msg = f"not a hybrid logical clock stamp: {text!r}"
            raise ValueError(msg)
        wall, counter, node = match.groups()
        return cls(int(wall), int(counter, 16), node)


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class Clock:
    """The clock of one node (a device, or the server). Not thread-safe: one per event loop."""

    def __init__(
        self, node: str, *, now_ms: Callable[[], int] = wall_clock_ms, max_drift_ms: int = DEFAULT_MAX_DRIFT_MS
    ) -> None:
        self.node = node
        self._now_ms = now_ms
        self._max_drift_ms = max_drift_ms
        self.last = HLC(0, 0, node)

    def tick(self) -> HLC:
        """A stamp for a local event (an edit, a send): greater than every stamp this clock made or saw."""
        wall = max(self.last.wall_ms, self._now_ms())
        counter = self.last.counter + 1 if wall == self.last.wall_ms else 0
        return self._advance(wall, counter)

    def observe(self, remote: HLC) -> HLC:
        """Take in a stamp from elsewhere (a received mutation); the result is greater than both."""
        now = self._now_ms()
        if remote.wall_ms - now > self._max_drift_ms:
            msg = f"stamp {remote.pack()} is {remote.wall_ms - now} ms ahead of this clock"
            raise ClockDriftError(msg)
        wall = max(self.last.wall_ms, remote.wall_ms, now)
        if wall == self.last.wall_ms == remote.wall_ms:
            counter = max(self.last.counter, remote.counter) + 1
        elif wall == self.last.wall_ms:
            counter = self.last.counter + 1
        elif wall == remote.wall_ms:
            counter = remote.counter + 1
        else:
            counter = 0
        return self._advance(wall, counter)

    def _advance(self, wall: int, counter: int) -> HLC:
        if counter > MAX_COUNTER:
            # Over 65 535 events in one millisecond: wait for the wall clock instead of overflowing.
            wall, counter = wall + 1, 0
        self.last = HLC(wall, counter, self.node)
        return self.last
