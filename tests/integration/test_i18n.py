"""The translation catalogs cover every UI string, are compiled, and keep their placeholders."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from server import PROJECT_DIR
from server.i18n import LOCALE_DIR
from server.settings import SUPPORTED_LOCALES

PYBABEL = Path(sys.executable).parent / "pybabel"
PLACEHOLDER_RE = re.compile(r"%\((\w+)\)[sdifr]")
CHINESE_RE = re.compile(r"[\u4e00-\u9fff]")


def po_path(locale: str) -> Path:
    return LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"


def load_po(locale: str) -> Catalog:
    with po_path(locale).open("rb") as fh:
        return read_po(fh, locale=locale)


def strings(value: str | tuple[str, ...] | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """The messages in the code today, extracted with the Makefile's `extract` flags."""
    pot = tmp_path_factory.mktemp("i18n") / "messages.pot"
    subprocess.run(
        [str(PYBABEL), "extract", "-F", "babel.cfg", "-k", "N_", "--no-location", "--sort-output", "--omit-header",
         "-o", str(pot), "."],
        cwd=PROJECT_DIR, check=True, capture_output=True,
    )
    with pot.open("rb") as fh:
        catalog = read_po(fh)
    assert len([message for message in catalog if message.id]) > 20
    return catalog


def translatable(catalog: Catalog) -> list[Message]:
    return [message for message in catalog if message.id]


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_every_ui_string_is_translated(locale: str, extracted: Catalog) -> None:
    """No UI string shows up untranslated or with a guessed (fuzzy) translation."""
    catalog = load_po(locale)
    problems = []
    for message in translatable(extracted):
        found = catalog.get(message.id if isinstance(message.id, str) else message.id[0])
        if found is None:
            problems.append(f"missing: {message.id!r}")
        elif found.fuzzy:
            problems.append(f"fuzzy: {message.id!r}")
        elif not all(text.strip() for text in strings(found.string)) or not strings(found.string):
            problems.append(f"empty: {message.id!r}")
    assert problems == []


def test_chinese_catalog_is_chinese(extracted: Catalog) -> None:
    """The default language really is Chinese, for key strings and every other one."""
    catalog = load_po("zh_CN")
    expected = {
        "Sign in": "登录",
        "New version available, tap to refresh": "有新版本，点击刷新",
        "Shanzhi Jiefanglu": "善治解放路",
        "Page not found": "页面不存在",
    }
    for msgid, msgstr in expected.items():
        message = catalog.get(msgid)
        assert message is not None, msgid
        assert message.string == msgstr
    not_chinese = [
        message.id for message in translatable(catalog)
        if not any(CHINESE_RE.search(text) for text in strings(message.string))
    ]
    assert not_chinese == []


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_compiled_catalog_is_current(locale: str) -> None:
    """The .mo the app loads exists and holds exactly the translations of its .po.

    Compared by content, not by file times: `pybabel update` rewrites an unchanged .po and
    leaves it newer than a .mo that is perfectly current.
    """
    po = po_path(locale)
    mo = po.with_suffix(".mo")
    assert mo.exists(), f"{mo} is missing; run `make compile-catalogs`"
    with mo.open("rb") as fh:
        compiled = read_mo(fh)
    source = load_po(locale)
    stale = []
    for message in translatable(source):
        if message.fuzzy:
            continue
        found = compiled.get(message.id if isinstance(message.id, str) else message.id[0])
        if found is None or strings(found.string) != strings(message.string):
            stale.append(message.id)
    extra = [message.id for message in translatable(compiled) if source.get(message.id) is None]
    assert stale == []
    assert extra == []


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_translations_keep_placeholders(locale: str) -> None:
    """A translation that drops or renames %(name)s would crash or show the wrong text."""
    wrong = []
    for message in translatable(load_po(locale)):
        wanted = {name for msgid in strings(message.id) for name in PLACEHOLDER_RE.findall(msgid)}
        for text in strings(message.string):
            if set(PLACEHOLDER_RE.findall(text)) != wanted:
                wrong.append((message.id, text))
    assert wrong == []
