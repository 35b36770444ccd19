"""The task-kind seam: callers reach a kind only through ``kind_of(spec)``, so a second kind (span
labelling, issue 16) plugs in without changing them. A stand-in span kind proves it here."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from backend.labelstudio import label_config
from backend.labelstudio.gateway import resolve_annotations
from backend.labelstudio.label_config import parse_label_config
from backend.model import labelconfig
from backend.model.classification import Classification
from backend.model.labelconfig import kind_of
from backend.model.predict import predictions
from backend.model.task_kind import TaskSpec

CONFIG = (Path(__file__).resolve().parents[1] / "label_config" / "text_classification.xml").read_text()
NER = """<View><Labels name="label" toName="text"><Label value="PER"/><Label value="ORG"/></Labels>
<Text name="text" value="$text"/></View>"""


class Spans:
    """A minimal span kind: labels are ((start, end, type), ...) in character offsets."""

    name = "spans"

    def spec_of(self, interface: Any) -> TaskSpec | None:
        for control in interface.controls:
            if control.tag.lower() == "labels":
                obj = control.objects[0]
                return TaskSpec(control.name, obj.name, str(obj.value)[1:], tuple(control.labels), False, self.name)
        return None

    def labels_of(self, result, spec):
        return tuple(sorted((r["value"]["start"], r["value"]["end"], r["value"]["labels"][0])
                            for r in result if r.get("from_name") == spec.from_name))

    def fit(self, texts, targets, spec, *, version, estimator, previous=None):
        return type("Model", (), {"version": version})()

    def predict(self, model, texts, spec, measure):
        return [{"result": [{"from_name": spec.from_name, "to_name": spec.to_name, "type": "labels",
                             "value": {"start": 0, "end": 3, "text": t[:3], "labels": [spec.labels[0]]}}],
                 "score": 0.5, "model_version": model.version, "uncertainty": 0.5} for t in texts]

    def quality(self, pairs, labels, rng):
        return {"n": len(pairs), "correct": sum(t == p for t, p in pairs)} if pairs else None


@pytest.fixture()
def with_spans(monkeypatch):
    kinds = (Classification(), Spans())
    monkeypatch.setattr(labelconfig, "KINDS", kinds)
    monkeypatch.setattr(labelconfig, "_BY_NAME", {k.name: k for k in kinds})
    label_config._parse.cache_clear()
    yield
    label_config._parse.cache_clear()


def span(start: int, end: int, label: str) -> dict:
    return {"from_name": "label", "to_name": "text", "type": "labels",
            "value": {"start": start, "end": end, "labels": [label]}}


def test_the_runtime_picks_classification_from_a_choices_config():
    spec = parse_label_config(CONFIG)
    assert spec.kind == "classification" and isinstance(kind_of(spec), Classification)


def test_a_span_kind_plugs_in_without_changing_the_callers(with_spans):
    spec = parse_label_config(NER)
    assert spec.kind == "spans" and spec.labels == ("PER", "ORG")
    annotations = [{"id": 1, "updated_at": "1", "result": [span(0, 3, "PER")]},
                   {"id": 2, "updated_at": "2", "result": [span(0, 3, "PER")]},
                   {"id": 3, "updated_at": "3", "result": [span(4, 7, "ORG")]}]
    assert resolve_annotations(annotations, spec) == ((0, 3, "PER"),)  # majority vote over span sets
    model = kind_of(spec).fit(["Ann at Acme"], [((0, 3, "PER"),)], spec, version="v1", estimator=None)
    [predicted] = predictions(["Ann at Acme"], spec, model, "margin")
    assert predicted["result"][0]["value"]["labels"] == ["PER"] and predicted["model_version"] == "v1"
    assert kind_of(spec).quality([(((0, 3, "PER"),), ((0, 3, "PER"),))], spec.labels,
                                 np.random.default_rng(0)) == {"n": 1, "correct": 1}


def test_a_config_no_kind_serves_is_refused_naming_what_is_supported():
    from backend.errors import UnsupportedConfigError

    transcription = '<View><TextArea name="note" toName="text"/><Text name="text" value="$text"/></View>'
    with pytest.raises(UnsupportedConfigError,
                       match="Supported: single- or multi-label text classification and span labelling"):
        parse_label_config(transcription)
