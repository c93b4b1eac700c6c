"""Page weight as a phone pays for it: every byte the server sends to a fresh Chromium (empty cache),
service-worker precache and sync pull included, counted on the wire by a TCP proxy between the
browser and the app (headers, compression and all). Not a test: `make bench` runs it, or
`.venv/bin/python -m bench.page_weight`.

Figures (issue targets in brackets):
- `/suggest` and a tracking page, first visit [<= 60 KB in all, HTML <= 14 KB];
- a grid worker's sign-in and first `/field`, the first pull of the demo grid included [<= 120 KB];
- a repeat navigation online [<= 5 KB]; a saved page offline [0 bytes].
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, sync_playwright

from bench.pages import DEMO_PASSWORD, RESULTS, _free_port, app_command, conditions, prepare, serve

CHROMIUM = "/usr/bin/chromium"
QUIET = 1.5  # seconds without a byte from the server: the visit is over
TARGETS = {"suggest": 60_000, "track": 60_000, "field_after_sign_in": 120_000, "repeat": 5_000, "offline": 0}


class CountingProxy:
    """Forwards 127.0.0.1:<port> to the app and counts the bytes the app sends back."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = _free_port()
        self.down = 0  # bytes server -> browser
        self.last = time.monotonic()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()
        self.ready.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        server = await asyncio.start_server(self._client, "127.0.0.1", self.port)
        self.ready.set()
        async with server:
            await server.serve_forever()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, count: bool) -> None:
        try:
            while data := await reader.read(65536):
                if count:
                    self.down += len(data)
                    self.last = time.monotonic()
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        await asyncio.gather(
            self._pipe(reader, upstream_writer, count=False), self._pipe(upstream_reader, writer, count=True)
        )

    def reset(self) -> None:
        self.down = 0
        self.last = time.monotonic()

    def settle(self, longest: float = 30.0) -> int:
        """Wait until the server has sent nothing for QUIET seconds; the bytes counted since reset."""
        started = time.monotonic()
        while time.monotonic() - self.last < QUIET and time.monotonic() - started < longest:
            time.sleep(0.1)
        return self.down


def controlled(page: Page) -> None:
    for _ in range(200):
        if page.evaluate("() => !!navigator.serviceWorker.controller"):
            return
        time.sleep(0.1)


def html_bytes(base: str, path: str) -> int:
    """The page alone, compressed as a browser asks for it (body only)."""
    response = httpx.get(base + path, headers={"Accept-Encoding": "br, gzip"})
    return response.num_bytes_downloaded


def measure(base: str, tracking: str) -> dict[str, int]:
    proxy = CountingProxy(int(base.rsplit(":", 1)[1]))
    front = f"http://127.0.0.1:{proxy.port}"
    figures: dict[str, int] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        for name, path in (("suggest", "/suggest"), ("track", f"/track/{tracking}")):
            context = browser.new_context(viewport={"width": 390, "height": 844})
            page = context.new_page()
            proxy.reset()
            page.goto(front + path)
            controlled(page)
            figures[name] = proxy.settle()
            figures[f"{name}_html"] = html_bytes(base, path)
            if name == "suggest":
                page.goto(front + "/")  # the page that saves itself for offline use
                proxy.settle()
                proxy.reset()
                page.goto(front + path)
                figures["repeat"] = proxy.settle()
                context.set_offline(True)
                proxy.reset()
                page.goto(front + path)
                figures["offline"] = proxy.settle()
            context.close()
        context = browser.new_context(viewport={"width": 390, "height": 844})
        page = context.new_page()
        page.goto(front + "/login")
        controlled(page)
        proxy.settle()
        proxy.reset()
        page.fill("input[name=username]", "grid")
        page.fill("input[name=password]", DEMO_PASSWORD)
        page.click("form button[type=submit]")
        page.wait_for_load_state()
        page.goto(front + "/field")
        figures["field_after_sign_in"] = proxy.settle()
        context.close()
        browser.close()
    return figures


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="shanzhi-weight-") as tmp:
        var_dir = Path(tmp)
        data = prepare(var_dir, 1)
        env = {"SHANZHI_VAR_DIR": str(var_dir), "SHANZHI_EMBEDDED_WORKER": "false", "SHANZHI_LOGIN_RATE_LIMIT": "1000"}
        with sqlite3.connect(var_dir / "shanzhi.db") as db:
            tracking = db.execute("SELECT tracking_code FROM appeal ORDER BY received_at DESC LIMIT 1").fetchone()[0]
        with serve(app_command(), env) as app:
            figures = measure(app.url, tracking)
    results = [
        {
            "name": f"page_weight.{name}", "value": value, "unit": "bytes", "target": TARGETS.get(name),
            "meets": None if name not in TARGETS else value <= TARGETS[name], "conditions": {**conditions("sqlite"), "data": data},
        }
        for name, value in figures.items()
    ]
    existing = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"results": []}
    by_name = {r["name"]: r for r in existing["results"]}
    by_name.update({r["name"]: r for r in results})
    RESULTS.write_text(json.dumps({"results": sorted(by_name.values(), key=lambda r: r["name"])}, ensure_ascii=False, indent=1) + "\n")
    print(f"{'what':28} {'bytes':>9} {'target':>9}")
    for r in results:
        target = "" if r["target"] is None else f"{r['target']:>9,}"
        flag = "" if r["meets"] is None else ("ok" if r["meets"] else "MISSED")
        print(f"{r['name']:28} {r['value']:>9,} {target} {flag}")


if __name__ == "__main__":
    main()
