"""From per-cycle records to per-strategy summaries: AULC, labels to target, noise, timings.

Every summary is computed per benchmark seed first and then averaged, so the spread reported
is the spread across seeds (sample standard deviation, ``ddof=1``). Comparisons between two
strategies are *paired* by seed: both started from the same seed set and the same annotator
draws, so the per-seed difference removes most seed-to-seed variation.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Curve:
    """One strategy's learning curve for one seed and annotator."""

    labels: np.ndarray
    accuracy: np.ndarray
    macro_f1: np.ndarray
    noise_rate: float
    select_seconds: np.ndarray
    fit_seconds: np.ndarray


def curves(records: list[dict]) -> dict[tuple[str, str], dict[int, Curve]]:
    """Group records into ``{(annotator, strategy): {seed: Curve}}``."""
    grouped: dict[tuple[str, str, int], list[dict]] = defaultdict(list)
    for record in records:
        grouped[record["annotator"], record["strategy"], record["seed"]].append(record)
    out: dict[tuple[str, str], dict[int, Curve]] = defaultdict(dict)
    for (annotator, strategy, seed), rows in grouped.items():
        rows.sort(key=lambda r: r["cycle"])
        out[annotator, strategy][seed] = Curve(
            labels=np.array([r["labels"] for r in rows], dtype=float),
            accuracy=np.array([r["accuracy"] for r in rows]),
            macro_f1=np.array([r["macro_f1"] for r in rows]),
            noise_rate=float(rows[-1]["noise_rate"]),
            select_seconds=np.array([r["select_seconds"] for r in rows if "select_seconds" in r]),
            fit_seconds=np.array([r["fit_seconds"] for r in rows]),
        )
    return dict(out)


def aulc(labels: np.ndarray, values: np.ndarray) -> float:
    """Area under the learning curve divided by its label range: the curve's mean height."""
    if len(labels) < 2:
        return float(values[0])
    return float(np.trapezoid(values, labels) / (labels[-1] - labels[0]))


def labels_to_reach(labels: np.ndarray, values: np.ndarray, target: float) -> float | None:
    """Labels at which the curve first reaches ``target``; ``None`` if it never does.

    Interpolated linearly between the last evaluated point below the target and the first at
    or above it, so the answer is not rounded up to a whole batch.
    """
    reached = np.flatnonzero(values >= target)
    if not len(reached):
        return None
    i = int(reached[0])
    if i == 0 or values[i] == values[i - 1]:
        return float(labels[i])
    share = (target - values[i - 1]) / (values[i] - values[i - 1])
    return float(labels[i - 1] + share * (labels[i] - labels[i - 1]))


@dataclass
class Stat:
    """Mean and sample spread across seeds, keeping the per-seed values for paired tests."""

    values: dict[int, float]

    @property
    def mean(self) -> float:
        return float(np.mean(list(self.values.values())))

    @property
    def std(self) -> float:
        vals = list(self.values.values())
        return float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0


@dataclass
class Summary:
    """Per-strategy summary for one annotator."""

    strategy: str
    aulc_accuracy: Stat
    aulc_f1: Stat
    final_accuracy: Stat
    final_f1: Stat
    noise_rate: Stat
    reach: dict[float, dict[int, float | None]] = field(default_factory=dict)
    select_seconds: np.ndarray = field(default_factory=lambda: np.zeros(0))
    fit_seconds: np.ndarray = field(default_factory=lambda: np.zeros(0))


def summarise(by_seed: dict[int, Curve], strategy: str, targets: dict[float, float]) -> Summary:
    """Summary of one strategy; ``targets`` maps a fraction (0.95) to an accuracy to reach."""
    return Summary(
        strategy=strategy,
        aulc_accuracy=Stat({s: aulc(c.labels, c.accuracy) for s, c in by_seed.items()}),
        aulc_f1=Stat({s: aulc(c.labels, c.macro_f1) for s, c in by_seed.items()}),
        final_accuracy=Stat({s: float(c.accuracy[-1]) for s, c in by_seed.items()}),
        final_f1=Stat({s: float(c.macro_f1[-1]) for s, c in by_seed.items()}),
        noise_rate=Stat({s: c.noise_rate for s, c in by_seed.items()}),
        reach={fraction: {s: labels_to_reach(c.labels, c.accuracy, target)
                          for s, c in by_seed.items()}
               for fraction, target in targets.items()},
        select_seconds=np.concatenate([c.select_seconds for c in by_seed.values()]),
        fit_seconds=np.concatenate([c.fit_seconds for c in by_seed.values()]),
    )


def paired_difference(a: Stat, b: Stat) -> Stat:
    """Per-seed ``a - b`` over the seeds both have."""
    return Stat({s: a.values[s] - b.values[s] for s in a.values if s in b.values})


def mean_curve(by_seed: dict[int, Curve], metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, mean and std of ``metric`` across seeds (curves share their label grid)."""
    stacked = np.stack([getattr(c, metric) for c in by_seed.values()])
    labels = next(iter(by_seed.values())).labels
    std = stacked.std(axis=0, ddof=1) if len(stacked) > 1 else np.zeros(stacked.shape[1])
    return labels, stacked.mean(axis=0), std
