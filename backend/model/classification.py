"""Text classification, the first task kind: one ``<Choices>`` bound to one ``<Text value="$field">``,
single choice or ``choice="multiple"``.

A label is the tuple of chosen label names in config order (exactly one for single choice); the
model is the classifier of ``backend/model/classifier.py``; a prediction is one ``choices``
region scored by the top label's probability; control quality is accuracy with a Wilson interval
and macro-F1 with a seeded bootstrap interval.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from backend.errors import UnsupportedConfigError
from backend.model.classifier import TrainedModel, fit_model
from backend.model.task_kind import TaskSpec, num
from selection.metrics import accuracy, as_indicator, bootstrap_interval, macro_f1, wilson_interval
from selection.uncertainty import uncertainty_scores

BOOTSTRAP_RESAMPLES = 1000


class Classification:
    """The :class:`~backend.model.task_kind.TaskKind` of single- and multi-label text classification."""

    name = "classification"
    #: The setting naming a replacement model factory (``LABELQUEUE_CLASSIFIER``).
    estimator_setting = "classifier"
    #: A classifier's probabilities are scored at use, by ``LABELQUEUE_UNCERTAINTY_MEASURE``.
    measure_setting = None
    #: A classifier needs two classes to separate.
    min_label_names = 2

    def spec_of(self, interface: Any) -> TaskSpec | None:
        found = []  # (Choices control, the first Text object it is bound to)
        for control in interface.controls:
            texts = [o for o in control.objects if o.tag.lower() == "text" and str(o.value).startswith("$")]
            if control.tag.lower() == "choices" and texts:
                found.append((control, texts[0]))
        if len(found) > 1:  # the model would learn the first and silently leave the others unlabelled
            names = ", ".join(f"<Choices name=\"{control.name}\"> on <Text name=\"{obj.name}\">"
                              for control, obj in found)
            raise UnsupportedConfigError(
                f"label config has {len(found)} <Choices> controls bound to text ({names}); labelqueue learns "
                "exactly one, so keep one <Choices> or split the project", field="label_config")
        if not found:
            return None
        control, obj = found[0]
        if str(control.attr.get("perRegion", "false")).lower() == "true":
            raise UnsupportedConfigError(
                f"<Choices name=\"{control.name}\"> has perRegion=\"true\": it classifies regions, and labelqueue "
                "classifies whole tasks; remove perRegion", field="label_config")
        return self._spec(control, obj)

    def _spec(self, control: Any, obj: Any) -> TaskSpec:
        labels = tuple(control.labels)
        if len(labels) < 2:
            raise UnsupportedConfigError(
                f"<Choices name=\"{control.name}\"> has {len(labels)} choice(s); at least two are "
                "needed to learn anything", field="label_config")
        choice = str(control.attr.get("choice", "single")).lower()
        return TaskSpec(from_name=control.name, to_name=obj.name, value_key=str(obj.value)[1:], labels=labels,
                        multilabel=choice == "multiple", kind=self.name)

    def labels_of(self, result: list[dict[str, Any]], spec: TaskSpec) -> tuple[str, ...] | None:
        """The config's choices in one annotation or prediction result, in config order; ``None``
        when none is chosen (an empty result is no answer, not a class)."""
        chosen: set[str] = set()
        for region in result:
            if isinstance(region, dict) and region.get("from_name") == spec.from_name:
                value = region.get("value") or {}
                chosen.update(c for c in value.get("choices") or [] if isinstance(c, str))
        ordered = tuple(label for label in spec.labels if label in chosen)
        return (ordered if spec.multilabel else ordered[:1]) or None

    def result_of(self, text: str, target: tuple[str, ...], spec: TaskSpec) -> list[dict[str, Any]]:
        return choices_result(target, spec)

    def fit(self, texts: Sequence[str], targets: Sequence[tuple[str, ...]], spec: TaskSpec, *, version: str,
            estimator: str | None, previous: TrainedModel | None = None, measure: str | None = None) -> TrainedModel:
        """``measure`` is not the model's: a classifier's probabilities are scored at use."""
        return fit_model(texts, targets, labels=spec.labels, multilabel=spec.multilabel, version=version,
                         classifier=estimator, warm_from=previous)

    def predict(self, model: TrainedModel, texts: Sequence[str], spec: TaskSpec,
                measure: str) -> list[dict[str, Any]]:
        proba = model.predict_proba(texts)
        uncertainty = uncertainty_scores(proba, measure=measure, multilabel=spec.multilabel)
        return [prediction(row, u, spec, model.version) for row, u in zip(proba, uncertainty)]

    def predicted(self, model: TrainedModel, texts: Sequence[str]) -> list[tuple[tuple[str, ...], float]]:
        spec = TaskSpec("", "", "", model.labels, model.multilabel)
        return [(tuple(chosen_labels(row, spec)), round(float(np.max(row)), 6)) for row in model.predict_proba(texts)]

    def label_names(self, target: tuple[str, ...]) -> tuple[str, ...]:
        return target

    def effort_units(self, text: str, target: tuple[str, ...]) -> dict[str, int]:
        return {}

    def agreement(self, rated: Sequence[Sequence[tuple[Any, tuple[str, ...]]]]) -> dict[str, Any] | None:
        return None

    def quality(self, pairs: Sequence[tuple[tuple[str, ...], tuple[str, ...]]], labels: Sequence[str],
                rng: np.random.Generator) -> dict[str, Any] | None:
        """Accuracy with a Wilson interval and macro-F1 with a bootstrap interval of (true, predicted) pairs."""
        if not pairs:
            return None
        y_true = as_indicator([t for t, _ in pairs], labels)
        y_pred = as_indicator([p for _, p in pairs], labels)
        correct = int(round(float(accuracy(y_true, y_pred)) * len(pairs)))
        low, high = wilson_interval(correct, len(pairs))
        f1_low, f1_high = bootstrap_interval(y_true, y_pred, macro_f1, rng, n_resamples=BOOTSTRAP_RESAMPLES)
        return {"n": len(pairs), "correct": correct, "accuracy": num(correct / len(pairs)), "low": num(low),
                "high": num(high), "macro_f1": num(float(macro_f1(y_true, y_pred))), "f1_low": num(f1_low),
                "f1_high": num(f1_high)}


def chosen_labels(proba: np.ndarray, spec: TaskSpec) -> list[str]:
    """The labels a prediction selects: the top one, or for multi-label every label at >= 0.5
    (the top one if none reaches it)."""
    top = int(np.argmax(proba))
    if spec.multilabel:
        return [label for label, p in zip(spec.labels, proba) if p >= 0.5] or [spec.labels[top]]
    return [spec.labels[top]]


def choices_result(labels: Sequence[str], spec: TaskSpec) -> list[dict[str, Any]]:
    """The one ``choices`` region of an annotation or prediction choosing ``labels``."""
    return [{"from_name": spec.from_name, "to_name": spec.to_name, "type": "choices",
             "value": {"choices": list(labels)}}]


def prediction(proba: np.ndarray, uncertainty: float, spec: TaskSpec, version: str) -> dict[str, Any]:
    """One task's prediction, in the shape Label Studio stores."""
    return {
        "result": choices_result(chosen_labels(proba, spec), spec),
        "score": round(float(np.max(proba)), 6),
        "model_version": version,
        "uncertainty": round(float(uncertainty), 6),
    }
