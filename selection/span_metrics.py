"""Figures of span labelling: entity-level scores, annotator agreement, coverage and cost.

Spans are ``(start, end, label)`` tuples in character offsets; a predicted span counts only when
start, end and type all equal an annotated one ("exact match", CoNLL's and seqeval's default
entity-level scoring: on BIO tags of a shared tokenisation the two give identical figures, see
the tests). Plain Python and numpy, no Label Studio: tasks in, numbers out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from itertools import combinations

import numpy as np

__all__ = ["entity_f1_interval", "entity_scores", "pairwise_span_agreement", "type_coverage"]

Span = tuple[int, int, str]
SpanSet = Sequence[Span]


def _prf(tp: int, n_pred: int, n_true: int) -> dict[str, float | int]:
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_true if n_true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "support": n_true, "predicted": n_pred}


def entity_scores(pairs: Iterable[tuple[SpanSet, SpanSet]]) -> dict[str, object]:
    """Exact-match entity precision / recall / F1 of ``(annotated, predicted)`` span sets.

    Returns ``{"micro": {...}, "per_type": {label: {...}}, "macro_f1": float}``; ``macro_f1``
    averages the types that occur in the annotations. A sentence where both sides are empty
    adds nothing.
    """
    tp: Counter[str] = Counter()
    n_true: Counter[str] = Counter()
    n_pred: Counter[str] = Counter()
    for annotated, predicted in pairs:
        truth, guess = set(map(tuple, annotated)), set(map(tuple, predicted))
        n_true.update(s[2] for s in truth)
        n_pred.update(s[2] for s in guess)
        tp.update(s[2] for s in truth & guess)
    types = sorted(set(n_true) | set(n_pred))
    per_type = {t: _prf(tp[t], n_pred[t], n_true[t]) for t in types}
    supported = [per_type[t]["f1"] for t in types if n_true[t]]
    return {"micro": _prf(sum(tp.values()), sum(n_pred.values()), sum(n_true.values())),
            "per_type": per_type, "macro_f1": float(np.mean(supported)) if supported else 0.0}


def entity_f1_interval(pairs: Sequence[tuple[SpanSet, SpanSet]], rng: np.random.Generator, *,
                       n_resamples: int = 1000, confidence: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of micro entity F1, resampling sentences; NaNs without pairs.

    Micro F1 is ``2 tp / (predicted + annotated)`` summed over sentences, so each resample is a
    weighted sum of per-sentence counts: one matrix product for all resamples.
    """
    if not pairs:
        return (float("nan"), float("nan"))
    counts = np.array([(len(set(map(tuple, t)) & set(map(tuple, p))), len(set(map(tuple, t))) + len(set(map(tuple, p))))
                       for t, p in pairs], dtype=np.float64)
    rows = rng.integers(0, len(pairs), size=(n_resamples, len(pairs)))
    weights = np.apply_along_axis(np.bincount, 1, rows, minlength=len(pairs))
    tp, total = (weights @ counts).T
    f1 = np.where(total > 0, 2 * tp / np.maximum(total, 1), np.nan)
    f1 = f1[~np.isnan(f1)]
    if f1.size == 0:
        return (float("nan"), float("nan"))
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(f1, [tail, 100 - tail])
    return (float(low), float(high))


def pairwise_span_agreement(ratings: Iterable[Sequence[tuple[Hashable, SpanSet]]]) -> dict[str, float | int]:
    """Exact-match span F1 between annotators, over every pair rating the same task.

    ``ratings`` holds, per task, ``(annotator, spans)`` for each annotator who labelled it. F1
    between two annotators is symmetric (either can be the reference). Pooled over pairs:
    ``2 * matched / (spans of a + spans of b)``. ``pairs`` counts annotator pairs, ``tasks`` the
    tasks with at least one pair; F1 is NaN without pairs.
    """
    matched = total = pairs = tasks = 0
    for task in ratings:
        if len(task) < 2:
            continue
        tasks += 1
        for (_, a), (_, b) in combinations(task, 2):
            sa, sb = set(map(tuple, a)), set(map(tuple, b))
            matched += len(sa & sb)
            total += len(sa) + len(sb)
            pairs += 1
    f1 = 2 * matched / total if total else (1.0 if pairs else float("nan"))
    return {"f1": f1, "pairs": pairs, "tasks": tasks}


def type_coverage(labels: Sequence[str], labelled: Iterable[SpanSet]) -> dict[str, int]:
    """Annotated spans per entity type, every configured type listed (0 where none yet)."""
    counts = Counter(s[2] for spans in labelled for s in spans)
    return {label: int(counts.get(label, 0)) for label in labels}
