"""CSV exports (X5) that Excel opens safely: UTF-8 with a BOM (Chinese headers), and no cell that
Excel would read as a formula. A cell starting with =, +, -, @, a tab or a carriage return gets a
leading apostrophe (OWASP "CSV injection"): a resident's text never runs in a staff member's Excel."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def plain(text: str) -> str:
    """A cell as it was before `cell` neutralised it: an exported file imported back gives the same values."""
    return text[1:] if text.startswith("'") and text[1:].startswith(FORMULA_STARTS) else text


def csv_bytes(header: Sequence[Any], rows: Iterable[Sequence[Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([cell(h) for h in header])
    for row in rows:
        writer.writerow([cell(value) for value in row])
    return out.getvalue().encode("utf-8-sig")
