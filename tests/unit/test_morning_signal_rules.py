"""The 晨曦信号 rules with a moved clock (docs/morning-signal.md): the window, the reminder, the grace and
the escalation steps in Asia/Shanghai, custom and midnight-spanning windows, pauses."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from server.services.morning_signal import day_of, due_step, paused, schedule

TZ = ZoneInfo("Asia/Shanghai")


def elder(start: time = time(6, 0), end: time = time(9, 30), grace: int = 30, reminder: int = 30) -> SimpleNamespace:
    return SimpleNamespace(window_start=start, window_end=end, grace_minutes=grace, reminder_minutes=reminder)


def local(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=TZ).astimezone(UTC)


DAY = date(2026, 11, 27)


def test_the_default_window_in_beijing_time() -> None:
    plan = schedule(elder(), DAY, TZ)
    assert plan.opens == local(DAY, 6) == datetime(2026, 11, 26, 22, 0, tzinfo=UTC)  # 06:00 Beijing is 22:00 UTC the day before
    assert plan.closes == local(DAY, 9, 30)
    assert plan.reminder_at == local(DAY, 9, 0)  # 30 minutes before the window closes
    assert plan.alert_at == local(DAY, 10, 0)  # window end plus 30 minutes of grace


def test_a_custom_window_and_timings() -> None:
    plan = schedule(elder(time(7, 30), time(8, 0), grace=15, reminder=45), DAY, TZ)
    assert plan.reminder_at == plan.opens == local(DAY, 7, 30)  # never before the window opens
    assert plan.alert_at == local(DAY, 8, 15)


def test_a_window_that_runs_past_midnight() -> None:
    night = elder(time(22, 0), time(1, 0), grace=30)
    plan = schedule(night, DAY, TZ)
    assert plan.closes == local(DAY + timedelta(days=1), 1, 0) and plan.alert_at == local(DAY + timedelta(days=1), 1, 30)
    # A press at 00:40 (local, the next date) counts for the day the window opened; one at 02:00 for the next.
    assert day_of(night, local(DAY + timedelta(days=1), 0, 40), TZ) == DAY
    assert day_of(night, local(DAY + timedelta(days=1), 2, 0), TZ) == DAY + timedelta(days=1)


@pytest.mark.parametrize(("hh", "mm", "expected"), [(0, 0, DAY), (5, 59, DAY), (23, 59, DAY)])
def test_a_signal_counts_for_its_local_date(hh: int, mm: int, expected: date) -> None:
    """UTC midnight is 08:00 in Beijing: the local date decides, not the UTC one."""
    assert day_of(elder(), local(DAY, hh, mm), TZ) == expected


def test_pauses_cover_both_ends() -> None:
    stays = [SimpleNamespace(start_on=date(2026, 11, 20), end_on=date(2026, 11, 27))]
    assert paused(stays, date(2026, 11, 20)) and paused(stays, DAY)
    assert not paused(stays, date(2026, 11, 19)) and not paused(stays, date(2026, 11, 28))


def test_escalation_steps_every_step_minutes_up_to_staff() -> None:
    opened = local(DAY, 10)
    chain = 3  # building head, volunteer, family; then staff
    assert due_step(opened, 20, chain, opened) == 0
    assert due_step(opened, 20, chain, opened + timedelta(minutes=19, seconds=59)) == 0
    assert due_step(opened, 20, chain, opened + timedelta(minutes=20)) == 1
    assert due_step(opened, 20, chain, opened + timedelta(minutes=59)) == 2
    assert due_step(opened, 20, chain, opened + timedelta(minutes=60)) == 3  # staff
    assert due_step(opened, 20, chain, opened + timedelta(hours=5)) == 3
    assert due_step(opened, 20, chain, opened - timedelta(minutes=1)) == 0
