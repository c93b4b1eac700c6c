"""Charts drawn on the server as SVG (L2, L7): no script, readable on a phone and on a lobby TV (the SVG
scales to its box; text is sized in the viewBox), each with a text alternative (the same figures as a
table, `partials/chart.html`). docs/boards.md, "Charts".

    chart = line_chart(["7月", "8月"], [Series("收缴率", [4.5, 12.0])], title="物业费收缴率", unit="%")

`{{ chart(c) }}` (from partials/chart.html) renders `c.svg` and the table. Colours come from CSS classes
(`.chart-s0` … `.chart-s3`), so the page's theme decides them and contrast stays right.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from markupsafe import Markup, escape

WIDTH, HEIGHT = 480, 270
LEFT, RIGHT, TOP, BOTTOM = 84, 36, 14, 40
FONT = 18  # in viewBox units: about 14 px on a phone, larger on a TV


@dataclass(frozen=True)
class Series:
    name: str
    values: list[float | None]


@dataclass(frozen=True)
class Chart:
    kind: Literal["line", "bar"]
    title: str
    unit: str
    labels: list[str]
    series: list[Series]
    svg: Markup
    places: int | None = None  # decimals in the table (None: whole numbers as such, else one decimal)

    @property
    def rows(self) -> list[tuple[str, list[str]]]:
        """The text alternative: one row per label, one formatted cell per series (exact: money keeps its fen)."""
        return [(label, [format_value(s.values[i] if i < len(s.values) else None, self.unit, self.places) for s in self.series])
                for i, label in enumerate(self.labels)]


def format_value(value: float | None, unit: str = "", places: int | None = None) -> str:
    if value is None:
        return "—"
    if places is not None:
        text = f"{value:,.{places}f}"
    else:
        text = f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"
    return f"{text}{unit}"


def nice_max(value: float) -> float:
    """A round top for the axis at or above `value` (1, 2, 2.5, 5 × 10^n)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power


def _frame(labels: list[str], top: float, unit: str, slot: float) -> list[str]:
    parts = []
    plot_h = HEIGHT - TOP - BOTTOM
    for i in range(5):  # four gridlines and the base line, labelled
        value = top * i / 4
        y = TOP + plot_h - plot_h * i / 4
        parts.append(f'<line class="chart-grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text class="chart-axis" x="{LEFT - 6}" y="{y + FONT / 3:.1f}" text-anchor="end">{escape(format_value(value, unit))}</text>')
    # As many labels along the bottom as fit side by side (a phone shows a year of months as every third).
    widest = max((sum(FONT if ord(ch) > 255 else FONT * 0.6 for ch in label) for label in labels), default=0) + 16
    every = max(1, math.ceil(len(labels) / max(1, int((WIDTH - LEFT - RIGHT) // widest))))
    for i, label in enumerate(labels):
        if (len(labels) - 1 - i) % every:  # counted from the last label, which is always shown
            continue
        x = LEFT + slot * (i + 0.5)
        parts.append(f'<text class="chart-axis" x="{x:.1f}" y="{HEIGHT - BOTTOM + FONT + 8}" text-anchor="middle">{escape(label)}</text>')
    return parts


def _svg(kind: str, title: str, labels: list[str], series: list[Series], body: list[str]) -> Markup:
    legend = []
    if len(series) > 1:
        for n, s in enumerate(series):
            x = LEFT + n * 150
            legend.append(f'<rect class="chart-s{n % 4}" x="{x}" y="{HEIGHT + 6}" width="14" height="14"/>'
                          f'<text class="chart-axis" x="{x + 20}" y="{HEIGHT + 19}">{escape(s.name)}</text>')
    return Markup(
        f'<svg class="chart chart-{kind}" viewBox="0 0 {WIDTH} {HEIGHT + (28 if legend else 0)}" role="img" '
        f'aria-label="{escape(title)}" preserveAspectRatio="xMidYMid meet" font-size="{FONT}">'
        + "".join(body) + "".join(legend) + "</svg>"
    )


def line_chart(labels: list[str], series: list[Series], *, title: str, unit: str = "", top: float | None = None,
               places: int | None = None) -> Chart:
    """One line per series over `labels` (months, days); a missing value breaks the line."""
    peak = max((v for s in series for v in s.values if v is not None), default=0.0)
    top = top or nice_max(peak)
    slot = (WIDTH - LEFT - RIGHT) / max(1, len(labels))
    plot_h = HEIGHT - TOP - BOTTOM
    body = _frame(labels, top, unit, slot)
    for n, s in enumerate(series):
        points: list[list[str]] = [[]]
        for i, value in enumerate(s.values[: len(labels)]):
            if value is None:
                points.append([])
                continue
            x = LEFT + slot * (i + 0.5)
            y = TOP + plot_h - plot_h * min(value, top) / top
            points[-1].append(f"{x:.1f},{y:.1f}")
            body.append(f'<circle class="chart-s{n % 4}" cx="{x:.1f}" cy="{y:.1f}" r="4"/>')
        for run in points:
            if len(run) > 1:
                body.append(f'<polyline class="chart-line chart-s{n % 4}" fill="none" points="{" ".join(run)}"/>')
    return Chart("line", title, unit, labels, series, _svg("line", title, labels, series, body), places)


def bar_chart(labels: list[str], series: list[Series], *, title: str, unit: str = "", top: float | None = None,
              places: int | None = None) -> Chart:
    """Grouped bars: one group per label, one bar per series."""
    peak = max((v for s in series for v in s.values if v is not None), default=0.0)
    top = top or nice_max(peak)
    slot = (WIDTH - LEFT - RIGHT) / max(1, len(labels))
    plot_h = HEIGHT - TOP - BOTTOM
    body = _frame(labels, top, unit, slot)
    width = slot * 0.7 / max(1, len(series))
    for n, s in enumerate(series):
        for i, value in enumerate(s.values[: len(labels)]):
            if not value:
                continue
            h = plot_h * min(max(value, 0), top) / top
            x = LEFT + slot * i + slot * 0.15 + width * n
            body.append(f'<rect class="chart-s{n % 4}" x="{x:.1f}" y="{TOP + plot_h - h:.1f}" width="{width:.1f}" height="{h:.1f}"/>')
    return Chart("bar", title, unit, labels, series, _svg("bar", title, labels, series, body), places)
