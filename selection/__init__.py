"""Choosing the next batch to label: arrays in, decisions out.

Pure numpy; nothing here imports Flask or the Label Studio SDK. The backend scores the pool,
builds a :class:`Pool` and a :class:`LabelledSet`, and calls :func:`compose_batch`.
"""

from selection.batch import Batch, BatchItem, Tuning, compose_batch
from selection.errors import (
    DuplicateTaskIdError,
    EmptyPoolError,
    InvalidArrayError,
    InvalidMixError,
    InvalidTuningError,
    SelectionError,
    UnknownMeasureError,
)
from selection.mix import SLICES, SliceMix, allocate
from selection.pool import LabelledSet, Pool
from selection.uncertainty import MEASURES, uncertainty_scores

__all__ = [
    "MEASURES",
    "SLICES",
    "Batch",
    "BatchItem",
    "DuplicateTaskIdError",
    "EmptyPoolError",
    "InvalidArrayError",
    "InvalidMixError",
    "InvalidTuningError",
    "LabelledSet",
    "Pool",
    "SelectionError",
    "SliceMix",
    "Tuning",
    "UnknownMeasureError",
    "allocate",
    "compose_batch",
    "uncertainty_scores",
]
