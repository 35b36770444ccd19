"""Errors of the HTTP edge itself: a request we refuse, or a project we cannot answer for.

Raised only by ``backend/web/`` (request bodies, ids, routes); ``app.py`` turns them, and the
domain errors of ``backend/errors.py``, into 4xx JSON answers.
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


class UnknownProjectError(ApiError):
    """A project id we have never seen a config for, or with nothing of the kind asked for yet."""

    status = 404
