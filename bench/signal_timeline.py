"""晨曦信号 on the demo data: stop one elder's check-ins for a day and sweep minute by minute, as the worker
does, on a copy of the database; print who is told what, and when (docs/morning-signal.md, "Check it").

    SHANZHI_VAR_DIR=var .venv/bin/python -m bench.signal_timeline [--elder 何]

Works on the SQLite demo database under SHANZHI_VAR_DIR (make run's); the database itself is not changed.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from server.db import make_alchemy_config
from server.models import Elder, ElderAlert, ElderHelper, Notification, User
from server.services import morning_signal
from server.settings import Settings, get_settings


async def timeline(settings: Settings, name_starts: str) -> None:
    tz = settings.tz
    config = make_alchemy_config(settings)
    try:
        async with config.get_session() as session:
            elder = await session.scalar(select(Elder).where(Elder.ended_at.is_(None), Elder.name.startswith(name_starts))
                                         .order_by(Elder.name).limit(1))
            if elder is None:
                raise SystemExit(f"no enrolled elder whose name starts with {name_starts!r}")
            chain = list(await session.scalars(select(ElderHelper).where(ElderHelper.elder_id == elder.id).order_by(ElderHelper.position)))
            users = {u.id: u.username for u in await session.scalars(select(User))}
            day = (datetime.now(UTC).astimezone(tz) + timedelta(days=1)).date()
            plan = morning_signal.schedule(elder, day, tz)
            print(f"{elder.name[0]}** on {day}: window {elder.window_start:%H:%M}-{elder.window_end:%H:%M}, grace {elder.grace_minutes} min, "
                  f"reminder {elder.reminder_minutes} min before the end, {elder.step_minutes} min per step")
            print("chain:", " → ".join(f"{h.kind.value} {users.get(h.user_id) or h.name}" for h in chain), "→ staff")
            print(f"reminder due {plan.reminder_at.astimezone(tz):%H:%M}, alert due {plan.alert_at.astimezone(tz):%H:%M}")
            started = datetime.now(UTC)
            moment = plan.opens
            while moment <= plan.alert_at + timedelta(hours=2):
                await morning_signal.sweep(session, moment, tz)  # nobody signals: every elder that day alerts
                await session.commit()
                moment += timedelta(minutes=1)
            alert = await session.scalar(select(ElderAlert).where(ElderAlert.elder_id == elder.id, ElderAlert.day == day))
            for event in await morning_signal.timeline(session, alert.id):
                print(f"  {event.at.astimezone(tz):%H:%M}  {event.kind:<10} {event.data}")
            for note in await session.scalars(select(Notification).where(Notification.created_at >= started).order_by(Notification.created_at)):
                if str(alert.id) in note.dedupe_key or str(elder.id) in note.dedupe_key:
                    print(f"  inbox of {users[note.user_id]}: {note.kind}")
    finally:
        await config.get_engine().dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--elder", default="", help="the first enrolled elder whose name starts with this (default: the first)")
    args = parser.parse_args()
    source = get_settings()
    if not source.database_url.startswith("sqlite"):
        raise SystemExit("this runs on the SQLite demo database (SHANZHI_VAR_DIR)")
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "copy.db"
        with sqlite3.connect(source.database_url.split("///", 1)[1]) as live, sqlite3.connect(copy) as target:
            live.backup(target)
        settings = replace(source, database_url=f"sqlite+aiosqlite:///{copy}", var_dir=Path(tmp))
        asyncio.run(timeline(settings, args.elder))


if __name__ == "__main__":
    main()
