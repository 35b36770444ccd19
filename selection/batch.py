"""Compose the next batch to label: four slices, filled in a fixed order, then interleaved.

This is the one entry point the backend calls after scoring the pool. Fill order is
control, failure, uncertain, diverse, each excluding what earlier slices took:

* control first, from the whole selectable pool, so it cannot depend on model scores;
* failure next, because known mistakes are the scarcest signal;
* uncertain, then diverse last, because its coverage greedy can measure distance to
  everything already in the batch and fill whatever is left, so the batch size is always met.

Without an explicit ``mix`` the shares follow :func:`selection.mix.scheduled_mix`: more
coverage while there are few labels per class, more uncertainty later.

Every random choice uses its own generator spawned from ``seed``, so a batch can be replayed
and a change to one slice's inputs does not shift another slice's draws.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from selection.control import select_control
from selection.diversity import select_diverse
from selection.errors import DuplicateTaskIdError, EmptyPoolError, InvalidTuningError
from selection.failure import accepted_overrides, failure_candidates, nominal_failure_count
from selection.interleave import interleave, spread
from selection.mix import SLICES, SliceMix, allocate, redistribute, scheduled_mix
from selection.pool import LabelledSet, Pool, selectable_rows
from selection.uncertain import band_edge, select_uncertain
from selection.uncertainty import uncertainty_scores

__all__ = ["Batch", "BatchItem", "LabelledSet", "Pool", "Tuning", "compose_batch"]

logger = logging.getLogger(__name__)

#: Every batch has a control item among its first this many ranks (annotators who label only
#: the start of a batch still measure the loop); the rest are spread evenly.
CONTROL_WITHIN = 10


@dataclass(frozen=True)
class Tuning:
    """Knobs of the individual slices; the defaults suit text pools up to ~1M items.

    Attributes
    ----------
    band_factor : float
        Uncertain band width as a multiple of the uncertain slot count (>= 1).
    duplicate_similarity : float
        Cosine similarity above which two uncertain picks count as near duplicates.
    max_diverse_candidates : int
        Pool rows the diverse slice searches (seeded subsample beyond this).
    max_labelled : int
        Labelled items the diverse slice measures coverage against.
    max_failure_candidates : int
        Pool rows scanned for neighbours of overridden items.
    max_overrides : int
        Overridden items used as failure references.
    """

    band_factor: float = 3.0
    duplicate_similarity: float = 0.95
    max_diverse_candidates: int = 20_000
    max_labelled: int = 5_000
    max_failure_candidates: int = 100_000
    max_overrides: int = 256

    def __post_init__(self) -> None:
        if not self.band_factor >= 1.0:
            raise InvalidTuningError(
                f"band_factor must be >= 1 (1 = plain top-k); got {self.band_factor}"
            )
        if not -1.0 <= self.duplicate_similarity:
            raise InvalidTuningError(
                "duplicate_similarity is a cosine similarity threshold and must be >= -1; "
                f"got {self.duplicate_similarity} (use a value above 1 to turn suppression off)"
            )
        for name in (
            "max_diverse_candidates",
            "max_labelled",
            "max_failure_candidates",
            "max_overrides",
        ):
            if getattr(self, name) < 1:
                raise InvalidTuningError(f"{name} must be >= 1; got {getattr(self, name)}")


@dataclass(frozen=True)
class BatchItem:
    """One queued task: which slice chose it, its queue position, and why (JSON-ready)."""

    task_id: int
    slice: str
    rank: int
    reason: dict


@dataclass(frozen=True)
class Batch:
    """The composed queue, ranked 1..N, and how many items each slice contributed."""

    items: list[BatchItem]
    counts: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Plain dict for JSON: ``{"items": [...], "counts": {...}}``."""
        return {"items": [asdict(item) for item in self.items], "counts": dict(self.counts)}


