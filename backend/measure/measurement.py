"""Per-cycle measurement of the loop, from Label Studio's annotations and the recorded queues.

A *cycle* is one written queue plus the retrain that follows it. For cycle ``k``:

* **labels added** are the labels that cycle ``k``'s model in service was trained on and cycle
  ``k-1``'s was not (recorded when the queue is written), per slice the task was queued in
  (``unqueued`` for labels made outside the queue, e.g. the seed set); their **cost** is the
  annotators' ``lead_time`` on those tasks, all annotations counted (overlap and skips too).
* **control quality** compares what the model in service predicted for cycle ``k``'s control
  items when the queue was written (before anyone labelled them) with the annotators' resolved
  labels: a uniform sample, hence an unbiased estimate of the model on the pool. Accuracy
  carries a Wilson interval, macro-F1 a seeded bootstrap interval.
* **gain per label** is the change in control accuracy since the previous cycle that measured
  it, divided by the labels added in between; **cost per point** is their cost per percentage
  point gained.

A task queued in several cycles belongs to the last one (labelled tasks are never queued
again, so that is the one it was labelled from). Everything here is plain data in, a
:class:`~backend.measure.measurement_record.Measurement` out; ``backend/measure/loop_monitor.py``
does the reading and scheduling.
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from backend.labelstudio.gateway import LabelStudioGateway, annotator_of, resolve_annotations
from backend.labelstudio.task_counters import finished_by
from backend.loop.queue_record import QueuedTask, QueueRecord
from backend.measure.cycles_db import Feedback
from backend.measure.measurement_record import Measurement
from backend.model.labelconfig import KINDS, TaskSpec, kind_of
from backend.model.task_kind import TaskKind, num
from backend.settings import Settings
from selection.agreement import Agreement, agreement
from selection.loop_warnings import CycleSignals, LoopThresholds, loop_warnings
from selection.metrics import (
    as_indicator,
    class_precision_recall,
    cost_per_point,
    gain_per_label,
    wilson_interval,
)

UNQUEUED = "unqueued"
#: The ``source`` of a failure-slice item flagged as a production failure; the slice's other
#: items are neighbours of overridden labels (``"override"``), which are not flagged failures.
FLAGGED = "flagged"
EDGE_SLICES = ("uncertain", "failure")


@dataclass(frozen=True)
class AnnotatedTask:
    """One task as measurement needs it: resolved labels, one rating per annotator, time spent."""

    task_id: int
    labels: tuple[str, ...] | None
    ratings: tuple[tuple[int, tuple[str, ...]], ...]
    #: Distinct annotators who finished it (Label Studio's completion count; skipped not counted).
    completed: int
    annotations: int
    seconds: float
    data: dict[str, Any]
    #: The task in the units its cost is also given per (a sentence's tokens and entities).
    units: dict[str, int] = field(default_factory=dict)


def annotated_task(task: dict[str, Any], spec: TaskSpec) -> AnnotatedTask:
    annotations = task.get("annotations") or []
    usable = [a for a in annotations if not a.get("was_cancelled")]
    latest: dict[int, tuple[str, tuple[str, ...]]] = {}
    for annotation in usable:
        labels = kind_of(spec).labels_of(annotation.get("result") or [], spec)
        who = annotator_of(annotation)
        when = str(annotation.get("updated_at") or annotation.get("created_at") or "")
        if labels is not None and who is not None and when >= latest.get(who, ("", ()))[0]:
            latest[who] = (when, labels)
    labels = resolve_annotations(usable, spec)
    text = (task.get("data") or {}).get(spec.value_key)
    return AnnotatedTask(
        task_id=int(task["id"]), labels=labels,
        ratings=tuple((who, labels) for who, (_, labels) in sorted(latest.items())),
        completed=len(finished_by(annotations, ignore_skipped=False)), annotations=len(annotations),
        seconds=float(sum(a.get("lead_time") or 0.0 for a in annotations)), data=dict(task.get("data") or {}),
        units=kind_of(spec).effort_units(text, labels) if labels is not None and isinstance(text, str) else {})


def read_annotated(gateway: LabelStudioGateway, spec: TaskSpec) -> dict[int, AnnotatedTask]:
    """Every annotated task of the project, by id (one paged read)."""
    return {t.task_id: t for t in (annotated_task(raw, spec) for raw in gateway.annotated_tasks())}


@dataclass(frozen=True)
class CostModel:
    """Label cost: annotator minutes by default, or money at a rate per hour or per label."""

    per_hour: float | None = None
    per_label: float | None = None

    @property
    def unit(self) -> str:
        if self.per_label is not None:
            return "cost (per label)"
        return "cost (annotator time)" if self.per_hour is not None else "annotator minutes"

    def of(self, seconds: float, annotations: int) -> float:
        if self.per_label is not None:
            return annotations * self.per_label
        if self.per_hour is not None:
            return seconds / 3600 * self.per_hour
        return seconds / 60


@dataclass(frozen=True)
class LoopConfig:
    """What measurement takes from settings."""

    cost: CostModel
    limits: LoopThresholds
    failure_classes: tuple[str, ...] = ()
    seed: int = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> LoopConfig:
        return cls(cost=CostModel(settings.cost_per_hour, settings.cost_per_label),
                   limits=LoopThresholds(gain_per_label=settings.gain_threshold / 10_000,
                                         patience=settings.gain_patience, agreement_gap=settings.agreement_gap,
                                         rare_class=settings.rare_class_threshold,
                                         high_impact=settings.high_impact_classes),
                   failure_classes=settings.failure_mode_classes, seed=settings.seed)


def agreement_figures(found: Agreement) -> dict[str, Any]:
    return {"items": found.items, "annotators": found.annotators, "percent": num(found.percent),
            "kappa": num(found.kappa), "kappa_kind": found.kappa_kind}


def rated_agreement(rated: Sequence[Sequence[tuple[Any, Any]]], kind: TaskKind) -> dict[str, Any]:
    """Whole-label agreement and kappa of tasks rated by several annotators, with the task kind's
    own figures beside them (a span project's span F1), so every slice is read the same way."""
    return agreement_figures(agreement(rated)) | (kind.agreement(rated) or {})


def error_rate(wrong: int, n: int) -> dict[str, Any]:
    low, high = wilson_interval(wrong, n)
    return {"n": n, "wrong": wrong, "error": num(wrong / n) if n else None, "low": num(low), "high": num(high)}


def last_item_of(cycles: Sequence[QueueRecord]) -> dict[int, tuple[int, QueuedTask]]:
    """Task id -> (cycle, item) of the last cycle that queued it."""
    found: dict[int, tuple[int, QueuedTask]] = {}
    for record in cycles:
        for item in record.items:
            found[item.task_id] = (record.cycle, item)
    return found


def measure_loop(project_id: int, labels: Sequence[str], cycles: Sequence[QueueRecord],
                 tasks: dict[int, AnnotatedTask], trained: dict[int, int], feedback: Sequence[Feedback],
                 config: LoopConfig, mix_changes: Sequence[dict] = (), kind: TaskKind = KINDS[0]) -> Measurement:
    """The whole measurement of one project (see the module docstring); control quality is the
    task ``kind``'s (the project's, from its config; classification by default)."""
    last = last_item_of(cycles)
    slice_of = {task_id: item.slice for task_id, (_, item) in last.items()}
    added: dict[int, list[int]] = {}
    for task_id, cycle in trained.items():
        added.setdefault(cycle, []).append(task_id)
    rows = [cycle_row(record, labels, tasks, added.get(record.cycle, []), slice_of, last, config, kind)
            for record in cycles]
    add_gains(rows, config.cost)

    rated = {t.task_id: list(t.ratings) for t in tasks.values() if len(t.ratings) >= 2}
    by_slice: dict[str, list] = {}
    for task_id, ratings in rated.items():
        by_slice.setdefault(slice_of.get(task_id, UNQUEUED), []).append(ratings)
    project_agreement = {"overall": rated_agreement(list(rated.values()), kind),
                         "per_slice": {s: rated_agreement(items, kind) for s, items in sorted(by_slice.items())}}

    control_pairs = [pair for row in rows for pair in row.pop("_control_pairs")]
    per_class = Counter(label for t in tasks.values() if t.labels for label in kind.label_names(t.labels))
    named_pairs = [(kind.label_names(t), kind.label_names(p)) for t, p in control_pairs]
    coverage = class_coverage(labels, per_class, named_pairs, config)
    signals = [CycleSignals(cycle=row["cycle"], labels=row["training_labels"],
                            control_accuracy=(row["control"] or {}).get("accuracy"),
                            control_n=(row["control"] or {}).get("n", 0),
                            edge_accuracy=row["edge"]["accuracy"], edge_n=row["edge"]["n"],
                            uncertain_agreement=row["agreement"].get("uncertain", {}).get("percent"))
               for row in rows]
    slice_agreement = project_agreement["per_slice"]
    warnings = loop_warnings(signals, uncertain_agreement=_percent_and_items(slice_agreement.get("uncertain")),
                             control_agreement=_percent_and_items(slice_agreement.get("control")),
                             labels_per_class=dict(per_class), limits=config.limits)
    return Measurement(
        project_id=project_id, measured_at=datetime.now(timezone.utc).isoformat(), labels=tuple(labels),
        cost_unit=config.cost.unit, thresholds=asdict(config.limits), cycles=tuple(rows),
        totals={"cycles": len(rows), "labels": sum(r["labels_added"]["total"] for r in rows),
                "annotations": sum(r["annotations"] for r in rows), "cost": num(sum(r["cost"] for r in rows), 3),
                "cost_per_unit": cost_per_unit(tasks.values(), config.cost)},
        agreement=project_agreement, coverage=coverage,
        failure_modes=failure_modes(labels, named_pairs, rows, config),
        production=tuple(production_errors(rows, feedback)), warnings=tuple(asdict(w) for w in warnings),
        mix_changes=tuple(mix_changes))


def cost_per_unit(tasks: Iterable[AnnotatedTask], cost: CostModel) -> dict[str, Any]:
    """The cost of one token and of one entity labelled (for a span project; empty for a
    classification, whose unit is the label): every labelled task's annotation time over the
    units it holds, over the tasks whose annotators reported a ``lead_time``."""
    timed = [t for t in tasks if t.units and t.seconds > 0]
    spent = cost.of(sum(t.seconds for t in timed), sum(t.annotations for t in timed))
    totals = Counter()
    for task in timed:
        totals.update(task.units)
    return {unit: {"n": n, "tasks": len(timed), "cost": num(spent / n, 4)} for unit, n in sorted(totals.items()) if n}


def _percent_and_items(figures: dict | None) -> tuple[float, int]:
    if not figures or figures["percent"] is None:
        return (math.nan, 0)
    return (figures["percent"], figures["items"])


def cycle_row(record: QueueRecord, labels: Sequence[str], tasks: dict[int, AnnotatedTask], added: list[int],
              slice_of: dict[int, str], last: dict[int, tuple[int, QueuedTask]], config: LoopConfig,
              kind: TaskKind) -> dict[str, Any]:
    """One cycle's figures; ``added`` are the labels its model was the first to be trained on."""
    spent = [tasks[t] for t in added if t in tasks]
    measured: dict[str, list] = {}
    flagged: list = []
    rated: dict[str, list] = {}
    for item in record.items:
        task = tasks.get(item.task_id)
        if task is None or last[item.task_id][0] != record.cycle:
            continue
        if task.labels is not None and item.predicted is not None:
            measured.setdefault(item.slice, []).append((task.labels, item.predicted))
            if item.slice == "failure" and item.reason.get("source") == FLAGGED:
                flagged.append((task.labels, item.predicted))
        if len(task.ratings) >= 2:
            rated.setdefault(item.slice, []).append(list(task.ratings))
    rng = np.random.default_rng([config.seed, record.cycle])
    control_pairs = measured.get("control", [])
    edge = [pair for s in EDGE_SLICES for pair in measured.get(s, [])]
    return {
        "cycle": record.cycle, "model_version": record.model_version, "created_at": record.created_at,
        "training_labels": record.labelled, "queued": record.counts, "mix": record.mix,
        "labels_added": {"total": len(added), "per_slice": dict(Counter(slice_of.get(t, UNQUEUED) for t in added))},
        "annotations": sum(t.annotations for t in spent),
        "cost": num(config.cost.of(sum(t.seconds for t in spent), sum(t.annotations for t in spent)), 3),
        "control": kind.quality(control_pairs, labels, rng),
        "slices": {s: {"n": len(p), "accuracy": _accuracy(p)} for s, p in sorted(measured.items())},
        "edge": {"n": len(edge), "accuracy": _accuracy(edge)},
        "flagged": {"n": len(flagged), "accuracy": _accuracy(flagged)},
        "agreement": {s: rated_agreement(items, kind) for s, items in sorted(rated.items())},
        "_control_pairs": control_pairs,
    }


def _accuracy(pairs: Sequence[tuple[tuple[str, ...], tuple[str, ...]]]) -> float | None:
    return num(sum(set(t) == set(p) for t, p in pairs) / len(pairs)) if pairs else None


def add_gains(rows: list[dict[str, Any]], cost: CostModel) -> None:
    """Gain per label and cost per point since the previous cycle that measured control quality."""
    previous: dict[str, Any] | None = None
    labels, spent = 0, 0.0
    for row in rows:
        labels += row["labels_added"]["total"]
        spent += row["cost"]
        current = row["control"]
        row.update(gain_per_label=None, gain_points_per_100=None, cost_per_point=None, gain_since=None,
                   labels_since=None, cost_since=None)
        if current is None:
            continue
        if previous is not None:
            before = previous["control"]["accuracy"]
            gain = gain_per_label(before, current["accuracy"], labels)
            row.update(gain_per_label=num(gain, 8), gain_points_per_100=num(gain * 10_000 if gain is not None else None, 3),
                       cost_per_point=num(cost_per_point(spent, before, current["accuracy"]), 3),
                       gain_since=previous["cycle"], labels_since=labels, cost_since=num(spent, 3))
        previous, labels, spent = row, 0, 0.0


def class_coverage(labels: Sequence[str], per_class: Counter, control_pairs: Sequence, config: LoopConfig) -> dict:
    """Labels per class, classes below the threshold, and recall per class on control (all cycles pooled).

    ``per_class`` and ``control_pairs`` hold label names (``TaskKind.label_names``): for spans,
    annotated entities per type, and recall of "the sentence has an entity of this type" (the
    entity-level recall per type is in the control quality's ``per_type``)."""
    recall = support = None
    if control_pairs:
        _, recall, support = class_precision_recall(as_indicator([t for t, _ in control_pairs], labels),
                                                    as_indicator([p for _, p in control_pairs], labels))
    high_impact = set(config.limits.high_impact)
    return {
        "threshold": config.limits.rare_class,
        "classes": [{"label": label, "labels": per_class.get(label, 0), "high_impact": label in high_impact,
                     "below_threshold": per_class.get(label, 0) < config.limits.rare_class,
                     "control_support": int(support[j]) if support is not None else 0,
                     "control_recall": num(recall[j]) if recall is not None else None}
                    for j, label in enumerate(labels)],
        "unknown_high_impact": sorted(high_impact - set(labels)),
    }


def failure_modes(labels: Sequence[str], control_pairs: Sequence, rows: Sequence[dict], config: LoopConfig) -> dict:
    """Precision and recall on control for the failure-mode classes, and how often the model in
    service already got flagged failure items right before they were labelled (flagged ones
    only: override neighbours share the failure slice but were never flagged)."""
    chosen = [label for label in config.failure_classes if label in labels]
    classes = []
    if control_pairs and chosen:
        precision, recall, support = class_precision_recall(as_indicator([t for t, _ in control_pairs], labels),
                                                            as_indicator([p for _, p in control_pairs], labels))
        classes = [{"label": label, "precision": num(precision[j]), "recall": num(recall[j]), "support": int(support[j])}
                   for j, label in enumerate(labels) if label in chosen]
    flagged = [(r["cycle"], r["flagged"]) for r in rows if r["flagged"]["n"]]
    n = sum(f["n"] for _, f in flagged)
    right = sum(round(f["accuracy"] * f["n"]) for _, f in flagged)
    return {"classes": classes, "configured": list(config.failure_classes),
            "unknown": sorted(set(config.failure_classes) - set(labels)),
            "flagged": {"n": n, "accuracy": num(right / n) if n else None,
                        "per_cycle": [{"cycle": c, **f} for c, f in flagged]}}


def production_errors(rows: Sequence[dict], feedback: Iterable[Feedback]) -> list[dict[str, Any]]:
    """Per model version: disagreement with annotators on control items, and error on feedback."""
    control: dict[str, list[int]] = {}
    for row in rows:
        if row["model_version"] and row["control"]:
            counts = control.setdefault(row["model_version"], [0, 0])
            counts[0] += row["control"]["n"] - row["control"]["correct"]
            counts[1] += row["control"]["n"]
    reported: dict[str, list[int]] = {}
    for item in feedback:
        counts = reported.setdefault(item.model_version, [0, 0])
        counts[0] += item.wrong
        counts[1] += 1
    versions = list(dict.fromkeys([r["model_version"] for r in rows if r["model_version"]] + list(reported)))
    return [{"model_version": v, "control": error_rate(*control.get(v, [0, 0])),
             "feedback": error_rate(*reported.get(v, [0, 0]))} for v in versions]
