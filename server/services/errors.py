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
        """The message in the current locale; string parameters that are msgids (labels) are translated too."""
        from server.i18n import gettext

        if not self.params:
            return gettext(self.message)
        params = {key: gettext(value) if isinstance(value, str) else value for key, value in self.params.items()}
        return gettext(self.message) % params
