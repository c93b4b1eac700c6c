"""Server-drawn charts: what a reader gets is an SVG scaled to its box plus the same figures as text."""

from __future__ import annotations

from server.services.charts import Series, bar_chart, line_chart, nice_max


def test_the_text_alternative_carries_every_figure_with_its_unit() -> None:
    chart = line_chart(["7月", "8月", "9月"], [Series("收缴率", [4.5, None, 70.0]), Series("投诉", [20, 15, 13])], title="东舍坊", unit="%")
    assert chart.rows == [("7月", ["4.5%", "20%"]), ("8月", ["—", "15%"]), ("9月", ["70%", "13%"])]
    assert 'role="img"' in chart.svg and 'aria-label="东舍坊"' in chart.svg


def test_a_gap_breaks_the_line_and_every_value_has_a_point() -> None:
    chart = line_chart(["a", "b", "c", "d"], [Series("s", [1, 2, None, 4])], title="t")
    assert chart.svg.count("<circle") == 3
    assert chart.svg.count("<polyline") == 1  # a-b joined; d stands alone after the gap


def test_bars_scale_to_a_round_top_and_skip_zero() -> None:
    chart = bar_chart(["a", "b"], [Series("kg", [0, 37])], title="t", unit=" kg")
    assert chart.svg.count("<rect") == 1
    assert ">50 kg<" in chart.svg  # the axis tops out at a round 50
    assert [nice_max(v) for v in (0, 0.7, 3, 37, 101)] == [1.0, 1.0, 5, 50, 200]


def test_labels_and_titles_are_escaped() -> None:
    chart = bar_chart(["<b>"], [Series("<i>", [1]), Series("x", [2])], title='"t"')
    assert "<b>" not in chart.svg and "&lt;b&gt;" in chart.svg and "&lt;i&gt;" in chart.svg


def test_money_keeps_its_fen_in_the_table() -> None:
    chart = bar_chart(["10月"], [Series("收入", [45678.95])], title="t", places=2)
    assert chart.rows == [("10月", ["45,678.95"])]
