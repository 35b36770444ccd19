"""The data dir's layout: reads never create, projects are bounded, bad files stay local."""
from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from backend.ids import InvalidProjectId
from backend.layout import ProjectLayout, ProjectNotFound
from backend.settings import Settings
from backend.web.app import create_app

CONFIG = (Path(__file__).resolve().parents[1] / "label_config" / "text_classification.xml").read_text()


def make_app(data_dir: Path, **settings):
    return create_app(Settings(data_dir=data_dir, label_studio_url="http://127.0.0.1:9",
                               label_studio_api_key="not-a-real-token", **settings))


def setup(client, project_id: int):
    return client.post("/setup", json={"project": f"{project_id}.1", "schema": CONFIG})


def predict(client, project_id: int):
    return client.post("/predict", json={"project": f"{project_id}.1", "label_config": CONFIG,
                                         "tasks": [{"id": 1, "data": {"text": "my card"}}]})


def test_a_predict_or_read_for_an_unknown_project_creates_nothing_and_is_not_in_metrics(tmp_path):
    client = make_app(tmp_path).test_client()
    assert predict(client, 41).status_code == 200
    for path in ("/projects/42/queue", "/projects/43/report", "/projects/44/measurement"):
        assert client.get(path).status_code == 404
    assert client.post("/projects/45/feedback", json={"text": "x", "predicted": "a", "correct": "b"}).status_code == 404
    assert not (tmp_path / "projects").exists() or not any((tmp_path / "projects").iterdir())
    assert client.get("/metrics").get_json()["projects"] == {}


def test_setup_creates_the_project(tmp_path):
    client = make_app(tmp_path).test_client()
    assert setup(client, 7).status_code == 200
    assert (tmp_path / "projects" / "7").is_dir() and list(client.get("/metrics").get_json()["projects"]) == ["7"]


@pytest.mark.parametrize("action", ["ANNOTATION_CREATED", "START_TRAINING", "TASKS_CREATED", "TASKS_DELETED"])
def test_forged_webhooks_for_unknown_projects_leave_no_marker_and_no_job(tmp_path, action):
    app = make_app(tmp_path)
    client = app.test_client()
    for project_id in range(1, 30):
        assert client.post("/webhook", json={"action": action, "project": {"id": project_id}}).status_code == 404
    runtime = app.extensions["labelqueue"]
    assert not list(tmp_path.rglob("retrain.pending")) and runtime.known_projects() == set()
    assert runtime.retrains.snapshot() == {} and runtime.pool_syncs.snapshot() == {}


def test_admin_jobs_for_unknown_projects_are_refused(tmp_path):
    app = make_app(tmp_path)
    client = app.test_client()
    assert client.post("/projects/5/select").status_code == 404
    assert client.post("/projects/5/measure").status_code == 404
    assert app.extensions["labelqueue"].selections.snapshot() == {}


def test_projects_are_capped(tmp_path):
    client = make_app(tmp_path, max_projects=2).test_client()
    assert setup(client, 1).status_code == 200 and setup(client, 2).status_code == 200
    refused = setup(client, 3)
    assert refused.status_code == 507 and "LABELQUEUE_MAX_PROJECTS" in refused.get_json()["error"]
    assert setup(client, 2).status_code == 200  # an existing project still connects
    assert sorted(p.name for p in (tmp_path / "projects").iterdir()) == ["1", "2"]


def test_a_job_for_a_project_deleted_meanwhile_does_nothing_and_is_not_retried(tmp_path):
    app = make_app(tmp_path)
    runtime = app.extensions["labelqueue"]
    assert setup(app.test_client(), 6).status_code == 200
    (tmp_path / "projects" / "6" / "options.json").unlink()
    (tmp_path / "projects" / "6").rmdir()
    runtime.selections.request(6, force=True)
    assert runtime.selections.wait_idle(10)
    state = runtime.selections.snapshot()[6]
    assert state["state"] == "idle" and state["attempts"] == 0 and "not connected" in state["last_outcome"]["reason"]


@pytest.mark.parametrize("bad", [0, -1, 2**31, 2**63, 2**70, True, "5"])
def test_the_store_refuses_ids_outside_label_studio_range(tmp_path, bad):
    with pytest.raises(InvalidProjectId):
        ProjectLayout(tmp_path).project(bad)


def test_a_huge_url_project_id_is_refused_and_metrics_stays_up(tmp_path):
    client = make_app(tmp_path).test_client()
    for path in ("/projects/9223372036854775808/select", "/projects/9223372036854775808/measure",
                 "/projects/0/failures"):
        assert client.post(path, json={"task_ids": [1]}).status_code == 400
    assert client.get("/projects/9223372036854775808/report").status_code == 400
    assert client.get("/metrics").status_code == 200 and not (tmp_path / "projects").exists()


