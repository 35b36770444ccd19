"""``/predict`` for a span-labelling project answers through the span kind: ``labels`` regions."""
from __future__ import annotations

from pathlib import Path

import pytest

from backend.labelstudio.label_config import parse_label_config
from backend.model.labelconfig import kind_of
from backend.settings import Settings
from backend.web.app import create_app

NER = (Path(__file__).resolve().parents[1] / "label_config" / "ner.xml").read_text()
TRAIN = [("Maria Lopez joined Acme Corp in Berlin", ((0, 11, "PERSON"), (19, 28, "ORG"), (32, 38, "LOCATION"))),
         ("John Smith left Globex for Paris", ((0, 10, "PERSON"), (16, 22, "ORG"), (27, 32, "LOCATION"))),
         ("Ana Silva visited Initech in Lisbon", ((0, 9, "PERSON"), (18, 25, "ORG"), (29, 35, "LOCATION")))] * 5


@pytest.fixture()
def app(tmp_path):
    app = create_app(Settings(data_dir=tmp_path / "data", label_studio_url="http://127.0.0.1:9",
                              label_studio_api_key="not-a-real-token"))
    yield app
    app.extensions["labelqueue"].close()


def test_predict_for_a_ner_project_returns_labels_regions(app):
    client = app.test_client()
    assert client.post("/setup", json={"project": "5.1", "schema": NER}).status_code == 200
    spec = parse_label_config(NER)
    model = kind_of(spec).fit([t for t, _ in TRAIN], [s for _, s in TRAIN], spec, version="v1-ner", estimator=None)
    app.extensions["labelqueue"].store.save(5, model, {"number": 1, "n_examples": len(TRAIN)})
    text = "Maria Lopez joined Initech in Paris"
    response = client.post("/predict", json={"project": "5.1", "label_config": NER,
                                             "tasks": [{"id": 1, "data": {"text": text}}]})
    assert response.status_code == 200
    [prediction] = response.get_json()["results"]
    assert prediction["model_version"] == "v1-ner" and 0 <= prediction["uncertainty"] <= 1
    assert {(r["type"], r["value"]["text"], r["value"]["labels"][0]) for r in prediction["result"]} >= {
        ("labels", "Maria Lopez", "PERSON")}
    assert all(r["from_name"] == "label" and r["to_name"] == "text" and "score" in r for r in prediction["result"])


def test_predict_for_a_ner_project_before_any_model_is_the_cold_start(app):
    client = app.test_client()
    response = client.post("/predict", json={"project": "6.1", "label_config": NER,
                                             "tasks": [{"id": 1, "data": {"text": "Ann at Acme"}}]})
    assert response.get_json()["results"] == [{"result": [], "score": 0.0, "model_version": "untrained",
                                               "uncertainty": 1.0}]


def test_metrics_of_a_ner_project_count_entities_per_type(app):
    store = app.extensions["labelqueue"].store
    app.test_client().post("/setup", json={"project": "7.1", "schema": NER})
    from backend.store import atomic_write_json

    atomic_write_json(store.layout.labelled(7), {"1": {"labels": [[0, 5, "PERSON"], [9, 13, "ORG"]], "overridden": False},
                                                 "2": {"labels": [[0, 3, "PERSON"]], "overridden": True}})
    metrics = app.test_client().get("/metrics")
    assert metrics.status_code == 200  # was a 500: span labels are lists, not hashable label names
    assert metrics.get_json()["projects"]["7"]["labels"]["per_class"] == {"PERSON": 2, "ORG": 1}
