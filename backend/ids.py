"""The one rule for a Label Studio project id, shared by the HTTP edge and the on-disk store.

Label Studio's ids are 32-bit database keys, so a project id is an integer from 1 to
``2**31 - 1``; written as text it is ASCII digits only (``str.isdigit`` also accepts ``²`` and
other Unicode digits, which ``int()`` then reads or rejects inconsistently). The edge uses
:func:`parse_project_id` to refuse a bad id with a 4xx; the store calls
:func:`require_project_id` again so that no caller, however deep, can reach the disk with one.
"""
from __future__ import annotations

MAX_PROJECT_ID = 2**31 - 1


class InvalidProjectId(ValueError):
    """A project id outside ``1..2**31-1`` or not written in ASCII digits."""

    def __init__(self, raw: object):
        super().__init__(f"project id must be an integer from 1 to {MAX_PROJECT_ID}; got {str(raw)[:40]!r}")
        self.raw = raw


def valid_project_id(value: object) -> bool:
    """True for an ``int`` (not ``bool``) in range, or a string of at most 10 ASCII digits in range."""
    if isinstance(value, str):
        if not (value.isascii() and value.isdigit() and len(value) <= 10):
            return False
        value = int(value)
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_PROJECT_ID


def parse_project_id(value: object) -> int:
    """The id as an ``int``, or :class:`InvalidProjectId`."""
    if not valid_project_id(value):
        raise InvalidProjectId(value)
    return int(value)  # type: ignore[arg-type]


def require_project_id(value: int) -> int:
    """The store's guard: ``value`` itself if it is a valid id, else :class:`InvalidProjectId`."""
    if isinstance(value, str) or not valid_project_id(value):
        raise InvalidProjectId(value)
    return value
