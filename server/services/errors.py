"""Errors a service raises when input breaks a rule; routes turn them into messages in the user's language."""

from __future__ import annotations


class ServiceError(Exception):
    """A rule was broken. `message` is an untranslated msgid, `params` fill its placeholders."""

    def __init__(self, message: str, field: str | None = None, **params: object) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.params = params

    def translated(self) -> str:
        from server.i18n import gettext

        return gettext(self.message) % self.params if self.params else gettext(self.message)
