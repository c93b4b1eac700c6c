"""`shanzhi enterprises import|export` as an operator uses them: a report of every rejected row, all or
nothing, --dry-run, and an export that imports back unchanged."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy import select

from server.models import Enterprise, Role
from server.settings import Settings
from tests.integration.test_cli import cli, query  # noqa: F401 - the fixture
from tests.integration.test_enterprise_pages import BOM, HEADER, Registry, code, make_registry, mistyped


def write(tmp_path: Path, name: str, *rows: str, bom: bool = True) -> Path:
    path = tmp_path / name
    path.write_text((BOM if bom else "") + "\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return path


def names(database_url: str) -> list[str]:
    return [row[0] for row in query(database_url, select(Enterprise.name).order_by(Enterprise.name))]


def registry_of(settings: Settings) -> Registry:
    """Places and policies, committed before the command runs (the CLI runs its own event loop)."""
    return asyncio.run(make_registry(settings))


def test_import_reports_every_rejected_row_and_writes_nothing(
    cli: Any, database_url: str, settings: Settings, people: dict[Role, str], tmp_path: Path,  # noqa: F811
) -> None:
    registry = registry_of(settings)
    bad = write(tmp_path, "bad.csv",
                f"{code(1)},泉城软件,I,small,growing,,{registry.building_code},1",
                f"{code(2)},历下机械厂,C,medium,,,{registry.park_code},0",
                f"{mistyped(code(3))},错码公司,I,small,,,,",
                f"{code(1)},重复公司,I,small,,,ZZZZZZ,")
    result = cli("enterprises", "import", str(bad))
    assert result.exit_code == 1, result.output
    assert "nothing was written" in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("line ")]
    assert [line.split(":")[0] for line in lines] == ["line 4", "line 5", "line 5"]
    assert any("ZZZZZZ" in line for line in lines)
    assert names(database_url) == []


def test_import_dry_run_then_import_then_export_round_trip(
    cli: Any, database_url: str, settings: Settings, people: dict[Role, str], tmp_path: Path,  # noqa: F811
) -> None:
    registry = registry_of(settings)
    good = write(tmp_path, "good.csv",
                 f"{code(11)},泉城软件,I,small,growing,2020-05-01,{registry.building_code},1",
                 f"{code(12)},历下机械厂,C,medium,above_scale,,{registry.park_code},0",
                 f"{code(13)},解放路面馆,H,micro,new,,,", bom=False)
    dry = cli("enterprises", "import", "--dry-run", str(good))
    assert dry.exit_code == 0, dry.output
    assert "3 would be created" in dry.output
    assert names(database_url) == []

    done = cli("enterprises", "import", str(good))
    assert done.exit_code == 0, done.output
    assert "3 created, 0 updated" in done.output
    assert names(database_url) == ["历下机械厂", "泉城软件", "解放路面馆"]

    exported = tmp_path / "export.csv"
    result = cli("enterprises", "export", str(exported))
    assert result.exit_code == 0, result.output
    assert exported.read_bytes().startswith(b"\xef\xbb\xbf")
    before = query(database_url, select(Enterprise.credit_code, Enterprise.name, Enterprise.place_id, Enterprise.is_key, Enterprise.stage))
    again = cli("enterprises", "import", str(exported))
    assert again.exit_code == 0, again.output
    assert "0 created, 3 updated" in again.output
    assert query(database_url, select(Enterprise.credit_code, Enterprise.name, Enterprise.place_id, Enterprise.is_key, Enterprise.stage)) == before

    to_stdout = cli("enterprises", "export")
    assert to_stdout.exit_code == 0
    assert to_stdout.output.startswith(BOM + ",".join(("credit_code", "name")))
    assert "泉城软件" in to_stdout.output
