"""Locale per request and gettext for Python and Jinja2; catalogs live in server/locale."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any
from functools import lru_cache

from babel.support import NullTranslations, Translations

from server import PACKAGE_DIR
from server.settings import SUPPORTED_LOCALES

LOCALE_DIR = PACKAGE_DIR / "locale"
DOMAIN = "messages"
LANG_COOKIE = "shanzhi_lang"

# BCP 47 tags for <html lang> and Content-Language.
HTML_LANG = {"zh_CN": "zh-CN", "en": "en"}

current_locale: ContextVar[str] = ContextVar("current_locale", default="zh_CN")


@lru_cache(maxsize=len(SUPPORTED_LOCALES))
def translations_for(locale: str) -> NullTranslations:
    translations = Translations.load(str(LOCALE_DIR), [locale], domain=DOMAIN)
    if not isinstance(translations, Translations):
        msg = f"No compiled catalog for {locale} in {LOCALE_DIR}; run `make catalogs`."
        raise RuntimeError(msg)
    return translations


def gettext(message: str) -> str:
    return translations_for(current_locale.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations_for(current_locale.get()).ngettext(singular, plural, n)


def N_(message: str) -> str:  # noqa: N802 - the conventional name extractors look for
    """Mark a string for extraction; translate it later, where the locale is known."""
    return message


_ = gettext


def negotiate_locale(cookie_value: str | None, default: str) -> str:
    """The user's explicit choice (the language switch) wins; otherwise the configured default.

    Accept-Language is deliberately ignored: the subdistrict's UI is Chinese first, and many
    phones here report English-first browser settings.
    """
    return cookie_value if cookie_value in SUPPORTED_LOCALES else default  # type: ignore[return-value]


def translate_labels(labels: Any, attribute: str | None = None) -> dict[Any, str]:
    """{key: translated label} for a mapping of msgids (or of objects whose `attribute` is one): pages
    translate a column's labels once, not once per row."""
    translate = translations_for(current_locale.get()).gettext
    return {key: translate(getattr(value, attribute) if attribute else value) for key, value in labels.items()}
