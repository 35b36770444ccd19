"""Errors that the HTTP edge turns into 4xx JSON answers.

Deeper modules raise these (or plain domain errors); only ``backend/web/ml_api.py`` converts them, so
no handler ever leaks a traceback to Label Studio.
"""
from __future__ import annotations


class ApiError(Exception):
    """A request we refuse, with the status code and a message the caller can act on."""

    status = 400

    def __init__(self, message: str, *, field: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if status is not None:
            self.status = status

    def to_dict(self) -> dict[str, object]:
        body: dict[str, object] = {"error": self.message, "status": self.status}
        if self.field is not None:
            body["field"] = self.field
        return body


class UnsupportedConfigError(ApiError):
    """The labelling config has nothing this backend can learn (no ``Choices`` on a ``Text``)."""


class UnknownProjectError(ApiError):
    """A project id we have never seen a config for."""

    status = 404
