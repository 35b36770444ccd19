"""Selection against a real Label Studio: after a retrain the queue tab holds a fresh mixed batch."""
from __future__ import annotations

import json
import random

import httpx
import pytest

from tests.helpers import INTENTS, backend_metrics, choice_result, config_with_choices, wait_for

pytestmark = pytest.mark.e2e

BATCH = 20


def test_retrain_writes_a_mixed_batch_into_the_queue_tab(label_studio, backend, ls_client, banking77):
    rng = random.Random(11)
    rows = [row for row in banking77["train"] if row["category"] in INTENTS]
    rng.shuffle(rows)
    rows = rows[:300]
    tasks_data = [{"text": row["text"], "source": "production_error" if i < 2 else "web"}
                  for i, row in enumerate(rows)]
    truth = {row["text"]: row["category"] for row in rows}

    config = config_with_choices("text_classification.xml", INTENTS)
    project = ls_client.projects.create(title="labelqueue e2e selection", label_config=config)
    ls_client.projects.import_tasks(id=project.id, request=tasks_data)
    ls_client.ml.create(url=backend.url, project=project.id, title="labelqueue", is_interactive=False,
                        extra_params={"batch_size": BATCH})
    tasks = sorted(ls_client.tasks.list(project=project.id, page_size=1000), key=lambda t: t.id)
    field_flagged = {t.id for t in tasks if t.data["source"] == "production_error"}
    api_flagged = tasks[-1].id
    response = httpx.post(f"{backend.url}/projects/{project.id}/failures", json={"task_ids": [api_flagged]})
    assert response.status_code == 200 and response.json()["added"] == 1
    flagged = field_flagged | {api_flagged}

    # Annotators label a seed set (never the flagged tasks); every annotation is a webhook.
    seed = [t for t in tasks[2:-1] if t.id not in flagged][:48]
    for task in seed:
        ls_client.annotations.create(id=task.id, lead_time=3.0,
                                     result=choice_result("intent", "text", [truth[task.data["text"]]]))

    def trained_on_seed():
        metrics = backend_metrics(backend.url)["projects"].get(str(project.id), {})
        return metrics["model_version"] if (metrics.get("model") or {}).get("n_examples") == len(seed) else None

    # The seed labels are not the queue's tasks, so the batch is not mostly labelled and a
    # retrain does not replace it: ask for a batch from the model trained on every label.
    version = wait_for(trained_on_seed, timeout=180, what="a model trained on every label")
    assert httpx.post(f"{backend.url}/projects/{project.id}/select").status_code in (200, 202)

    def settled_queue():
        queue = httpx.get(f"{backend.url}/projects/{project.id}/queue").json()
        return queue if queue.get("model_version") == version else None

    queue = wait_for(settled_queue, timeout=180, what="a queue selected by the model trained on every label")
    items = queue["items"]
    labelled = {t.id for t in seed}

    # The batch: the requested size, ranks 1..N, no labelled task, every slice present.
    assert len(items) == BATCH
    assert [item["rank"] for item in items] == list(range(1, BATCH + 1))
    assert len({item["task_id"] for item in items}) == BATCH
    assert not labelled & {item["task_id"] for item in items}
    slices = [item["slice"] for item in items]
    assert {"uncertain", "diverse", "failure", "control"} <= set(slices)
    assert slices.count("uncertain") >= slices.count("diverse") >= 1

    # Flagged production failures are all queued, in the failure slice with their source recorded
    # (a flagged task may also be drawn by the uniform control slice, which comes first).
    failure_items = [item for item in items if item["slice"] == "failure"]
    control_ids = {item["task_id"] for item in items if item["slice"] == "control"}
    assert {item["task_id"] for item in failure_items} == flagged - control_ids
    assert all(item["reason"]["source"] == "flagged" for item in failure_items)

    # The tab lists exactly the batch, in rank order, with slice tags in the task data.
    tab = next(v for v in ls_client.views.list(project=project.id) if v.data.get("title") == "Active learning queue")
    listed = list(ls_client.tasks.list(project=project.id, view=tab.id, page_size=100))
    assert [t.id for t in listed] == [item["task_id"] for item in items]
    assert [t.data["labelqueue_slice"] for t in listed] == slices
    assert {t.data["labelqueue_cycle"] for t in listed} == {queue["cycle"]}
    original = {t.id: t.data for t in tasks}
    for task in listed:
        kept = {k: v for k, v in task.data.items() if not k.startswith("labelqueue_")}
        assert kept == original[task.id]

    # Only the current batch carries tags: earlier cycles' unlabelled tasks were cleared.
    tagged = [t for t in ls_client.tasks.list(project=project.id, page_size=1000)
              if "labelqueue_cycle" in t.data and t.id not in labelled]
    assert sorted(t.id for t in tagged) == sorted(item["task_id"] for item in items)
    print(f"\ncycle {queue['cycle']}: {json.dumps(queue['counts'])}")