def test_folders_that_are_not_project_ids_are_ignored(tmp_path):
    app = make_app(tmp_path)
    for name in ("²", "٣", "0", "99999999999", "tmp"):
        (tmp_path / "projects" / name).mkdir(parents=True)
    (tmp_path / "projects" / "12").write_text("a file, not a project")
    assert setup(app.test_client(), 3).status_code == 200
    response = app.test_client().get("/metrics")
    assert response.status_code == 200 and list(response.get_json()["projects"]) == ["3"]
    with pytest.raises(ProjectNotFound):
        ProjectLayout(tmp_path).require(12)


@pytest.mark.parametrize("name, content", [("current.json", "{"), ("current.json", ""), ("current.json", "[]"),
                                           ("current.json", '{"version": 1}'), ("queue.json", '{"cycle": "x"}'),
                                           ("queue.json", "\x00\x01"), ("labelled.json", '{"a": 1}'),
                                           ("labelled.json", '{"1": 2}'), ("failures.json", "[1, 2]"),
                                           ("failures.json", '{"x": {}}'), ("options.json", '{"batch_size": "x"}')])
def test_a_bad_state_file_is_named_and_breaks_only_its_own_project(tmp_path, name, content):
    app = make_app(tmp_path)
    client = app.test_client()
    assert setup(client, 1).status_code == 200 and setup(client, 2).status_code == 200
    (tmp_path / "projects" / "2" / name).write_text(content)
    response = client.get("/metrics")
    assert response.status_code == 200
    projects = response.get_json()["projects"]
    assert "error" not in projects["1"] and projects["1"]["labels"]["total"] == 0
    if name in ("queue.json", "labelled.json", "failures.json", "current.json"):
        assert name in projects["2"]["error"]
    assert predict(client, 2).status_code == 200  # predictions go on (cold start or the cached model)


@pytest.mark.parametrize("content", ["{", '{"cycle": 1}'])
def test_a_bad_queue_file_is_a_503_naming_it(tmp_path, content):
    client = make_app(tmp_path).test_client()
    setup(client, 1)
    (tmp_path / "projects" / "1" / "queue.json").write_text(content)
    response = client.get("/projects/1/queue")
    assert response.status_code == 503 and "queue.json" in response.get_json()["error"]


def test_a_bad_failures_file_is_not_overwritten_by_the_next_flag(tmp_path):
    client = make_app(tmp_path).test_client()
    setup(client, 1)
    (tmp_path / "projects" / "1" / "failures.json").write_text("{truncated")
    response = client.post("/projects/1/failures", json={"task_ids": [4]})
    assert response.status_code == 503 and "failures.json" in response.get_json()["error"]
    assert (tmp_path / "projects" / "1" / "failures.json").read_text() == "{truncated"


def test_a_garbage_sqlite_file_is_named_and_metrics_stays_up(tmp_path):
    (tmp_path / "labelqueue.sqlite3").write_bytes(b"this is not a database" * 100)
    app = make_app(tmp_path)
    client = app.test_client()
    setup(client, 1)
    response = client.get("/metrics")
    assert response.status_code == 200 and "labelqueue.sqlite3" in response.get_json()["projects"]["1"]["error"]
    report = client.get("/projects/1/report")
    assert report.status_code == 503 and "labelqueue.sqlite3" in report.get_json()["error"]


def test_a_deleted_sqlite_file_gets_its_schema_back(tmp_path):
    app = make_app(tmp_path)
    client = app.test_client()
    setup(client, 1)
    for path in tmp_path.glob("labelqueue.sqlite3*"):
        path.unlink()
    assert client.get("/metrics").status_code == 200
    assert "error" not in client.get("/metrics").get_json()["projects"]["1"]
    assert client.get("/projects/1/measurement").status_code == 404  # not measured yet, not a 500
    assert stat.S_IMODE((tmp_path / "labelqueue.sqlite3").stat().st_mode) == 0o600


def test_every_created_folder_is_0700_and_lock_files_0600(tmp_path):
    data_dir = tmp_path / "a" / "b" / "data"
    app = make_app(data_dir)
    setup(app.test_client(), 1)
    runtime = app.extensions["labelqueue"]
    with runtime.store.lock(1, "train"):
        pass
    runtime.failures.add(1, [3], source="test")
    folders = [data_dir / "projects", data_dir / "projects" / "1"]
    assert all(stat.S_IMODE(folder.stat().st_mode) == 0o700 for folder in folders)
    assert stat.S_IMODE((data_dir / "projects" / "1" / "train.lock").stat().st_mode) == 0o600
    assert stat.S_IMODE((data_dir / "projects" / "1" / "failures.lock").stat().st_mode) == 0o600
    assert all(stat.S_IMODE(p.stat().st_mode) & 0o077 == 0 for p in data_dir.rglob("*"))
    assert json.loads((data_dir / "projects" / "1" / "failures.json").read_text())["3"]["source"] == "test"
