"""Soak and kill (issue 11, point 7): many simulated phones push and pull against a real server for a
bounded time, on loopback; halfway through, an app process is killed with SIGKILL (and started again).
Afterwards every mutation a phone made is counted in the database: none lost, none applied twice, and
no 5xx but the killed process's. Not a test; `make soak` runs it (docs/performance.md).

A phone behaves like pwa/js/outbox.js: it keeps a batch until the server acknowledges it (applied or
duplicate), and on a network error or a 5xx sends the same batch again after a short back-off.

    .venv/bin/python -m bench.soak                       # SQLite, one process, 200 phones, 60 s
    .venv/bin/python -m bench.soak --database-url postgresql+asyncpg://postgres@127.0.0.1/shanzhi_soak \\
        --redis-url redis://127.0.0.1:6379/15 --workers 2  # PostgreSQL, two processes (the database is emptied)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import sqlite3
import subprocess
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.pages import BIN, DEMO_PASSWORD, _children, _free_port, _pg, conditions, save, wait_until_serving
from tests.integration.sync_world import Device, appeal_fields


@dataclass
class Tally:
    sent: dict[str, str] = field(default_factory=dict)  # mutation id -> entity id, every mutation made
    acknowledged: set[str] = field(default_factory=set)
    statuses: Counter[int] = field(default_factory=Counter)
    network_errors: int = 0
    in_kill_window: Counter[int] = field(default_factory=Counter)
    pulls: int = 0
    latencies: list[float] = field(default_factory=list)


class App:
    """`shanzhi serve` on a fixed port, so it can be killed and started again at the same address."""

    def __init__(self, env: dict[str, str], workers: int) -> None:
        self.env = {**os.environ, **env}
        self.workers = workers
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [str(BIN / "shanzhi"), "serve", "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers)]
        self.process = subprocess.Popen(command, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until_serving(self.url)

    def kill_one(self) -> str:
        """SIGKILL: with one process the server itself (then started again); with several, one worker
        (uvicorn's supervisor starts a new one)."""
        assert self.process is not None
        if self.workers == 1:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
            self.start()
            return "the server process (started again)"
        # uvicorn's supervisor also starts a multiprocessing helper: kill a child that serves requests.
        workers = [pid for pid in _children(self.process.pid) if "resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_text()]
        os.kill(workers[0], signal.SIGKILL)
        return f"web worker {workers[0]} of {len(workers)}"

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)


def prepare(var_dir: Path, env: dict[str, str], workers_needed: int) -> None:
    full = {**os.environ, **env}
    subprocess.run([str(BIN / "shanzhi"), "db", "upgrade", "--no-prompt"], env=full, check=True, capture_output=True)
    subprocess.run([str(BIN / "shanzhi"), "demo", "--scale", str(5 * workers_needed)], env=full, check=True, capture_output=True)


async def sign_in(client: httpx.AsyncClient, username: str) -> None:
    for _ in range(20):
        try:
            page = await client.get("/login")
            token = page.text.split('name="_csrf_token" value="', 1)[1].split('"', 1)[0]
            answer = await client.post("/login", data={"username": username, "password": DEMO_PASSWORD, "_csrf_token": token})
            if answer.status_code == 303:
                return
        except (httpx.HTTPError, IndexError):
            pass
        await asyncio.sleep(0.5)
    raise RuntimeError(f"could not sign in as {username}")


async def phone(client: httpx.AsyncClient, tally: Tally, until: float, kill_window: list[float], rng: random.Random) -> None:
    device = Device()
    pending: dict[str, Any] | None = None
    rounds = 0
    # After `until` no new records; a batch not acknowledged yet is sent until it is (at most 60 s more),
    # so at the end every record made must be in the database exactly once.
    while time.monotonic() < until or (pending is not None and time.monotonic() < until + 60):
        if pending is None:
            mutations = [
                device.mutation("appeal", "create", appeal_fields(f"压力测试：第{device.seq + 1}件，路灯不亮"))
                for _ in range(rng.randint(1, 10))
            ]
            for m in mutations:
                tally.sent[m["mutation_id"]] = m["entity_id"]
            pending = device.batch(*mutations)
        started = time.monotonic()
        try:
            answer = await client.post("/sync/push", json=pending, headers=device.headers)
        except httpx.HTTPError:
            tally.network_errors += 1
            await asyncio.sleep(0.5 + rng.random())
            continue
        tally.latencies.append(time.monotonic() - started)
        tally.statuses[answer.status_code] += 1
        if kill_window[0] <= started <= kill_window[1]:
            tally.in_kill_window[answer.status_code] += 1
        if answer.status_code == 200:
            for result in answer.json()["results"]:
                if result["status"] in ("applied", "duplicate"):
                    tally.acknowledged.add(result["mutation_id"])
            pending = None
        else:
            await asyncio.sleep(0.5 + rng.random())
            continue
        rounds += 1
        if time.monotonic() >= until:
            break
        if rounds % 5 == 0:
            try:
                pulled = await client.get("/sync/pull", headers=device.headers)
                if pulled.status_code == 200:
                    tally.pulls += 1
                else:
                    tally.statuses[pulled.status_code] += 1
            except httpx.HTTPError:
                tally.network_errors += 1
        await asyncio.sleep(rng.uniform(0.2, 1.0))


async def drive(app: App, users: list[str], phones: int, seconds: float, kill_at: float | None) -> tuple[Tally, str]:
    tally = Tally()
    clients = {u: httpx.AsyncClient(base_url=app.url, timeout=60, limits=httpx.Limits(max_connections=100)) for u in users}
    try:
        for username, client in clients.items():
            await sign_in(client, username)
        start = time.monotonic()
        until = start + seconds
        kill_window = [float("inf"), float("inf")]
        killed = "nothing"

        async def killer() -> None:
            nonlocal killed
            if kill_at is None:
                return
            await asyncio.sleep(kill_at)
            kill_window[0] = time.monotonic() - 1
            killed = await asyncio.to_thread(app.kill_one)
            kill_window[1] = time.monotonic() + 2

        rng = random.Random(11)
        tasks = [phone(clients[users[i % len(users)]], tally, until, kill_window, random.Random(rng.random())) for i in range(phones)]
        await asyncio.gather(killer(), *tasks)
        return tally, killed
    finally:
        for client in clients.values():
            await client.aclose()


# What the soak made, counted afterwards: its appeals (by their description) and the sync receipts.
COUNT_QUERIES = [
    "SELECT count(*) FROM appeal WHERE description LIKE '压力测试：%'",
    "SELECT count(*) FROM sync_mutation",
]


def count_sqlite(var_dir: Path) -> tuple[int, int]:
    with sqlite3.connect(var_dir / "shanzhi.db") as db:
        appeals, receipts = (db.execute(q).fetchone()[0] for q in COUNT_QUERIES)
    return appeals, receipts


async def count_pg(url: str) -> tuple[int, int]:
    appeals, receipts = await _pg(url, [], COUNT_QUERIES)
    return int(appeals), int(receipts)


async def reset_pg(url: str) -> None:
    await _pg(url, ["DROP SCHEMA public CASCADE", "CREATE SCHEMA public"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phones", type=int, default=200)
    parser.add_argument("--users", type=int, default=8, help="grid workers the phones belong to")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--kill-at", type=float, default=30, help="seconds into the run; negative: no kill")
    parser.add_argument("--database-url", default=None, help="PostgreSQL (emptied first); default a fresh SQLite file")
    parser.add_argument("--redis-url", default=None)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="shanzhi-soak-") as tmp:
        var_dir = Path(tmp)
        env = {"SHANZHI_VAR_DIR": tmp, "SHANZHI_LOGIN_RATE_LIMIT": "1000"}
        if args.database_url:
            asyncio.run(reset_pg(args.database_url))
            env["SHANZHI_DATABASE_URL"] = args.database_url
        if args.redis_url:
            env["SHANZHI_REDIS_URL"] = args.redis_url
        prepare(var_dir, env, args.users)
        app = App(env, args.workers)
        app.start()
        try:
            users = [f"grid{n:03d}" for n in range(1, args.users + 1)]
            tally, killed = asyncio.run(drive(app, users, args.phones, args.seconds, args.kill_at if args.kill_at >= 0 else None))
            unacknowledged = set(tally.sent) - tally.acknowledged
            if args.database_url:
                appeals, receipts = asyncio.run(count_pg(args.database_url))
            else:
                appeals, receipts = count_sqlite(var_dir)
        finally:
            app.stop()
    acknowledged = len(tally.acknowledged)
    five_xx = sum(n for status, n in tally.statuses.items() if status >= 500)
    five_xx_in_window = sum(n for status, n in tally.in_kill_window.items() if status >= 500)
    database = "postgresql" if args.database_url else "sqlite"
    row = {
        "name": f"soak.{database}.p{args.workers}",
        "phones": args.phones, "seconds": args.seconds, "killed": killed, "processes": args.workers,
        "mutations_made": len(tally.sent), "acknowledged": acknowledged, "unacknowledged_at_end": len(unacknowledged),
        "appeals_in_database": appeals, "receipts": receipts,
        "lost": max(0, len(tally.sent) - appeals),  # made (and, at the end, all acknowledged) but not stored
        "doubled": max(0, appeals - len(tally.sent), receipts - len(tally.sent)),  # stored or receipted twice
        "statuses": dict(tally.statuses), "network_errors": tally.network_errors, "pulls": tally.pulls,
        "five_xx_outside_kill": five_xx - five_xx_in_window,
        "push_p95_ms": round(1000 * sorted(tally.latencies)[int(0.95 * (len(tally.latencies) - 1))], 1) if tally.latencies else None,
        "conditions": {**conditions(database), "processes": args.workers},
    }
    row["meets"] = row["lost"] == 0 and row["doubled"] == 0 and row["five_xx_outside_kill"] == 0 and not unacknowledged
    save([row])
    for key in ("phones", "killed", "mutations_made", "acknowledged", "unacknowledged_at_end", "appeals_in_database", "receipts",
                "lost", "doubled", "statuses", "network_errors", "pulls", "five_xx_outside_kill", "push_p95_ms", "meets"):
        print(f"{key:>24}: {row[key]}")


if __name__ == "__main__":
    main()
