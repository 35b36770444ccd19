"""The HTTP contract through Flask's test client: shapes Label Studio sends, and bad input."""
from __future__ import annotations

from pathlib import Path

import pytest

from backend.model.classifier import fit_model
from backend.settings import Settings
from backend.web.app import create_app

CONFIG = (Path(__file__).resolve().parents[1] / "label_config" / "text_classification.xml").read_text()
MULTI = (Path(__file__).resolve().parents[1] / "label_config" / "multi_label_text_classification.xml").read_text()
LABELS = ("card_arrival", "lost_or_stolen_card", "exchange_rate", "balance_not_updated",
          "refund_not_showing_up", "other")


@pytest.fixture()
def app(tmp_path):
    app = create_app(Settings(data_dir=tmp_path / "data", label_studio_url="http://127.0.0.1:9",
                              label_studio_api_key="not-a-real-token"))
    yield app
    app.extensions["labelqueue"].close()  # its schedulers' threads end with the test


@pytest.fixture()
def client(app):
    return app.test_client()


def connect(client, project_id: int) -> None:
    """What Label Studio does first when an admin connects the backend: ``/setup`` creates the project."""
    assert client.post("/setup", json={"project": f"{project_id}.1", "schema": CONFIG}).status_code == 200


def install_model(app, project_id: int, labels=LABELS, multilabel=False) -> str:
    """Put a trained model where the backend serves it from, as a retrain would."""
    texts = ["my card has not arrived", "where is my new card", "I lost my card", "card stolen",
             "what exchange rate do you use", "euro to dollar rate"]
    targets = [("card_arrival",), ("card_arrival",), ("lost_or_stolen_card",),
               ("lost_or_stolen_card",), ("exchange_rate",), ("exchange_rate",)]
    if multilabel:
        targets = [("card",), ("card", "account"), ("card", "security"), ("security",), ("fees",), ("fees",)]
    model = fit_model(texts, targets, labels=labels, multilabel=multilabel, version="v1-test")
    app.extensions["labelqueue"].store.save(project_id, model, {"number": 1, "n_examples": 6})
    return model.version


def predict_body(texts, config=CONFIG, project="3.1700000000"):
    return {"project": project, "label_config": config,
            "tasks": [{"id": i, "data": {"text": t}} for i, t in enumerate(texts)], "params": {"context": None}}


def test_health_reports_up(client):
    for path in ("/", "/health"):
        assert client.get(path).get_json()["status"] == "UP"


def test_setup_returns_untrained_version_before_any_model(client):
    response = client.post("/setup", json={"project": "3.1700000000", "schema": CONFIG,
                                           "hostname": "http://localhost:8080", "access_token": "t"})
    assert response.status_code == 200
    assert response.get_json() == {"model_version": "untrained"}


def test_setup_returns_current_version_after_training(app, client):
    version = install_model(app, 3)
    response = client.post("/setup", json={"project": "3.1700000000", "schema": CONFIG})
    assert response.get_json()["model_version"] == version


def test_setup_rejects_config_without_choices_on_text(client):
    schema = '<View><Image name="img" value="$image"/><Choices name="c" toName="img">' \
             '<Choice value="a"/><Choice value="b"/></Choices></View>'
    response = client.post("/setup", json={"project": "3.1", "schema": schema})
    assert response.status_code == 400
    assert "<Choices> control bound to a <Text" in response.get_json()["error"]


def test_predict_cold_start_gives_one_empty_prediction_per_task(client):
    response = client.post("/predict", json=predict_body(["a", "b", "c"]))
    results = response.get_json()["results"]
    assert response.status_code == 200
    assert results == [{"result": [], "score": 0.0, "model_version": "untrained", "uncertainty": 1.0}] * 3


def test_predict_returns_choice_score_version_and_uncertainty_in_task_order(app, client):
    install_model(app, 3)
    texts = ["my card still has not arrived", "which exchange rate applies"]
    results = client.post("/predict", json=predict_body(texts)).get_json()["results"]
    assert [r["result"][0]["value"]["choices"] for r in results] == [["card_arrival"], ["exchange_rate"]]
    for r in results:
        assert r["model_version"] == "v1-test"
        assert r["result"][0]["from_name"] == "intent" and r["result"][0]["to_name"] == "text"
        assert 0 < r["score"] <= 1 and 0 <= r["uncertainty"] <= 1


