"""A grid worker's first sync (issue 11, point 6): the full pull of everything in the demo grid
worker's scope, page after page, as the phone does after its first sign-in. Reports the records,
the bytes on the wire (brotli, as Chromium asks) against the same JSON uncompressed, the pages,
and the wall and server CPU time. Not a test: `.venv/bin/python -m bench.sync_pull [--scales 1 30]`.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from bench.pages import app_command, conditions, prepare, save, serve
from bench.soak import sign_in
from tests.integration.sync_world import Device


async def first_pull(base: str, username: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base, timeout=120, headers={"Accept-Encoding": "br, gzip"}) as client:
        await sign_in(client, username)
        device = Device()
        cursor: str | None = None
        records: Counter[str] = Counter()
        wire = raw = pages = 0
        started = time.perf_counter()
        while True:
            params = {"limit": "500", **({"cursor": cursor} if cursor else {})}
            answer = await client.get("/sync/pull", params=params, headers=device.headers)
            answer.raise_for_status()
            pages += 1
            wire += answer.num_bytes_downloaded + sum(len(k) + len(v) + 4 for k, v in answer.headers.items())
            raw += len(answer.content)
            body = answer.json()
            records.update(r["entity"] for r in body["records"])
            cursor = body["cursor"]
            if not body["more"]:
                break
        return {
            "records": dict(records), "pages": pages, "wire_bytes": wire, "json_bytes": raw,
            "seconds": round(time.perf_counter() - started, 3),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 30])
    parser.add_argument("--user", default="grid")
    args = parser.parse_args()
    results = []
    for scale in args.scales:
        with tempfile.TemporaryDirectory(prefix="shanzhi-pull-") as tmp:
            var_dir = Path(tmp)
            data = prepare(var_dir, scale)
            env = {"SHANZHI_VAR_DIR": str(var_dir), "SHANZHI_EMBEDDED_WORKER": "false", "SHANZHI_LOGIN_RATE_LIMIT": "1000"}
            with serve(app_command(), env) as app:
                cpu_before = app.cpu_seconds()
                figures = asyncio.run(first_pull(app.url, args.user))
                figures["server_cpu_seconds"] = round(app.cpu_seconds() - cpu_before, 3)
        name = f"sync_pull.first.{scale}x"
        results.append({"name": name, "value": figures["wire_bytes"], "unit": "bytes", "baseline": figures["json_bytes"],
                        "ratio": round(figures["wire_bytes"] / figures["json_bytes"], 3), **figures,
                        "conditions": {**conditions("sqlite"), "data": data}})
        print(f"{scale:>4}x  records {figures['records']}  pages {figures['pages']}  wire {figures['wire_bytes']:,} B "
              f"(JSON {figures['json_bytes']:,} B)  {figures['seconds']} s wall, {figures['server_cpu_seconds']} s server CPU")
    save(results)


if __name__ == "__main__":
    main()
