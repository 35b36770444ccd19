"""Domain errors: a value from a caller that the backend cannot use, named by its field.

Deeper modules (config parsing, per-project options, ``/predict``'s tasks, ``/setup``'s host)
raise these and know nothing of HTTP; only the HTTP edge (``backend/web/app.py``) turns them into
a 4xx JSON answer naming ``field``, so no handler ever leaks a traceback to Label Studio.
"""
from __future__ import annotations


class InvalidInputError(Exception):
    """A value we refuse, with the field it came from and a message the caller can act on.

    Not a ``ValueError``: the edge's request models (pydantic) would wrap a ``ValueError`` raised
    by a field's parser into their own error and lose the field and the wording."""

    def __init__(self, message: str, *, field: str):
        super().__init__(message)
        self.message = message
        self.field = field


class UnsupportedConfigError(InvalidInputError):
    """The labelling config has nothing this backend can learn (no ``Choices`` on a ``Text``)."""


class InvalidOptionError(InvalidInputError):
    """A per-project option in the model connection's extra params is out of range or malformed."""


class InvalidTasksError(InvalidInputError):
    """Tasks sent for prediction are not a list of task objects carrying the config's text."""


class TooManyTasksError(InvalidTasksError):
    """More tasks in one prediction request than ``LABELQUEUE_MAX_TASKS_PER_PREDICT``."""


class HostNotAllowedError(InvalidInputError):
    """A Label Studio host sent to ``/setup`` that the admin did not allow."""