def test_predict_multilabel_may_choose_several_labels(app, client):
    install_model(app, 4, labels=("card", "transfer", "fees", "security", "account"), multilabel=True)
    results = client.post("/predict", json=predict_body(["card", "fees"], config=MULTI, project="4.1"))
    choices = [r["result"][0]["value"]["choices"] for r in results.get_json()["results"]]
    assert all(c and set(c) <= {"card", "transfer", "fees", "security", "account"} for c in choices)


def test_predict_falls_back_to_cold_start_when_config_labels_changed(app, client):
    install_model(app, 3)
    changed = CONFIG.replace('<Choice value="other"/>', '<Choice value="other"/><Choice value="new"/>')
    results = client.post("/predict", json=predict_body(["x"], config=changed)).get_json()["results"]
    assert results[0]["model_version"] == "untrained"


def test_uncertainty_measure_is_configurable(tmp_path):
    app = create_app(Settings(data_dir=tmp_path, uncertainty_measure="entropy"))
    install_model(app, 3)
    margin_app = create_app(Settings(data_dir=tmp_path))
    body = predict_body(["where is my card"])
    entropy_u = app.test_client().post("/predict", json=body).get_json()["results"][0]["uncertainty"]
    margin_u = margin_app.test_client().post("/predict", json=body).get_json()["results"][0]["uncertainty"]
    assert entropy_u != margin_u


@pytest.mark.parametrize("body, field", [
    ({"project": "3.1", "label_config": CONFIG}, "tasks"),
    ({"project": "3.1", "label_config": CONFIG, "tasks": {"data": {}}}, "tasks"),
    ({"project": "3.1", "label_config": CONFIG, "tasks": [{"id": 1}]}, "tasks[0].data"),
    ({"project": "3.1", "label_config": CONFIG, "tasks": [{"data": {"txt": "x"}}]}, "tasks[0].data.text"),
    ({"project": "3.1", "label_config": CONFIG, "tasks": [{"data": {"text": 5}}]}, "tasks[0].data.text"),
    ({"project": "abc", "label_config": CONFIG, "tasks": []}, "project"),
    ({"project": True, "label_config": CONFIG, "tasks": []}, "project"),
    ({"project": "3.1", "tasks": []}, "label_config"),
    ({"project": "3.1", "label_config": "<View", "tasks": []}, "label_config"),
])
def test_predict_rejects_malformed_payload_naming_the_field(client, body, field):
    response = client.post("/predict", json=body)
    assert response.status_code == 400
    assert response.get_json()["field"] == field


@pytest.mark.parametrize("path", ["/predict", "/setup", "/webhook"])
def test_non_json_bodies_get_4xx_json(client, path):
    not_json = client.post(path, data="{not json", content_type="application/json")
    wrong_type = client.post(path, data="a=b", content_type="application/x-www-form-urlencoded")
    a_list = client.post(path, json=[1, 2])
    assert (not_json.status_code, wrong_type.status_code, a_list.status_code) == (400, 415, 400)
    assert all("error" in r.get_json() for r in (not_json, wrong_type, a_list))


def test_too_many_tasks_get_413(tmp_path):
    client = create_app(Settings(data_dir=tmp_path, max_tasks_per_predict=2)).test_client()
    response = client.post("/predict", json=predict_body(["a", "b", "c"]))
    assert response.status_code == 413
    assert "LABELQUEUE_MAX_TASKS_PER_PREDICT" in response.get_json()["error"]


def test_oversized_body_gets_413_json(tmp_path):
    client = create_app(Settings(data_dir=tmp_path, max_request_bytes=1000)).test_client()
    response = client.post("/predict", json=predict_body(["x" * 5000]))
    assert response.status_code == 413
    assert "LABELQUEUE_MAX_REQUEST_BYTES" in response.get_json()["error"]


def test_unknown_route_and_method_get_json_errors(client):
    assert client.get("/nope").get_json()["status"] == 404
    assert client.get("/predict").get_json()["status"] == 405


def test_webhook_ignores_unknown_actions_with_200(client):
    response = client.post("/webhook", json={"action": "PROJECT_UPDATED", "project": {"id": 3}})
    assert response.status_code == 200
    assert response.get_json()["status"] == "ignored"


