"""``/metrics`` in Prometheus' text format: parsed with the client's own parser, the per-project
series equal the JSON figures, and under ``labelqueue serve --workers 2`` the per-process
counters are summed over both workers instead of depending on which one answers."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from backend.local.label_studio_server import start_backend
from backend.model.classifier import fit_model
from backend.settings import Settings
from backend.store import ModelStore, atomic_write_json
from backend.web.app import create_app
from tests.helpers import wait_for

PROJECT = 4
RETRAIN_RUNS = ("labelqueue_job_run_seconds_count", (("job", "retrain"),))
LABELS = ("card_arrival", "lost_or_stolen_card")


def seed_project(data_dir) -> None:
    """What a retrain and a selection cycle leave on disk: a model, its training set, a queue."""
    store = ModelStore(data_dir)
    store.create_project(PROJECT)
    model = fit_model(["my card has not arrived", "where is my card", "I lost my card"],
                      [("card_arrival",), ("card_arrival",), ("lost_or_stolen_card",)],
                      labels=LABELS, multilabel=False, version="v2-test")
    store.save(PROJECT, model, {"number": 2, "n_examples": 3})
    atomic_write_json(store.layout.labelled(PROJECT), {
        "1": {"labels": ["card_arrival"]}, "2": {"labels": ["card_arrival"]}, "3": {"labels": ["lost_or_stolen_card"]}})
    atomic_write_json(store.layout.queue(PROJECT), {
        "cycle": 1, "model_version": "v2-test", "labelled": 3, "created_at": "2026-01-01T00:00:00+00:00",
        "counts": {"uncertain": 5, "diverse": 3, "failure": 1, "control": 1}, "items": []})


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def project_series(found: dict, project: str) -> dict:
    return {key: value for key, value in found.items() if ("project", project) in key[1]
            and not key[0].startswith(("labelqueue_job", "labelqueue_http"))}


def expected_series(figures: dict, project: str) -> dict:
    """The per-project series the JSON ``/metrics`` implies."""
    p = figures["projects"][project]
    want = {("labelqueue_model_version_info", (("project", project), ("version", p["model_version"]))): 1.0,
            ("labelqueue_training_examples", (("project", project),)): float(p["model"]["n_examples"]),
            ("labelqueue_flagged_failures", (("project", project),)): float(p["flagged_failures"])}
    want |= {("labelqueue_labels", (("label", label), ("project", project))): float(n)
             for label, n in p["labels"]["per_class"].items()}
    want |= {("labelqueue_queue_items", (("project", project), ("slice", name))): float(n)
             for name, n in p["queue"]["counts"].items()}
    return want


@pytest.fixture()
def client(tmp_path):
    seed_project(tmp_path / "data")
    app = create_app(Settings(data_dir=tmp_path / "data", label_studio_url="http://127.0.0.1:9",
                              label_studio_api_key="not-a-real-token"))
    return app.test_client()


def test_metrics_stays_json_by_default(client):
    assert client.get("/metrics").is_json
    assert client.get("/metrics", headers={"Accept": "*/*"}).is_json


@pytest.mark.parametrize("request_args", [{"query_string": {"format": "prometheus"}},
                                          {"headers": {"Accept": "text/plain"}}])
def test_prometheus_series_equal_the_json_figures(client, request_args):
    client.post(f"/projects/{PROJECT}/failures", json={"task_ids": [7, 8]})
    figures = client.get("/metrics").get_json()
    response = client.get("/metrics", **request_args)
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    found = samples(response.get_data(as_text=True))
    assert project_series(found, str(PROJECT)) == expected_series(figures, str(PROJECT))
    assert figures["projects"][str(PROJECT)]["flagged_failures"] == 2


def test_http_requests_are_counted_by_route_pattern_not_by_id(client):
    client.get(f"/projects/{PROJECT}/queue")
    found = samples(client.get("/metrics?format=prometheus").get_data(as_text=True))
    routes = {dict(labels).get("route") for name, labels in found if name == "labelqueue_http_requests_total"}
    assert "/projects/<project_id:project_id>/queue" in routes
    assert not any(str(PROJECT) in (route or "") for route in routes)


def counter_pids(folder) -> set[str]:
    return {path.stem.rsplit("_", 1)[-1] for path in folder.glob("counter_*.db")}


def test_two_workers_agree_and_sum_their_counters(tmp_path):
    data_dir = tmp_path / "data"  # where start_backend(tmp_path) points LABELQUEUE_DATA_DIR
    seed_project(data_dir)
    server = start_backend(tmp_path, label_studio=None, workers=2)
    try:
        def get_versions(_: int) -> int:
            return httpx.get(f"{server.url}/versions", timeout=10).status_code

        with httpx.Client(base_url=server.url, timeout=10) as http, ThreadPoolExecutor(8) as pool:
            assert http.post(f"/projects/{PROJECT}/failures", json={"task_ids": [7, 8, 9]}).status_code == 200
            # A retrain in whichever worker takes the webhook; without Label Studio it fails, and is timed.
            assert http.post("/webhook", json={"action": "START_TRAINING", "project": {"id": PROJECT}}).status_code == 200
            sent = 0

            def both_workers_answered() -> bool:
                nonlocal sent
                assert set(pool.map(get_versions, range(16))) == {200}
                sent += 16
                return len(counter_pids(data_dir / "prometheus")) == 2

            wait_for(both_workers_answered, timeout=60, what="requests answered by both gunicorn workers")
            wait_for(lambda: samples(http.get("/metrics", params={"format": "prometheus"}).text).get(RETRAIN_RUNS, 0) >= 1,
                     timeout=60, what="the retrain's run time in the exposition")
            figures = http.get("/metrics").json()
            want = expected_series(figures, str(PROJECT))
            scrapes = [samples(http.get("/metrics", params={"format": "prometheus"},
                                        headers={"Connection": "close"}).text) for _ in range(6)]
        versions = (("method", "GET"), ("route", "/versions"), ("status", "200"))
        for found in scrapes:
            assert project_series(found, str(PROJECT)) == want
            assert found[("labelqueue_http_requests_total", versions)] == sent
            assert found[RETRAIN_RUNS] >= 1  # whichever worker answers, the run that one worker timed
    finally:
        server.stop()


def test_rq_run_times_are_one_histogram_per_job_that_every_process_reads_alike(redis_url, tmp_path):
    """A run recorded by the process that ran it (an RQ worker) is scraped from any other (a
    gunicorn worker), and the RQ exposition holds each job family once, from Redis only."""
    from types import SimpleNamespace

    from rq import SimpleWorker

    from backend.jobs.backends import job_backend
    from backend.jobs.job_metrics import record_run
    from backend.jobs.rq_jobs import QUEUE_JOBS
    from backend.web.prometheus import exposition
    from backend.worker import use_runtime
    from tests.test_job_backends import RecordingRetrain

    def broken(project_id, force):
        raise RuntimeError("boom")

    worker, web = (job_backend(Settings(data_dir=tmp_path / name, redis_url=redis_url)) for name in ("a", "b"))
    try:
        for backend in (worker, web):
            backend.scheduler("retrain", RecordingRetrain())
            backend.scheduler("select", broken)
        use_runtime(SimpleNamespace(jobs=worker))
        for project_id in (1, 2):
            worker.schedulers["retrain"].request(project_id)
        worker.schedulers["select"].request(1)
        SimpleWorker([worker.queues[QUEUE_JOBS]], connection=worker.redis).work(burst=True)
        record_run("retrain", 1, 99.0, ok=True)  # an in-process count in this process: not an RQ run
        figures = {"projects": {}, "jobs_backend": web.describe(), "settings": {}, "degraded": None}
        text = exposition(figures).get_data(as_text=True)
    finally:
        worker.close()
        web.close()
    found = samples(text)
    for job, runs in (("retrain", 2), ("select", 1)):
        shared = figures["jobs_backend"]["run_seconds"][job]
        assert found[("labelqueue_job_run_seconds_count", (("job", job),))] == shared["count"] == runs
        assert found[("labelqueue_job_run_seconds_sum", (("job", job),))] == pytest.approx(shared["sum"])
        buckets = [found[("labelqueue_job_run_seconds_bucket", (("job", job), ("le", le)))] for le in shared["buckets"]]
        assert buckets == sorted(buckets) and buckets[-1] == runs
    assert text.count("# TYPE labelqueue_job_run_seconds histogram") == 1
    assert text.count("# TYPE labelqueue_job_state gauge") == 1
