"""Sync ingest over HTTP (issue 11): phones push 250-mutation batches of quick appeals to the app as
`make run` serves it, one phone alone and four at once, against a baseline in the same run: plain
`sqlite3.executemany` of the same number of appeal rows into a database with the app's own tables and
indexes. Not a test; `make bench` runs it after the pages (docs/performance.md).

    .venv/bin/python -m bench.sync_http [--batches 6] [--per-batch 250] [--phones 4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from bench.pages import BIN, DEMO_PASSWORD, conditions, save, serve
from tests.integration.sync_world import Device, appeal_fields

TARGET_PER_SECOND = 3000
TARGET_P95_ALONE_MS = 100
TARGET_P95_FOUR_MS = 400


def prepare(var_dir: Path, phones: int) -> None:
    env = {**os.environ, "SHANZHI_VAR_DIR": str(var_dir)}
    env.pop("SHANZHI_DATABASE_URL", None)
    subprocess.run([str(BIN / "shanzhi"), "db", "upgrade", "--no-prompt"], env=env, check=True, capture_output=True)
    # --scale 5 per extra grid worker: grid001 ... gridNNN, each with the demo password.
    subprocess.run([str(BIN / "shanzhi"), "demo", "--scale", str(5 * phones)], env=env, check=True, capture_output=True)


async def sign_in(client: httpx.AsyncClient, username: str) -> None:
    page = await client.get("/login")
    token = page.text.split('name="_csrf_token" value="', 1)[1].split('"', 1)[0]
    answer = await client.post("/login", data={"username": username, "password": DEMO_PASSWORD, "_csrf_token": token})
    assert answer.status_code == 303, f"sign-in as {username}: {answer.status_code}"


def batches(phone: Device, count: int, per_batch: int) -> list[dict[str, Any]]:
    return [
        phone.batch(*(phone.mutation("appeal", "create", appeal_fields(f"第{b}批第{i}件：楼道灯不亮了")) for i in range(per_batch)))
        for b in range(count)
    ]


async def push_all(base: str, usernames: list[str], count: int, per_batch: int) -> tuple[float, list[float], int, list[int]]:
    """Every phone pushes its batches one after another, all phones at once: (seconds, batch latencies
    in ms, mutations applied, statuses)."""
    clients = [httpx.AsyncClient(base_url=base, timeout=120) for _ in usernames]
    try:
        for client, username in zip(clients, usernames, strict=True):
            await sign_in(client, username)
        phones = [Device() for _ in clients]
        work = [batches(phone, count, per_batch) for phone in phones]
        latencies: list[float] = []
        statuses: list[int] = []
        applied = 0

        async def run(client: httpx.AsyncClient, phone: Device, its: list[dict[str, Any]]) -> None:
            nonlocal applied
            for batch in its:
                started = time.perf_counter()
                answer = await client.post("/sync/push", json=batch, headers=phone.headers)
                latencies.append(1000 * (time.perf_counter() - started))
                statuses.append(answer.status_code)
                if answer.status_code == 200:
                    applied += sum(r["status"] == "applied" for r in answer.json()["results"])

        started = time.perf_counter()
        await asyncio.gather(*(run(c, ph, b) for c, ph, b in zip(clients, phones, work, strict=True)))
        return time.perf_counter() - started, latencies, applied, statuses
    finally:
        for client in clients:
            await client.aclose()


def executemany_baseline(var_dir: Path, rows: int) -> float:
    """Rows per second of plain executemany into the app's own `appeal` table (same indexes), copying a
    real row's shape with new ids, references and tracking codes."""
    path = var_dir / "shanzhi.db"
    copy = var_dir / "baseline.db"
    with sqlite3.connect(path) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    with sqlite3.connect(copy) as db:
        db.row_factory = sqlite3.Row
        template = dict(db.execute("SELECT * FROM appeal LIMIT 1").fetchone())
        columns = list(template)
        values = []
        for n in range(rows):
            row = dict(template)
            row.update(id=uuid.uuid4().bytes if isinstance(template["id"], bytes) else str(uuid.uuid4()),
                       reference=f"9999-{n:07d}", tracking_code=uuid.uuid4().hex)
            values.append([row[c] for c in columns])
        sql = f"INSERT INTO appeal ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        started = time.perf_counter()
        db.executemany(sql, values)
        db.commit()
        return rows / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=6, help="batches per phone")
    parser.add_argument("--per-batch", type=int, default=250)
    parser.add_argument("--phones", type=int, default=4)
    args = parser.parse_args()
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="shanzhi-ingest-") as tmp:
        var_dir = Path(tmp)
        prepare(var_dir, args.phones)
        env = {"SHANZHI_VAR_DIR": tmp, "SHANZHI_LOGIN_RATE_LIMIT": "1000"}
        usernames = [f"grid{n:03d}" for n in range(1, args.phones + 1)]
        with serve([str(BIN / "shanzhi"), "serve", "--host", "127.0.0.1"], env) as app:
            for label, who in (("one", usernames[:1]), ("four", usernames)):
                before = app.cpu_seconds()
                seconds, latencies, applied, statuses = asyncio.run(push_all(app.url, who, args.batches, args.per_batch))
                cpu = app.cpu_seconds() - before
                baseline = executemany_baseline(var_dir, applied or 1)
                rate = applied / seconds
                p95 = statistics.quantiles(latencies, n=20)[18] if len(latencies) >= 2 else latencies[0]
                target_p95 = TARGET_P95_ALONE_MS if label == "one" else TARGET_P95_FOUR_MS
                row = {
                    "name": f"ingest.http.{label}", "phones": len(who), "batches": len(latencies), "per_batch": args.per_batch,
                    "mutations_per_second": round(rate, 1), "batch_p50_ms": round(statistics.median(latencies), 1),
                    "batch_p95_ms": round(p95, 1), "cpu_ms_per_mutation": round(1000 * cpu / max(applied, 1), 3),
                    "applied": applied, "non_200": sum(s != 200 for s in statuses),
                    "baseline_executemany_per_second": round(baseline), "ratio": round(rate / baseline, 4),
                    "target_per_second": TARGET_PER_SECOND, "target_p95_ms": target_p95,
                    "meets": rate >= TARGET_PER_SECOND and p95 <= target_p95 and all(s == 200 for s in statuses),
                    "conditions": conditions("sqlite"),
                }
                results.append(row)
                print(
                    f"{label:>4} phone(s): {rate:7.0f} mutations/s, batch p50 {row['batch_p50_ms']} ms p95 {row['batch_p95_ms']} ms,"
                    f" {row['cpu_ms_per_mutation']} ms CPU/mutation, {row['non_200']} non-200;"
                    f" executemany baseline {row['baseline_executemany_per_second']}/s (ratio {row['ratio']})",
                    flush=True,
                )
    save(results)


if __name__ == "__main__":
    main()
