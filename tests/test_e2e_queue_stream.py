"""The labelling stream against a real Label Studio and backend: a browser that loaded the queue
tab once keeps being served queued tasks while retrains and new batches happen behind it."""
from __future__ import annotations

import random

import httpx
import pytest
from label_studio_sdk.core.api_error import ApiError

from backend.labelstudio.queue_writer import QUEUE_TAB_TITLE, QUEUED, QUEUED_FIELD
from tests.helpers import INTENTS, choice_result, config_with_choices, wait_for
from tests.test_e2e_queue_writer import next_task_as_displayed, tab_state

pytestmark = pytest.mark.e2e

BATCH = 10
LABELS = 60


def test_tab_loaded_once_serves_a_queued_task_sixty_times_across_batches(backend, ls_client, banking77):
    rows = [row for row in banking77["train"] if row["category"] in INTENTS]
    random.Random(5).shuffle(rows)
    rows = rows[:200]
    truth = {row["text"]: row["category"] for row in rows}
    project = ls_client.projects.create(title="labelqueue e2e stream",
                                        label_config=config_with_choices("text_classification.xml", INTENTS))
    ls_client.projects.import_tasks(id=project.id, request=[{"text": row["text"]} for row in rows])
    ls_client.ml.create(url=backend.url, project=project.id, title="labelqueue", is_interactive=False,
                        extra_params={"batch_size": BATCH})

    def queue() -> dict:
        response = httpx.get(f"{backend.url}/projects/{project.id}/queue", timeout=10)
        return response.json() if response.status_code == 200 else {}

    assert httpx.post(f"{backend.url}/projects/{project.id}/select", timeout=10).status_code in (200, 202)
    wait_for(lambda: queue().get("cycle"), timeout=120, what="the first batch")
    tab_id = next(v.id for v in ls_client.views.list(project=project.id) if v.data.get("title") == QUEUE_TAB_TITLE)
    loaded = tab_state(ls_client, tab_id)  # the browser loads the tab once, before any batch change

    def queued_now() -> list[int]:
        return [t.id for t in ls_client.tasks.list(project=project.id, view=tab_id, fields="task_only")]

    labelled: set[int] = set()
    for step in range(LABELS):
        try:
            task = next_task_as_displayed(ls_client, project.id, tab_id, loaded)
        except ApiError as exc:
            pytest.fail(f"request {step + 1}: HTTP {exc.status_code} while {len(queued_now())} tasks are queued")
        assert task["data"].get(QUEUED_FIELD) == QUEUED, f"request {step + 1}: task {task['id']} is not queued"
        assert task["id"] not in labelled, f"request {step + 1}: task {task['id']} was served again"
        # Labelling the last queued task before the next batch is written would empty the queue
        # for real (not a broken stream): a person would wait for the next batch, so does the test.
        # Tasks this person labelled already do not count: a task annotated while the writer
        # tags it is listed as not yet completed until the writer restores its counters at the
        # end of its write (task_counters.py), but is never served to the same person again.
        wait_for(lambda: len(set(queued_now()) - labelled) > 1, timeout=180,
                 what=f"a new batch after {len(labelled)} labels")
        ls_client.annotations.create(id=task["id"], result=choice_result("intent", "text", [truth[task["data"]["text"]]]))
        labelled.add(task["id"])

    assert int(queue()["cycle"]) >= 1 + LABELS // BATCH - 1, "new batches were composed while labelling"
