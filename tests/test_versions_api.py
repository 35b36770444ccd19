"""``GET /versions``: what Label Studio 1.23's model settings list (it sends a bare GET)."""
from __future__ import annotations

import os

import pytest

from backend.model.classifier import fit_model
from backend.settings import Settings
from backend.web.app import create_app


@pytest.fixture()
def app(tmp_path):
    return create_app(Settings(data_dir=tmp_path / "data", label_studio_url="http://127.0.0.1:9",
                               label_studio_api_key="not-a-real-token", keep_model_versions=3))


def save_version(app, project_id: int, version: str, saved_at: float) -> None:
    """Store a trained model as a retrain would, with a chosen write time so order is exact."""
    model = fit_model(["my card has not arrived", "I lost my card"], [("card_arrival",), ("lost_or_stolen_card",)],
                      labels=("card_arrival", "lost_or_stolen_card"), multilabel=False, version=version)
    store = app.extensions["labelqueue"].store
    store.save(project_id, model, {"number": 1, "n_examples": 2})
    os.utime(store.layout.models(project_id) / f"{version}.pkl", (saved_at, saved_at))


def test_versions_lists_kept_versions_newest_first(app):
    for number, saved_at in ((1, 1000), (2, 2000), (3, 3000)):
        save_version(app, 4, f"v{number}-test", saved_at)
    assert app.test_client().get("/versions").get_json() == {"versions": ["v3-test", "v2-test", "v1-test"]}


def test_versions_drops_pruned_versions(app):
    for number in range(1, 6):
        save_version(app, 4, f"v{number}-test", 1000.0 * number)
    assert app.test_client().get("/versions").get_json()["versions"] == ["v5-test", "v4-test", "v3-test"]


def test_versions_is_empty_before_any_model(app):
    assert app.test_client().get("/versions").get_json() == {"versions": []}


def test_versions_of_one_project_by_query(app):
    save_version(app, 4, "v1-four", 1000)
    save_version(app, 5, "v1-five", 2000)
    client = app.test_client()
    assert client.get("/versions?project=4").get_json() == {"versions": ["v1-four"]}
    assert client.get("/versions?project=5.1700000000").get_json() == {"versions": ["v1-five"]}
    assert client.get("/versions").get_json() == {"versions": ["v1-five", "v1-four"]}


def test_versions_of_unknown_or_malformed_project_are_4xx_json(app):
    client = app.test_client()
    assert client.get("/versions?project=9").status_code == 404
    response = client.get("/versions?project=abc")
    assert response.status_code == 400 and response.get_json()["field"] == "project"
    assert not (app.extensions["labelqueue"].store.data_dir / "projects" / "9").exists()
