"""Named exceptions raised by the selection library.

Every error a caller can fix carries a message that says what to change. They all derive
from :class:`SelectionError` so a caller can catch every one of them in one place, and the
input errors also derive from :class:`ValueError` so plain ``except ValueError``
code keeps working.
"""

from __future__ import annotations


class SelectionError(Exception):
    """Base class for every error raised by :mod:`selection`."""


class UnknownMeasureError(SelectionError, ValueError):
    """An uncertainty measure name that is not one of ``uncertainty.MEASURES``."""


class InvalidMixError(SelectionError, ValueError):
    """Slice shares that are out of range, unknown, or do not sum to 1."""


class InvalidTuningError(SelectionError, ValueError):
    """A slice knob outside its meaningful range (see ``selection.batch.Tuning``)."""


class InvalidArrayError(SelectionError, ValueError):
    """An input array with the wrong number of dimensions, length or dtype."""


class DuplicateTaskIdError(SelectionError, ValueError):
    """The same task id appears twice in a pool, so a batch could hold it twice."""


class EmptyPoolError(SelectionError):
    """Nothing is selectable: every pool task is labelled, excluded, or the pool is empty."""
