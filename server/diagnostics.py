"""An event-loop lag probe for benchmarks (docs/performance.md): with SHANZHI_LOOP_LAG_FILE set, the
server wakes every 10 ms and records how late each wake-up was; once a second it writes the worst lag,
the count of stalls over 50 ms and the number of samples to that file (JSON). Off otherwise."""

from __future__ import annotations

import asyncio
import json
import os
import time
from contextlib import suppress
from pathlib import Path

INTERVAL = 0.01
STALL = 0.05


class LoopLagProbe:
    def __init__(self, path: str | None = None) -> None:
        self.path = Path(path) if path else (Path(os.environ["SHANZHI_LOOP_LAG_FILE"]) if os.environ.get("SHANZHI_LOOP_LAG_FILE") else None)
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.path is not None and self.task is None:
            self.task = asyncio.create_task(self._run(self.path), name="shanzhi-loop-lag")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with suppress(asyncio.CancelledError):
                await self.task
            self.task = None

    async def _run(self, path: Path) -> None:
        worst, stalls, samples = 0.0, 0, 0
        written = time.monotonic()
        path = path.with_name(f"{path.name}.{os.getpid()}")  # one file per process
        while True:
            before = time.monotonic()
            await asyncio.sleep(INTERVAL)
            lag = time.monotonic() - before - INTERVAL
            samples += 1
            worst = max(worst, lag)
            stalls += lag > STALL
            if time.monotonic() - written >= 1.0:
                path.write_text(json.dumps({"max_ms": round(1000 * worst, 1), "stalls_over_50ms": stalls, "samples": samples}))
                written = time.monotonic()
