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
from selection.mix import COLD_MIX, SLICES, WARM_MIX, SliceMix, allocate, scheduled_mix
from selection.pool import LabelledSet, Pool
from selection.uncertainty import MEASURES, uncertainty_scores

__all__ = [
    "MEASURES",
    "COLD_MIX",
    "SLICES",
    "WARM_MIX",
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
    "scheduled_mix",
    "uncertainty_scores",
]
