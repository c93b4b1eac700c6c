"""Appeal time limits (A3) in Asia/Shanghai: due dates across midnight, month ends and leap years; urgency."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from server.services.deadlines import TimeLimits, Urgency, add_months, time_left
from server.settings import Settings

SHANGHAI = ZoneInfo("Asia/Shanghai")
SETTINGS = Settings(database_url="sqlite+aiosqlite://", secret_key="x")
LIMITS = TimeLimits.from_settings(SETTINGS)


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A Shanghai wall time, as the service stores it: in UTC."""
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


def wall(moment: datetime) -> tuple[int, int, int, int, int]:
    shown = moment.astimezone(SHANGHAI)
    return (shown.year, shown.month, shown.day, shown.hour, shown.minute)


def test_default_limits_are_the_seed_rule() -> None:
    """"12小时响应、7日办结、复杂问题1月闭环", counted in the subdistrict's time zone."""
    assert LIMITS.response == timedelta(hours=12)
    assert LIMITS.resolve_days == 7
    assert LIMITS.complex_months == 1
    assert LIMITS.due_soon_ratio == 0.25
    assert LIMITS.tz.key == "Asia/Shanghai"


def test_response_due_crosses_local_midnight() -> None:
    """Received 20:00 local: a response is due 08:00 the next local day."""
    assert wall(LIMITS.response_due(local(2026, 3, 10, 20))) == (2026, 3, 11, 8, 0)


def test_response_due_crosses_month_and_year_end() -> None:
    assert wall(LIMITS.response_due(local(2026, 12, 31, 23, 30))) == (2027, 1, 1, 11, 30)


def test_resolution_due_crosses_a_month_end() -> None:
    """Received Jan 28 09:00 local: resolved by Feb 4 09:00 local."""
    assert wall(LIMITS.resolve_due(local(2026, 1, 28, 9), complex_case=False)) == (2026, 2, 4, 9, 0)


def test_resolution_counts_local_days_not_utc_days() -> None:
    """Received 00:30 local on Mar 1 (still Feb 28 in UTC): due 00:30 local on Mar 8."""
    received = local(2026, 3, 1, 0, 30)
    assert received.date() == datetime(2026, 2, 28).date()  # the UTC date is the day before
    assert wall(LIMITS.resolve_due(received, complex_case=False)) == (2026, 3, 8, 0, 30)


def test_just_before_local_midnight_but_after_utc_midnight() -> None:
    """23:50 local on Jan 31 is 15:50 UTC the same day; 12 h later is Feb 1 11:50 local, 7 days later Feb 7."""
    received = local(2026, 1, 31, 23, 50)
    assert received.hour == 15
    assert wall(LIMITS.response_due(received)) == (2026, 2, 1, 11, 50)
    assert wall(LIMITS.resolve_due(received, complex_case=False)) == (2026, 2, 7, 23, 50)


@pytest.mark.parametrize(
    ("received", "due"),
    [
        ((2026, 1, 31, 9), (2026, 2, 28, 9, 0)),  # clamped to the end of a short February
        ((2028, 1, 31, 9), (2028, 2, 29, 9, 0)),  # 2028 is a leap year
        ((2026, 12, 15, 14), (2027, 1, 15, 14, 0)),  # into the next year
        ((2026, 3, 31, 10), (2026, 4, 30, 10, 0)),  # 30-day month
        ((2026, 2, 28, 8), (2026, 3, 28, 8, 0)),
    ],
)
def test_complex_cases_get_one_calendar_month(received: tuple[int, ...], due: tuple[int, ...]) -> None:
    assert wall(LIMITS.resolve_due(local(*received), complex_case=True)) == due


def test_complex_month_uses_the_local_date() -> None:
    """Jan 31 00:30 local is Jan 30 in UTC; the month is counted from the local date Jan 31."""
    received = local(2026, 1, 31, 0, 30)
    assert received.day == 30
    assert wall(LIMITS.resolve_due(received, complex_case=True)) == (2026, 2, 28, 0, 30)


def test_add_months_keeps_the_input_time_zone() -> None:
    moment = local(2026, 11, 30, 12)
    result = add_months(moment, 3, SHANGHAI)
    assert result.tzinfo is moment.tzinfo
    assert wall(result) == (2027, 2, 28, 12, 0)


