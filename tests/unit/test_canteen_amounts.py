"""What a canteen manager types as an amount becomes whole fen, or a clear refusal (docs/boards.md, "canteen")."""

from __future__ import annotations

from datetime import date

import pytest

from server.services.canteen import MAX_AMOUNT_FEN, month_of, next_month, parse_month, parse_yuan, previous_month, yuan
from server.services.errors import ServiceError


@pytest.mark.parametrize(("typed", "fen"), [
    ("12", 1200), ("12.5", 1250), ("12.50", 1250), ("0.01", 1), ("1,234.56", 123456), (" 88 ", 8800),
    ("￥36", 3600), ("¥36.8", 3680), ("36元", 3600), ("１２３．４", 12340),  # full-width digits from a Chinese keyboard
    ("1000000", MAX_AMOUNT_FEN),
])
def test_yuan_typed_on_a_phone_becomes_fen(typed: str, fen: int) -> None:
    assert parse_yuan(typed) == fen


@pytest.mark.parametrize(("typed", "message"), [
    ("", "Please enter the amount in yuan."),
    ("-12", "Amounts are positive. To correct an entry, reverse it."),
    ("0", "The amount must be more than zero."),
    ("0.00", "The amount must be more than zero."),
    ("12.345", "Please enter at most two decimals (fen)."),
    ("12,5", "Please enter the amount as a number of yuan, e.g. 1280.50."),  # a decimal comma reads as 125: refused
    ("abc", "Please enter the amount as a number of yuan, e.g. 1280.50."),
    ("1e5", "Please enter the amount as a number of yuan, e.g. 1280.50."),
    ("NaN", "Please enter the amount as a number of yuan, e.g. 1280.50."),
    ("1000000.01", "This amount is too large for one entry (at most %(max)s yuan)."),
    ("99999999999", "This amount is too large for one entry (at most %(max)s yuan)."),
])
def test_bad_amounts_are_refused_with_a_reason(typed: str, message: str) -> None:
    with pytest.raises(ServiceError) as refused:
        parse_yuan(typed)
    assert refused.value.message == message and refused.value.field == "amount"


def test_fen_are_shown_as_yuan_with_two_decimals() -> None:
    assert yuan(123456) == "1,234.56"
    assert yuan(-5) == "-0.05"
    assert yuan(0) == "0.00"


def test_month_arithmetic() -> None:
    assert month_of(date(2026, 2, 17)) == date(2026, 2, 1)
    assert next_month(date(2026, 12, 1)) == date(2027, 1, 1)
    assert previous_month(date(2026, 1, 1)) == date(2025, 12, 1)
    assert parse_month("2026-03") == date(2026, 3, 1)
    assert parse_month("2026-13") is None and parse_month("x") is None and parse_month(None) is None
