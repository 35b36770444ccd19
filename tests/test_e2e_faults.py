"""Faults with real servers: kill -9 in the middle of a retrain, then restart."""
from __future__ import annotations

import json
import os
import random
import signal
import time
from pathlib import Path

import httpx
import pytest

from backend.local_label_studio import start_backend
from tests.helpers import INTENTS, REPO, backend_metrics, choice_result, config_with_choices, wait_for

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


def kill_9(pid: int) -> None:
    """SIGKILL the gunicorn master and its workers at once, as a crash or OOM kill would."""
    for target in [*children_of(pid), pid]:
        try:
            os.kill(target, signal.SIGKILL)
        except ProcessLookupError:
            pass


def model_of(url: str, project_id: int) -> dict:
    return backend_metrics(url)["projects"].get(str(project_id), {})


def test_kill_9_during_retrain_keeps_last_model_and_resumes_the_retrain(label_studio, ls_client, banking77, tmp_path):
    rows = [r for r in banking77["train"] if r["category"] in INTENTS]
    random.Random(5).shuffle(rows)
    rows = rows[:200]
    project = ls_client.projects.create(title="labelqueue e2e kill -9",
                                        label_config=config_with_choices("text_classification.xml", INTENTS))
    ls_client.projects.import_tasks(id=project.id, request=[{"text": r["text"]} for r in rows])
    tasks = sorted(ls_client.tasks.list(project=project.id, page_size=1000), key=lambda t: t.id)
    truth = {r["text"]: r["category"] for r in rows}

    def annotate(batch):
        for task in batch:
            ls_client.annotations.create(id=task.id, result=choice_result("intent", "text", [truth[task.data["text"]]]))

    env = {"LABELQUEUE_CLASSIFIER": "tests.slow_classifier:make", "PYTHONPATH": str(REPO),
           "LABELQUEUE_SELECT_AFTER_RETRAIN": "false"}
    start = lambda: start_backend(tmp_path, label_studio=label_studio, workers=1, env=env)
    force = {"action": "START_TRAINING", "project": {"id": project.id}}

    annotate(tasks[:60])
    backend = start()
    httpx.post(f"{backend.url}/webhook", json=force)
    first = wait_for(lambda: model_of(backend.url, project.id).get("model_version"), 60, "the first model")

    annotate(tasks[60:80])
    httpx.post(f"{backend.url}/webhook", json=force)
    wait_for(lambda: model_of(backend.url, project.id)["jobs"]["retrain"]["state"] == "running", 30,
             "the second retrain to start")
    time.sleep(1.5)  # inside the slow fit
    kill_9(backend.process.pid)
    backend.process.wait(timeout=10)

    project_dir = tmp_path / "data" / "projects" / str(project.id)
    assert json.loads((project_dir / "current.json").read_text())["version"] == first
    assert (project_dir / "retrain.pending").exists()

    restarted = start()
    try:
        assert httpx.post(f"{restarted.url}/setup", json={"project": f"{project.id}.0",
                                                          "schema": project.label_config}).json() == {"model_version": first}
        resumed = wait_for(lambda: (lambda m: m if m.get("model_version") not in (None, first) else None)(
            model_of(restarted.url, project.id)), 60, "the interrupted retrain to run again")
        assert resumed["model"]["n_examples"] == 80
        wait_for(lambda: not (project_dir / "retrain.pending").exists(), 10, "the pending marker to be cleared")
    finally:
        restarted.stop()
