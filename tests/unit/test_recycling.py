"""Recycling points (L4): the rules that need no database — weights as typed, points of a line, card numbers,
and the subdistrict's month."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from server.services import recycling
from server.services.errors import ServiceError

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(("typed", "grams"), [("3.2", 3200), ("0.45", 450), ("12", 12000), (" 1，5 ", 1500), ("200", 200000),
                                              ("0.001", 1)])
def test_weights_are_read_as_whole_grams(typed: str, grams: int) -> None:
    assert recycling.parse_kg(typed) == grams


@pytest.mark.parametrize(("typed", "message"), [
    ("", "Enter the weight in kg."),
    ("-2", "The weight must be more than 0 kg."),
    ("0", "The weight must be more than 0 kg."),
    ("0.0004", "Weigh to the gram at most (three decimals)."),
    ("200.001", "At most %(max)d kg on one line: check the weight, or split it."),
    ("1e3", "Enter the weight as a number of kg, such as 3.2."),
    ("三公斤", "Enter the weight as a number of kg, such as 3.2."),
    ("NaN", "Enter the weight as a number of kg, such as 3.2."),
])
def test_absurd_weights_are_refused_with_a_reason(typed: str, message: str) -> None:
    with pytest.raises(ServiceError) as refused:
        recycling.parse_kg(typed, "lines.0.kg")
    assert refused.value.message == message and refused.value.field == "lines.0.kg"


def test_a_line_earns_its_weight_times_the_rate_rounded_half_up() -> None:
    assert recycling.line_points(3200, 8) == 26  # 25.6
    assert recycling.line_points(1250, 2) == 3  # 2.5
    assert recycling.line_points(1, 1000) == 1
    assert recycling.line_points(200_000, 0) == 0


def test_card_numbers_as_typed_or_scanned() -> None:
    assert recycling.normalise_card(" 1234 5678 ") == "12345678"
    assert recycling.normalise_card("1234-5678") == "12345678"
    assert recycling.format_card("12345678") == "1234 5678"
    assert recycling.kg(3200) == "3.2" and recycling.kg(12000) == "12" and recycling.kg(450) == "0.45" and recycling.kg(0) == "0"


def test_this_month_is_the_subdistricts_month() -> None:
    # 2026-05-31 17:00 UTC is already 1 June in Jinan.
    start, end = recycling.month_bounds(datetime(2026, 5, 31, 17, 0, tzinfo=UTC), SHANGHAI)
    assert (start, end) == (datetime(2026, 5, 31, 16, 0, tzinfo=UTC), datetime(2026, 6, 30, 16, 0, tzinfo=UTC))
    start, end = recycling.month_bounds(datetime(2026, 1, 15, tzinfo=UTC), SHANGHAI, back=1)
    assert start.astimezone(SHANGHAI).date().isoformat() == "2025-12-01" and end.astimezone(SHANGHAI).date().isoformat() == "2026-01-01"