def test_webhook_schedules_a_retrain_for_annotation_actions(app, client):
    connect(client, 3)
    response = client.post("/webhook", json={"action": "ANNOTATION_CREATED", "project": {"id": 3},
                                             "annotation": {"id": 1}})
    assert response.status_code == 200
    assert response.get_json()["status"] in {"scheduled", "coalesced"}
    assert app.extensions["labelqueue"].retrains.snapshot()[3]["requests"] == 1


@pytest.mark.parametrize("body", [{"project": {"id": 3}}, {"action": "ANNOTATION_CREATED"},
                                  {"action": "ANNOTATION_CREATED", "project": {"id": "x"}},
                                  {"action": 7, "project": {"id": 3}}])
def test_webhook_rejects_payload_without_action_or_project(client, body):
    assert client.post("/webhook", json=body).status_code == 400


def test_metrics_lists_model_version_and_label_counts(app, client):
    install_model(app, 3)
    metrics = client.get("/metrics").get_json()
    assert metrics["projects"]["3"]["model_version"] == "v1-test"
    assert metrics["settings"]["label_studio_api_key"] == "set"
    assert "not-a-real-token" not in str(metrics)


def test_failures_endpoint_flags_tasks_and_reports_totals(client):
    first = client.post("/projects/3/failures", json={"task_ids": [5, 6, 6]})
    second = client.post("/projects/3/failures", json={"task_ids": [6, 7]})
    assert first.get_json() == {"project": 3, "added": 2, "flagged": 2}
    assert second.get_json() == {"project": 3, "added": 1, "flagged": 3}


def test_failures_endpoint_rejects_bad_ids_naming_the_field(client):
    response = client.post("/projects/3/failures", json={"task_ids": ["x"]})
    assert response.status_code == 400 and response.get_json()["field"] == "task_ids"


def test_queue_is_404_with_advice_before_the_first_batch(client):
    response = client.get("/projects/3/queue")
    assert response.status_code == 404
    assert "/select" in response.get_json()["error"]


def test_select_endpoint_schedules_in_background(client):
    connect(client, 3)
    response = client.post("/projects/3/select")
    assert response.status_code == 202 and response.get_json()["status"] in {"scheduled", "coalesced"}


def test_setup_rejects_invalid_per_project_mix(client):
    response = client.post("/setup", json={"project": "3.1", "schema": CONFIG,
                                           "extra_params": {"mix": {"uncertain": 0.9}}})
    assert response.status_code == 400 and response.get_json()["field"] == "extra_params.mix"


def test_webhook_task_events_schedule_a_pool_sync(app, client):
    connect(client, 3)
    response = client.post("/webhook", json={"action": "TASKS_CREATED", "project": {"id": 3}})
    assert response.get_json()["status"] in {"scheduled", "coalesced"}
    assert app.extensions["labelqueue"].pool_syncs.snapshot()[3]["requests"] == 1


def test_health_stays_200_but_reports_degraded_when_label_studio_is_down(app, client):
    connect(client, 3)
    client.post("/webhook", json={"action": "ANNOTATION_CREATED", "project": {"id": 3}})
    runtime = app.extensions["labelqueue"]
    runtime.retrains.wait_idle(10)
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json()["degraded"] == "label_studio_unreachable"
    assert "project 3 retrain" in client.get("/metrics").get_json()["degraded"]["detail"]


def test_interrupted_retrain_request_is_resumed_on_restart(tmp_path):
    settings = Settings(data_dir=tmp_path, label_studio_url="http://127.0.0.1:9", label_studio_api_key="x")
    first = create_app(settings)
    connect(first.test_client(), 8)
    first.test_client().post("/webhook", json={"action": "START_TRAINING", "project": {"id": 8}})
    assert (tmp_path / "projects" / "8" / "retrain.pending").exists()
    restarted = create_app(settings)  # as after kill -9: the marker is still there
    try:
        assert restarted.extensions["labelqueue"].retrains.snapshot()[8]["requests"] == 1
    finally:  # neither app's retry timers may outlive the test (they would retry for the session)
        for app in (first, restarted):
            app.extensions["labelqueue"].close()


@pytest.mark.parametrize("project", ["¹", "٣.1", "0.5", "-3", "99999999999999999999", 2**40])
def test_project_ids_that_are_not_label_studio_ids_get_400(client, project):
    response = client.post("/predict", json=predict_body(["x"], project=project))
    assert response.status_code == 400 and response.get_json()["field"] == "project"