def test_limits_come_from_settings() -> None:
    """A 6-hour response limit, 5-day resolution and 2-month complex limit change every due date."""
    limits = TimeLimits.from_settings(
        replace(SETTINGS, appeal_response_hours=6, appeal_resolve_days=5, appeal_complex_resolve_months=2)
    )
    received = local(2026, 1, 28, 20)
    assert wall(limits.response_due(received)) == (2026, 1, 29, 2, 0)
    assert wall(limits.resolve_due(received, complex_case=False)) == (2026, 2, 2, 20, 0)
    assert wall(limits.resolve_due(received, complex_case=True)) == (2026, 3, 28, 20, 0)


def test_another_time_zone_moves_the_calendar_day() -> None:
    """Calendar days are the configured zone's: the same UTC instant ends on another local day in UTC."""
    limits = TimeLimits.from_settings(replace(SETTINGS, timezone="UTC"))
    received = local(2026, 1, 31, 0, 30)  # Jan 30 16:30 UTC
    assert limits.resolve_due(received, complex_case=True) == datetime(2026, 2, 28, 16, 30, tzinfo=UTC)


# Urgency: a 12-hour window from 08:00 to 20:00 local.
START = local(2026, 5, 6, 8)
DUE = local(2026, 5, 6, 20)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (START, Urgency.ON_TRACK),
        (local(2026, 5, 6, 16, 59), Urgency.ON_TRACK),  # 3 h 1 min left: more than a quarter
        (local(2026, 5, 6, 17), Urgency.ON_TRACK),  # exactly a quarter left: not yet under it
        (local(2026, 5, 6, 17) + timedelta(seconds=1), Urgency.DUE_SOON),
        (local(2026, 5, 6, 19, 59), Urgency.DUE_SOON),
        (DUE, Urgency.DUE_SOON),  # exactly at the due time: not overdue yet
        (DUE + timedelta(seconds=1), Urgency.OVERDUE),
        (local(2026, 5, 9), Urgency.OVERDUE),
    ],
)
def test_urgency_of_an_open_limit(now: datetime, expected: Urgency) -> None:
    assert LIMITS.urgency(START, DUE, None, now) is expected


@pytest.mark.parametrize(
    ("done_at", "expected"),
    [
        (local(2026, 5, 6, 9), Urgency.MET),
        (DUE, Urgency.MET),  # done exactly at the limit counts as on time
        (DUE + timedelta(seconds=1), Urgency.MISSED),
    ],
)
def test_urgency_of_a_done_limit_ignores_now(done_at: datetime, expected: Urgency) -> None:
    for now in (START, DUE, local(2026, 6, 1)):
        assert LIMITS.urgency(START, DUE, done_at, now) is expected


def test_due_soon_ratio_is_configurable() -> None:
    limits = TimeLimits.from_settings(replace(SETTINGS, appeal_due_soon_ratio=0.5))
    assert limits.urgency(START, DUE, None, local(2026, 5, 6, 13)) is Urgency.ON_TRACK
    assert limits.urgency(START, DUE, None, local(2026, 5, 6, 14, 1)) is Urgency.DUE_SOON
    assert LIMITS.urgency(START, DUE, None, local(2026, 5, 6, 14, 1)) is Urgency.ON_TRACK


def test_time_left_is_negative_once_overdue() -> None:
    assert time_left(DUE, local(2026, 5, 6, 18, 30)) == timedelta(hours=1, minutes=30)
    assert time_left(DUE, local(2026, 5, 6, 21)) == -timedelta(hours=1)


def test_limits_are_read_from_the_environment(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "SHANZHI_VAR_DIR": str(tmp_path),
            "SHANZHI_SECRET_KEY": "x",
            "SHANZHI_APPEAL_RESPONSE_HOURS": "6",
            "SHANZHI_APPEAL_RESOLVE_DAYS": "3",
            "SHANZHI_APPEAL_COMPLEX_RESOLVE_MONTHS": "2",
            "SHANZHI_APPEAL_DUE_SOON_RATIO": "0.1",
        }
    )
    limits = TimeLimits.from_settings(settings)
    received = local(2026, 3, 10, 20)
    assert wall(limits.response_due(received)) == (2026, 3, 11, 2, 0)
    assert wall(limits.resolve_due(received, complex_case=False)) == (2026, 3, 13, 20, 0)
    assert wall(limits.resolve_due(received, complex_case=True)) == (2026, 5, 10, 20, 0)
    assert limits.due_soon_ratio == 0.1
