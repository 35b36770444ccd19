"""Agreement among labellers on tasks that two or more of them labelled.

Ratings arrive as ``(annotator, category)`` pairs per item, categories being anything
hashable (a label, or a tuple of labels for multi-label tasks, compared as a whole). The
kappa is chosen by who rated: Cohen's kappa when the same two annotators rated every item
(it keeps track of each annotator's own label frequencies), Fleiss' kappa otherwise (any
number of annotators, who may differ from item to item).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from selection.metrics import cohens_kappa, fleiss_kappa, percent_agreement, rating_counts

__all__ = ["Agreement", "agreement"]

Rating = tuple[Hashable, Hashable]


@dataclass(frozen=True)
class Agreement:
    """Agreement over ``items`` tasks with two or more ratings; nan figures when ``items`` is 0."""

    items: int
    annotators: int
    percent: float
    kappa: float
    kappa_kind: str  # "cohen" | "fleiss" | "none"


def agreement(items: Sequence[Sequence[Rating]]) -> Agreement:
    """Percent agreement and kappa over the items rated at least twice; others are ignored."""
    rated = [list(item) for item in items if len(item) >= 2]
    if not rated:
        return Agreement(0, 0, math.nan, math.nan, "none")
    annotators = {who for item in rated for who, _ in item}
    categories = {c: i for i, c in enumerate(dict.fromkeys(c for item in rated for _, c in item))}
    counts = rating_counts([[categories[c] for _, c in item] for item in rated], len(categories))
    percent = percent_agreement(counts)
    pairs_by_same_two = len(annotators) == 2 and all(len({who for who, _ in item}) == 2 for item in rated)
    if pairs_by_same_two:
        first, second = sorted(annotators, key=str)
        by_rater = [dict(item) for item in rated]
        kappa = cohens_kappa([categories[r[first]] for r in by_rater], [categories[r[second]] for r in by_rater])
        return Agreement(len(rated), 2, percent, kappa, "cohen")
    return Agreement(len(rated), len(annotators), percent, fleiss_kappa(counts), "fleiss")
