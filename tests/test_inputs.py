"""Unusual but legal input: unicode, empty and very long texts, huge batches, concurrent swaps."""
from __future__ import annotations

import threading

import pytest

from backend.model.classifier import fit_model
from backend.settings import Settings
from backend.web.app import create_app
from tests.test_api import install_model, predict_body


@pytest.fixture()
def app(tmp_path):
    app = create_app(Settings(data_dir=tmp_path, max_request_bytes=64 * 1024 * 1024))
    install_model(app, 3)
    yield app
    app.extensions["labelqueue"].close()


def test_unicode_and_empty_texts_get_normal_predictions(app):
    texts = ["", "   ", "ma carte n'est pas arrivée 💳", "我的卡丢了", "\u202e\u0000control chars", "🙂" * 50]
    results = app.test_client().post("/predict", json=predict_body(texts)).get_json()["results"]
    assert len(results) == len(texts)
    assert all(r["result"] and 0 <= r["uncertainty"] <= 1 for r in results)


def test_one_megabyte_text_is_predicted(app):
    response = app.test_client().post("/predict", json=predict_body(["my card has not arrived " * 45_000]))
    assert response.status_code == 200
    assert response.get_json()["results"][0]["result"][0]["value"]["choices"] == ["card_arrival"]


def test_ten_thousand_tasks_in_one_call_get_ten_thousand_predictions(app):
    response = app.test_client().post("/predict", json=predict_body([f"card {i} not arrived" for i in range(10_000)]))
    assert response.status_code == 200
    assert len(response.get_json()["results"]) == 10_000


def test_concurrent_predictions_during_model_swaps_each_come_from_one_version(app):
    store = app.extensions["labelqueue"].store
    texts = ["where is my card", "exchange rate", "lost my card"] * 20
    errors, versions_seen, stop = [], set(), threading.Event()

    def swap_models():
        for i in range(2, 12):
            model = fit_model(["card late", "rate", "stolen card"],
                              [("card_arrival",), ("exchange_rate",), ("lost_or_stolen_card",)],
                              labels=app.extensions["labelqueue"].models.current(3).labels,
                              multilabel=False, version=f"v{i}-swap")
            store.save(3, model, {"number": i})
        stop.set()

    def predict():
        client = app.test_client()
        while not stop.is_set():
            response = client.post("/predict", json=predict_body(texts))
            if response.status_code != 200:
                errors.append(response.status_code)
                continue
            versions = {r["model_version"] for r in response.get_json()["results"]}
            if len(versions) != 1:
                errors.append(versions)
            versions_seen.update(versions)

    threads = [threading.Thread(target=predict) for _ in range(4)] + [threading.Thread(target=swap_models)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert len(versions_seen) >= 2
