"""Span labelling (entity extraction), the second task kind: one ``<Labels>`` bound to one
``<Text value="$field">``, one label per span, spans not overlapping.

A label is the tuple of an annotation's spans ``(start, end, label)`` in character offsets,
sorted; the model is the tagger of ``backend/model/span_model.py``; a prediction is one
``labels`` region per predicted entity, each with its own ``score`` (the least confident of its
tokens' marginals), a task-level ``score`` (the probability that the whole best path is right)
and our ``uncertainty``; control quality is exact-match entity precision / recall / F1, overall
and per type, with a seeded bootstrap interval over sentences.

Refused, with the reason: several ``<Labels>`` on one text (one tagger predicts one tag per
token), ``<Labels choice="multiple">`` (several types on one span), fewer than one label, and
``<Labels>`` bound to anything but ``<Text>`` (HyperText offsets are DOM paths, not characters).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from backend.errors import UnsupportedConfigError
from backend.model.span_model import DEFAULT_SEQUENCE_MEASURE, SpanModel, TaggedSentence, fit_span_model
from backend.model.span_tokens import Span, tag_runs, tokenize
from backend.model.task_kind import TaskSpec, num
from selection.metrics import wilson_interval
from selection.span_metrics import entity_f1_interval, entity_scores, pairwise_span_agreement

BOOTSTRAP_RESAMPLES = 1000


class Spans:
    """The :class:`~backend.model.task_kind.TaskKind` of span labelling (NER, slot filling)."""

    name = "spans"
    #: The setting naming a replacement model factory (``LABELQUEUE_SPAN_TAGGER``).
    estimator_setting = "span_tagger"
    #: A span model scores by one sequence measure everywhere, so it is fixed when it is fitted
    #: (``LABELQUEUE_SPAN_UNCERTAINTY_MEASURE``): the pool may be scored on RQ workers.
    measure_setting = "span_uncertainty_measure"
    #: One entity type is enough: the tagger learns it against the words outside every span.
    min_label_names = 1

    def spec_of(self, interface: Any) -> TaskSpec | None:
        controls = [c for c in interface.controls if c.tag.lower() == "labels"]
        if not controls:
            return None
        if len(controls) > 1:
            raise UnsupportedConfigError(
                f"label config has {len(controls)} <Labels> controls "
                f"({', '.join(c.name for c in controls)}); one tagger serves one <Labels> on one <Text>",
                field="label_config")
        control = controls[0]
        objects = [o for o in control.objects if o.tag.lower() == "text" and str(o.value).startswith("$")]
        if len(objects) != 1:
            found = ", ".join(f"<{o.tag}>" for o in control.objects) or "nothing"
            raise UnsupportedConfigError(
                f"<Labels name=\"{control.name}\"> must label one <Text value=\"$field\">; it labels {found} "
                "(HyperText, images and audio are not served)", field="label_config")
        if str(control.attr.get("choice", "single")).lower() == "multiple":
            raise UnsupportedConfigError(
                f"<Labels name=\"{control.name}\" choice=\"multiple\"> puts several types on one span; "
                "the tagger predicts one type per span: remove choice=\"multiple\"", field="label_config")
        labels = tuple(control.labels)
        if not labels:
            raise UnsupportedConfigError(f"<Labels name=\"{control.name}\"> has no <Label> to learn",
                                         field="label_config")
        obj = objects[0]
        return TaskSpec(from_name=control.name, to_name=obj.name, value_key=str(obj.value)[1:], labels=labels,
                        multilabel=False, kind=self.name)

    def labels_of(self, result: list[dict[str, Any]], spec: TaskSpec) -> tuple[Span, ...] | None:
        """The spans of ``spec.from_name`` in one result, sorted; types not in the config dropped.

        A result with no region of ``spec.from_name`` is the answer "no entities here": ``()``, a
        label the tagger learns as all ``O``. A result whose regions all had to be dropped (a type
        since removed or renamed, an empty range) is ``None``: we cannot tell what it says.
        """
        spans: set[Span] = set()
        known = set(spec.labels)
        regions = [r for r in result if isinstance(r, dict) and r.get("from_name") == spec.from_name]
        for region in regions:
            value = region.get("value") or {}
            start, end, names = value.get("start"), value.get("end"), value.get("labels") or []
            if not (isinstance(start, int) and isinstance(end, int) and end > start):
                continue
            spans.update((start, end, n) for n in names[:1] if n in known)
        return tuple(sorted(spans)) if spans or not regions else None

    def result_of(self, text: str, target: tuple[Span, ...], spec: TaskSpec) -> list[dict[str, Any]]:
        return [span_region(text, span, spec, f"seed{i}") for i, span in enumerate(target)]

    def fit(self, texts: Sequence[str], targets: Sequence[tuple[Span, ...]], spec: TaskSpec, *, version: str,
            estimator: str | None, previous: SpanModel | None = None, measure: str | None = None) -> SpanModel:
        """A fresh CRF each time: crfsuite has no warm start, so ``previous`` is not used."""
        return fit_span_model(texts, targets, labels=spec.labels, version=version, tagger=estimator,
                              measure=measure or DEFAULT_SEQUENCE_MEASURE)

    def predict(self, model: SpanModel, texts: Sequence[str], spec: TaskSpec, measure: str) -> list[dict[str, Any]]:
        """One prediction per text, its uncertainty by the measure the model was fitted with (the
        pool's too); ``measure``, the classification setting, does not apply to spans."""
        tagged, uncertainty = model.scored(texts)
        return [prediction(text, s, u, spec, model) for text, s, u in zip(texts, tagged, uncertainty)]

    def predicted(self, model: SpanModel, texts: Sequence[str]) -> list[tuple[tuple[Span, ...], float]]:
        """The spans and task score the model gives each text, as recorded with a queue."""
        return [(tuple((r[0], r[1], r[2]) for r in regions_of(s, model)), task_score(s)) for s in model.tag(texts)]

    def label_names(self, target: tuple[Span, ...]) -> tuple[str, ...]:
        return tuple(span[2] for span in target)

    def effort_units(self, text: str, target: tuple[Span, ...]) -> dict[str, int]:
        return {"token": len(tokenize(text)), "entity": len(target)}

    def agreement(self, rated: Sequence[Sequence[tuple[Any, tuple[Span, ...]]]]) -> dict[str, Any] | None:
        """Pairwise exact-match span F1 between annotators (the whole-label kappa beside it counts
        a task as agreed only when every span matches)."""
        found = pairwise_span_agreement(rated)
        return {"span_f1": num(found["f1"]), "pairs": found["pairs"], "tasks": found["tasks"]}

    def quality(self, pairs: Sequence[tuple[tuple[Span, ...], tuple[Span, ...]]], labels: Sequence[str],
                rng: np.random.Generator) -> dict[str, Any] | None:
        """Sentence exact-match accuracy (Wilson interval) and entity P/R/F1 (bootstrap interval)."""
        if not pairs:
            return None
        correct = sum(1 for t, p in pairs if set(t) == set(p))
        low, high = wilson_interval(correct, len(pairs))
        scores = entity_scores(pairs)
        f1_low, f1_high = entity_f1_interval(pairs, rng, n_resamples=BOOTSTRAP_RESAMPLES)
        micro = scores["micro"]
        return {"n": len(pairs), "correct": correct, "accuracy": num(correct / len(pairs)), "low": num(low),
                "high": num(high), "entity_precision": num(micro["precision"]), "entity_recall": num(micro["recall"]),
                "entity_f1": num(micro["f1"]), "f1_low": num(f1_low), "f1_high": num(f1_high),
                "macro_f1": num(scores["macro_f1"]),
                "per_type": {t: {k: num(v) if isinstance(v, float) else v for k, v in s.items()}
                             for t, s in scores["per_type"].items()}}


def regions_of(tagged: TaggedSentence, model: SpanModel) -> list[tuple[int, int, str, float]]:
    """Predicted entities as ``(start, end, label, score)``; score = the least confident token."""
    return [(tagged.offsets[a][0], tagged.offsets[b - 1][1], label, float(np.min(tagged.path_marginals[a:b])))
            for a, b, label in tag_runs(tagged.tags) if label in model.labels]


def task_score(tagged: TaggedSentence) -> float:
    """The probability that the whole best path is right."""
    return round(float(np.exp(tagged.path_logprob)), 6)


def span_region(text: str, span: Span, spec: TaskSpec, region_id: str) -> dict[str, Any]:
    """One ``labels`` region, in the shape the labelling UI stores for ``<Labels>`` on ``<Text>``."""
    start, end, label = span
    return {"id": region_id, "from_name": spec.from_name, "to_name": spec.to_name, "type": "labels",
            "value": {"start": start, "end": end, "text": text[start:end], "labels": [label]}}


def prediction(text: str, tagged: TaggedSentence, uncertainty: float, spec: TaskSpec,
               model: SpanModel) -> dict[str, Any]:
    """One task's prediction, in the shape Label Studio stores and prelabels with."""
    result = [span_region(text, (a, b, label), spec, f"lq{i}") | {"score": round(score, 6)}
              for i, (a, b, label, score) in enumerate(regions_of(tagged, model))]
    return {"result": result, "score": task_score(tagged), "model_version": model.version,
            "uncertainty": round(float(uncertainty), 6)}
