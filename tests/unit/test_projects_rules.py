"""The pure rules of livelihood projects and property disclosure: progress, the status table, amounts as typed."""

from __future__ import annotations

from datetime import date

import pytest

from server.models import ProjectStatus, PropertyMonth
from server.services import projects as svc
from server.services import property_disclosure as disclosure


@pytest.mark.parametrize(("status", "done", "total", "manual", "expected"), [
    (ProjectStatus.IN_PROGRESS, 0, 0, 40, 40),  # no milestones: staff's figure
    (ProjectStatus.IN_PROGRESS, 2, 3, 90, 66),  # milestones win, rounded down
    (ProjectStatus.IN_PROGRESS, 3, 3, 0, 100),
    (ProjectStatus.PLANNED, 0, 4, 50, 0),
    (ProjectStatus.ACCEPTED, 1, 4, 0, 100),  # accepted is complete
    (ProjectStatus.SUSPENDED, 0, 0, 140, 100),  # clamped
])
def test_progress(status: ProjectStatus, done: int, total: int, manual: int, expected: int) -> None:
    assert svc.progress(status, done, total, manual) == expected


def test_nobody_sets_accepted_by_hand_and_accepted_is_final() -> None:
    assert all(ProjectStatus.ACCEPTED not in targets for targets in svc.TRANSITIONS.values())
    assert svc.TRANSITIONS[ProjectStatus.ACCEPTED] == frozenset()
    assert set(svc.TRANSITIONS) == set(ProjectStatus)
    assert ProjectStatus.AWAITING_ACCEPTANCE in svc.TRANSITIONS[ProjectStatus.IN_PROGRESS]
    assert ProjectStatus.AWAITING_ACCEPTANCE not in svc.TRANSITIONS[ProjectStatus.PLANNED]  # works first


@pytest.mark.parametrize(("typed", "fen"), [("0.85", 85), ("3", 300), ("1,200.5", 120050), ("¥2.00", 200), ("80元", 8000),
                                            ("0.855", None), ("-1", None), ("abc", None), ("", None), ("NaN", None),
                                            ("1e30", None), ("1E+27", None), ("Infinity", None), ("0x10", None),
                                            ("１２.５", 1250), ("￥3", 300), (".5", 50)])
def test_prices_are_typed_in_yuan_and_kept_in_fen(typed: str, fen: int | None) -> None:
    assert disclosure.price_fen(typed) == fen
    if fen is not None:
        assert disclosure.price_fen(disclosure.yuan(fen)) == fen


@pytest.mark.parametrize(("typed", "bp"), [("4.5", 450), ("70 %", 7000), ("0", 0), ("100", 10000), ("33.33", 3333),
                                           ("100.01", None), ("-0.5", None), ("4.555", None), ("七十", None), ("inf", None)])
def test_rates_are_percentages_from_0_to_100(typed: str, bp: int | None) -> None:
    assert disclosure.rate_bp(typed) == bp


def test_rates_read_back_as_typed() -> None:
    assert [disclosure.percent_text(bp) for bp in (420, 7000, 0, 3333, 1050)] == ["4.2", "70", "0", "33.33", "10.5"]


@pytest.mark.parametrize(("typed", "month"), [("2025-03", date(2025, 3, 1)), ("2025-3", date(2025, 3, 1)), ("2025-13", None),
                                              ("25-03", None), ("2025/03", None), ("", None)])
def test_months(typed: str, month: date | None) -> None:
    assert disclosure.month_of(typed) == month


def test_the_complaints_trend_compares_the_first_and_latest_three_months() -> None:
    def row(n: int, complaints: int | None, bp: int | None = None) -> PropertyMonth:
        return PropertyMonth(month=date(2025, n, 1), complaints=complaints, collection_bp=bp)

    rows = [row(1, 20, 420), row(2, 19), row(3, 21), row(4, None), row(5, 15), row(6, 13), row(7, 12), row(8, 14, 7000)]
    trend = disclosure.trend(rows)
    assert trend.complaints_change_percent == -35  # 39 against 60
    assert trend.first_rate is rows[0] and trend.last_rate is rows[-1]
    assert disclosure.trend(rows[:5]).complaints_change_percent is None  # not enough months to say
