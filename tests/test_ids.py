"""One rule for every id at the HTTP edge (``backend/web/ids.py``): URL and body project ids,
feedback and failure task ids are integers from 1 to 2**31-1 written with ASCII digits."""
from __future__ import annotations

import pytest

from backend.settings import Settings
from backend.web.app import create_app
from backend.web.ids import MAX_ID

URL_ROUTES = [("post", "/projects/{}/select"), ("get", "/projects/{}/queue"), ("post", "/projects/{}/failures"),
              ("post", "/projects/{}/feedback"), ("get", "/projects/{}/report"),
              ("get", "/projects/{}/measurement"), ("post", "/projects/{}/measure")]
BAD_URL_IDS = ["0", "-1", str(MAX_ID + 1), str(2**63), "9223372036854775808", "²", "٣", "1e3", "007x"]


@pytest.fixture()
def app(tmp_path):
    return create_app(Settings(data_dir=tmp_path / "data", label_studio_url="http://127.0.0.1:9",
                               label_studio_api_key="x"))


@pytest.fixture()
def client(app):
    return app.test_client()


@pytest.mark.parametrize("method, route", URL_ROUTES)
@pytest.mark.parametrize("raw", BAD_URL_IDS)
def test_url_project_ids_outside_the_rule_get_400_naming_the_field(client, method, route, raw):
    response = getattr(client, method)(route.format(raw), json={"task_ids": [1]})
    assert response.status_code == 400
    assert response.get_json()["field"] == "project_id"


@pytest.mark.parametrize("method, route", URL_ROUTES)
def test_the_largest_id_is_accepted_in_the_url(client, method, route):
    response = getattr(client, method)(route.format(MAX_ID), json={"task_ids": [1]})
    assert response.status_code < 500 and response.get_json().get("field") != "project_id"


def test_a_refused_url_id_leaves_no_state_behind_and_metrics_stay_up(app, client):
    assert client.post(f"/projects/{2**63}/select").status_code == 400
    assert app.extensions["labelqueue"].selections.snapshot() == {}
    assert client.get("/metrics").status_code == 200


@pytest.mark.parametrize("project", [0, MAX_ID + 1, 2**63, "²", "2147483648.17", True])
def test_body_project_ids_follow_the_same_range(client, project):
    response = client.post("/webhook", json={"action": "ANNOTATION_CREATED", "project": {"id": project}})
    assert response.status_code == 400 and response.get_json()["field"] == "project.id"
    assert client.post("/webhook", json={"action": "PROJECT_UPDATED", "project": {"id": MAX_ID}}).status_code == 200


@pytest.mark.parametrize("task_id", [0, -5, MAX_ID + 1, 2**70, 1.5, True, "12"])
def test_feedback_task_id_is_bounded(app, client, task_id):
    app.extensions["labelqueue"].store.create_project(4)  # a connected project
    response = client.post("/projects/4/feedback", json={"task_id": task_id, "predicted": "a", "correct": "b"})
    assert response.status_code == 400 and response.get_json()["field"] == "task_id"


@pytest.mark.parametrize("task_ids", [[MAX_ID + 1], [2**70], [1, 0]])
def test_failure_task_ids_are_bounded(app, client, task_ids):
    response = client.post("/projects/4/failures", json={"task_ids": task_ids})
    assert response.status_code == 400 and response.get_json()["field"] == "task_ids"
    assert app.extensions["labelqueue"].failures.read(4) == {}


def test_failure_task_ids_within_range_are_stored(app, client):
    response = client.post("/projects/4/failures", json={"task_ids": [MAX_ID, 1]})
    assert response.status_code == 200 and sorted(app.extensions["labelqueue"].failures.read(4)) == [1, MAX_ID]