def compose_batch(
    pool: Pool,
    labelled: LabelledSet,
    *,
    flagged: Sequence[int] = (),
    exclude: Sequence[int] = (),
    size: int = 100,
    mix: SliceMix | None = None,
    seed: int = 0,
    measure: str = "margin",
    tuning: Tuning = Tuning(),
) -> Batch:
    """Choose and order the next ``min(size, selectable)`` tasks to label.

    Parameters
    ----------
    pool : Pool
        Unlabelled candidates with model probabilities and embeddings, n rows.
    labelled : LabelledSet
        Labelled items (m rows); never selected, used for coverage and overrides.
    flagged : sequence of int
        Task ids flagged as production failures; only selectable ones count.
    exclude : sequence of int
        Task ids already queued or otherwise off-limits.
    size : int
        Requested batch size, >= 0.
    mix : SliceMix, optional
        Target share of each slice; :func:`selection.mix.allocate` documents the rounding
        and how unfillable slots move between slices. ``None`` (default) follows
        :func:`selection.mix.scheduled_mix` for ``len(labelled.task_ids)`` labels over
        ``pool.proba.shape[1]`` classes.
    seed : int
        Seed for every random choice; equal inputs and seed give an equal batch.
    measure : {"margin", "entropy", "least_confidence"}
        Uncertainty measure for the uncertain slice.
    tuning : Tuning
        Per-slice knobs.

    Returns
    -------
    Batch
        Items ranked 1..N with slices interleaved so every prefix carries roughly the mix.

    Raises
    ------
    EmptyPoolError
        If no pool task is selectable.
    InvalidArrayError, DuplicateTaskIdError, UnknownMeasureError, ValueError
        On malformed input, naming the offending argument.
    """
    if size < 0:
        raise ValueError(f"size must be >= 0; got {size}")
    scores = uncertainty_scores(pool.proba, measure, multilabel=pool.multilabel)
    rows = selectable_rows(pool, labelled, exclude)
    if len(rows) == 0:
        raise EmptyPoolError(
            f"nothing to select: all {len(pool.task_ids)} pool tasks are labelled or excluded"
        )
    ids = pool.task_ids[rows]
    repeated = ids[1:][np.diff(ids) == 0]
    if len(repeated):
        raise DuplicateTaskIdError(
            f"pool.task_ids repeats task id(s) {sorted(set(repeated.tolist()))[:5]}; "
            "each task may appear once"
        )
    if mix is None:
        mix = scheduled_mix(len(labelled.task_ids), pool.proba.shape[1])
    control_rng, failure_rng, uncertain_rng, diverse_rng = (
        np.random.default_rng(child) for child in np.random.SeedSequence(seed).spawn(4)
    )

    n = len(rows)
    planned = nominal_failure_count(ids, rows, flagged, labelled.overridden, size)
    counts = allocate(
        mix, size, {"uncertain": n, "diverse": n, "failure": min(planned, n), "control": n}
    )
    failures = failure_candidates(
        ids,
        rows,
        pool.embeddings,
        flagged,
        labelled.task_ids,
        labelled.embeddings,
        accepted_overrides(labelled.overridden, labelled.labels, None if pool.multilabel else labelled.proba),
        size,
        failure_rng,
        max_candidates=tuning.max_failure_candidates,
        max_overrides=tuning.max_overrides,
        scores=scores,
        unsure=band_edge(scores[rows], counts["uncertain"] or min(size, n), tuning.band_factor),
        max_similarity=tuning.duplicate_similarity,
    )
    total = min(size, n)
    taken = np.zeros(len(pool.task_ids), dtype=bool)
    picked: dict[str, list[tuple[int, dict]]] = {}

    control_ids = select_control(ids, counts["control"], control_rng)
    picked["control"] = [
        (int(row), {"draw": "uniform"}) for row in rows[np.searchsorted(ids, control_ids)]
    ]
    taken[[row for row, _ in picked["control"]]] = True

    picked["failure"] = [item for item in failures if not taken[item[0]]][: counts["failure"]]
    taken[[row for row, _ in picked["failure"]]] = True
    extra = redistribute(
        mix, counts["failure"] - len(picked["failure"]), {"uncertain": n, "diverse": n}
    )

    free = rows[~taken[rows]]
    picked["uncertain"] = select_uncertain(
        scores[free],
        free,
        pool.embeddings,
        counts["uncertain"] + extra["uncertain"],
        uncertain_rng,
        band_factor=tuning.band_factor,
        max_similarity=tuning.duplicate_similarity,
    )
    taken[[row for row, _ in picked["uncertain"]]] = True

    free = rows[~taken[rows]]
    picked["diverse"] = select_diverse(
        pool.embeddings,
        free,
        labelled.embeddings,
        np.flatnonzero(taken),
        total - sum(len(items) for items in picked.values()),
        diverse_rng,
        scores=scores,
        max_candidates=tuning.max_diverse_candidates,
        max_labelled=tuning.max_labelled,
    )

    ordered = spread(interleave({name: picked[name] for name in SLICES}), "control", CONTROL_WITHIN)
    items = [
        BatchItem(task_id=int(pool.task_ids[row]), slice=name, rank=rank, reason=reason)
        for rank, (name, (row, reason)) in enumerate(ordered, start=1)
    ]
    final_counts = {name: len(picked[name]) for name in SLICES}
    logger.debug("composed batch of %d from %d selectable: %s", len(items), n, final_counts)
    return Batch(items=items, counts=final_counts)
