"""Faults with real servers: kill -9 in the middle of a retrain, in either deployment."""
from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from backend.local.label_studio_server import start_backend
from tests.helpers import (
    SLOW_ENV,
    backend_metrics,
    connect_backend,
    fit_started,
    retrain_markers,
    slow_project,
    wait_for,
)
from tests.servers import start_worker
from tests.slow_classifier import STARTED_MARKER

pytestmark = pytest.mark.e2e


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def descendants_of(pid: int) -> list[int]:
    children = children_of(pid)
    return children + [grandchild for child in children for grandchild in descendants_of(child)]


def kill_9(pid: int) -> None:
    """SIGKILL a process and all its descendants at once (gunicorn's workers, RQ's work horse,
    which runs in a process group of its own), as a crash, an OOM kill or a lost machine would."""
    for target in [*descendants_of(pid), pid]:
        try:
            os.kill(target, signal.SIGKILL)
        except ProcessLookupError:
            pass


def model_of(url: str, project_id: int) -> dict:
    return backend_metrics(url)["projects"].get(str(project_id), {})


#: A backend whose fits take 4 s (so a kill lands inside one), retraining only when told to.
def test_kill_9_during_retrain_keeps_last_model_and_resumes_the_retrain(label_studio, ls_client, banking77, tmp_path):
    project, tasks, annotate = slow_project(ls_client, banking77, "labelqueue e2e kill -9", seed=5)
    marker = tmp_path / "fit.started"
    env = {**SLOW_ENV, STARTED_MARKER: str(marker)}
    def start():
        return start_backend(tmp_path, label_studio=label_studio, workers=1, env=env)
    force = {"action": "START_TRAINING", "project": {"id": project.id}}

    annotate(tasks[:60])
    backend = start()
    connect_backend(backend.url, project)
    httpx.post(f"{backend.url}/webhook", json=force)
    first = wait_for(lambda: model_of(backend.url, project.id).get("model_version"), 60, "the first model")

    annotate(tasks[60:80])
    httpx.post(f"{backend.url}/webhook", json=force)
    wait_for(lambda: fit_started(marker, 80), 30, "the second retrain's fit to start")
    kill_9(backend.process.pid)
    backend.process.wait(timeout=10)

    project_dir = tmp_path / "data" / "projects" / str(project.id)
    assert json.loads((project_dir / "current.json").read_text())["version"] == first
    assert retrain_markers(project_dir)

    restarted = start()
    try:
        assert httpx.post(f"{restarted.url}/setup", json={"project": f"{project.id}.0",
                                                          "schema": project.label_config}).json() == {"model_version": first}
        resumed = wait_for(lambda: (lambda m: m if m.get("model_version") not in (None, first) else None)(
            model_of(restarted.url, project.id)), 60, "the interrupted retrain to run again")
        assert resumed["model"]["n_examples"] == 80
        wait_for(lambda: not retrain_markers(project_dir), 10, "the retrain markers to be cleared")
    finally:
        restarted.stop()


def test_rq_worker_killed_mid_retrain_does_not_lose_the_retrain(label_studio, ls_client, banking77, redis_server,
                                                                 tmp_path):
    """Two ``labelqueue worker`` processes; the one training is killed with its work horse (as a
    lost machine would be); the other runs the retrain again once the dead run's lease lapses."""
    project, tasks, annotate = slow_project(ls_client, banking77, "labelqueue e2e RQ worker killed", seed=6)
    marker = tmp_path / "fit.started"
    env = {**SLOW_ENV, "LABELQUEUE_REDIS_URL": f"{redis_server.url}/3", STARTED_MARKER: str(marker)}
    workers = {name: start_worker(tmp_path, label_studio=label_studio, name=name, env=env)
               for name in ("fault-worker-1", "fault-worker-2")}
    backend = start_backend(tmp_path, label_studio=label_studio, workers=1, env=env)
    force = {"action": "START_TRAINING", "project": {"id": project.id}}
    def retrain_job():
        return model_of(backend.url, project.id)["jobs"]["retrain"]
    try:
        annotate(tasks[:60])
        connect_backend(backend.url, project)
        httpx.post(f"{backend.url}/webhook", json=force)
        first = wait_for(lambda: model_of(backend.url, project.id).get("model_version"), 90, "the first model")

        annotate(tasks[60:80])
        httpx.post(f"{backend.url}/webhook", json=force)
        wait_for(lambda: fit_started(marker, 80), 30, "the second retrain's fit to start")
        victim = retrain_job()["worker"].split(":", 1)[1]
        kill_9(workers[victim].process.pid)
        workers[victim].process.wait(timeout=10)
        killed_at = time.monotonic()
        project_dir = tmp_path / "data" / "projects" / str(project.id)
        assert json.loads((project_dir / "current.json").read_text())["version"] == first

        resumed = wait_for(lambda: (lambda m: m if m.get("model_version") not in (None, first) else None)(
            model_of(backend.url, project.id)), 90, "the retrain to run again on the surviving worker")
        print(f"\nworker killed mid-retrain -> retrain done again by the other worker: {time.monotonic() - killed_at:.1f}s")
        assert resumed["model"]["n_examples"] == 80
        job = retrain_job()
        assert job["recovered"] >= 1 and job["worker"].split(":", 1)[1] != victim
        wait_for(lambda: not retrain_markers(project_dir), 10, "the retrain markers to be cleared")
    finally:
        backend.stop()
        for worker in workers.values():
            worker.stop()
