"""Errors a service raises when input breaks a rule; routes turn them into messages in the user's language."""

from __future__ import annotations

import unicodedata
from datetime import date

from server.i18n import N_


class ServiceError(Exception):
    """A rule was broken. `message` is an untranslated msgid, `params` fill its placeholders."""

    def __init__(self, message: str, field: str | None = None, **params: object) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.params = params

    def translated(self) -> str:
        """The message in the current locale; string parameters that are msgids (labels) are translated too."""
        from server.i18n import gettext

        if not self.params:
            return gettext(self.message)
        params = {key: gettext(value) if isinstance(value, str) else value for key, value in self.params.items()}
        return gettext(self.message) % params


class InvalidInput(ServiceError):
    """Every problem with one input (a form, a mutation, an import row); the first is the error's own message."""

    def __init__(self, problems: list[ServiceError]) -> None:
        super().__init__(problems[0].message, problems[0].field, **problems[0].params)
        self.problems = problems


def field_errors(error: ServiceError, default: str = "form", into: dict[str, str] | None = None) -> dict[str, str]:
    """{field: message} for a form: the first translated message of each field (of an InvalidInput's
    problems, or of a single error), added to `into`; a problem without a field goes under `default`."""
    errors = dict(into or {})
    for problem in getattr(error, "problems", None) or [error]:
        errors.setdefault(problem.field or default, problem.translated())
    return errors


def parse_day(text: str, field_name: str = "day") -> date:
    """A date as typed (YYYY-MM-DD, full-width digits too)."""
    try:
        return date.fromisoformat(unicodedata.normalize("NFKC", text or "").strip())
    except ValueError:
        raise ServiceError(N_("Please enter the date (year-month-day)."), field=field_name) from None


def past_day(text: str, field_name: str, today: date, problems: list[ServiceError]) -> date | None:
    """A day that has happened (since 2000) as typed for a record of it, or None with the problem added."""
    try:
        day = parse_day(text, field_name)
    except ServiceError as error:
        problems.append(error)
        return None
    if day > today:
        problems.append(ServiceError(N_("The date is in the future."), field=field_name))
        return None
    if day.year < 2000:
        problems.append(ServiceError(N_("Please enter the date (year-month-day)."), field=field_name))
        return None
    return day
