"""The queue writer against a real Label Studio 1.23: task tags, one tab, served in rank order.

Each test builds its own small project. "Label Tasks As Displayed" is reproduced the way the Data
Manager's frontend sends it: the ``next_task`` action with the tab's filters and ordering in the
body and no row selection.
"""
from __future__ import annotations

import json
import random
import threading
from typing import Any

import pytest
from label_studio_sdk import LabelStudio
from label_studio_sdk.core.api_error import ApiError

from backend.labelstudio.errors import LabelStudioRefused
from backend.labelstudio.gateway import Connection, LabelStudioGateway
from backend.labelstudio.queue_writer import (
    CYCLE_FIELD,
    QUEUE_FIELDS,
    QUEUE_TAB_TITLE,
    RANK_FIELD,
    SLICE_FIELD,
    StaleBatchError,
    write_queue,
)
from selection.batch import BatchItem
from tests.helpers import choice_result

pytestmark = pytest.mark.e2e

CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Choices name="intent" toName="text"><Choice value="yes"/><Choice value="no"/></Choices>
</View>"""


def original_data(index: int) -> dict[str, Any]:
    """Task data with the shapes a real import carries: unicode, nesting, nulls, floats, bools."""
    return {
        "text": f"tâche {index}: carte bloquée — 卡被锁 🚫",
        "index": index,
        "score": 0.25 + index,
        "flag": index % 2 == 0,
        "empty": "",
        "source": {"dataset": "banking77", "tags": ["pin", {"nested": [1, 2.5, None, True]}]},
        "url": "s3://bucket/ünïcode/file.txt",
    }


def make_project(ls_client: LabelStudio, n_tasks: int, title: str) -> tuple[int, list[int]]:
    """A text project with ``n_tasks`` imported tasks; their ids, in import order."""
    project = ls_client.projects.create(title=title, label_config=CONFIG)
    rows = [original_data(index) for index in range(n_tasks)]
    ls_client.projects.import_tasks(id=project.id, request=rows)
    tasks = list(ls_client.tasks.list(project=project.id, fields="task_only", resolve_uri=False))
    assert len(tasks) == n_tasks
    return project.id, [task.id for task in sorted(tasks, key=lambda task: task.data["index"])]


@pytest.fixture()
def gateway(label_studio):
    """The gateway of a project, reaching Label Studio as ``ls_client`` does."""
    return lambda project_id: LabelStudioGateway(Connection(label_studio.url, label_studio.token), project_id)


def batch(task_ids: list[int], slice_name: str = "uncertain") -> list[BatchItem]:
    return [
        BatchItem(task_id=task_id, slice=slice_name, rank=rank, reason={"score": 0.5})
        for rank, task_id in enumerate(task_ids, start=1)
    ]


def task_data(ls_client: LabelStudio, project_id: int) -> dict[int, dict[str, Any]]:
    tasks = ls_client.tasks.list(project=project_id, fields="task_only", resolve_uri=False)
    return {task.id: task.data for task in tasks}


def listed(ls_client: LabelStudio, project_id: int, tab_id: int) -> list[int]:
    tasks = ls_client.tasks.list(project=project_id, view=tab_id, fields="task_only")
    return [task.id for task in tasks]


def tab_state(ls_client: LabelStudio, tab_id: int) -> dict[str, Any]:
    """The tab as a browser holds it after loading the Data Manager."""
    return ls_client.views.get(id=str(tab_id)).data


def next_task_as_displayed(ls_client: LabelStudio, project_id: int, tab_id: int,
                           tab: dict[str, Any] | None = None) -> dict[str, Any]:
    """What "Label Tasks As Displayed" asks for: the tab's filters and ordering, no selection.

    ``tab``: the tab state the browser loaded earlier (default: the tab as saved now).
    """
    tab = tab or tab_state(ls_client, tab_id)
    response = ls_client.actions.with_raw_response.create(
        id="next_task",
        project=project_id,
        filters=tab["filters"],
        ordering=tab["ordering"],
        request_options={"additional_query_parameters": {"tabID": tab_id}},
    )
    return response.response.json()


def exact(value: Any) -> str:
    """Canonical JSON, so 1 vs 1.0 or True vs 1 count as different."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def test_queue_tab_and_label_tasks_as_displayed_follow_rank_order(ls_client, gateway):
    project_id, ids = make_project(ls_client, 20, "queue writer: rank order")
    order = random.Random(3).sample(ids, 14)

    result = write_queue(gateway(project_id), batch(order), cycle=1)

    assert listed(ls_client, project_id, result.tab_id) == order
    served = []
    for _ in order:
        task = next_task_as_displayed(ls_client, project_id, result.tab_id)
        served.append(task["id"])
        ls_client.annotations.create(id=task["id"], result=choice_result("intent", "text", ["yes"]))
    assert served == order
    with pytest.raises(ApiError) as finished:
        next_task_as_displayed(ls_client, project_id, result.tab_id)
    assert finished.value.status_code == 404


def test_rank_order_is_numeric_past_nine(ls_client, gateway):
    project_id, ids = make_project(ls_client, 12, "queue writer: ranks past nine")
    order = list(reversed(ids))

    result = write_queue(gateway(project_id), batch(order), cycle=1)

    assert listed(ls_client, project_id, result.tab_id) == order
    data = task_data(ls_client, project_id)
    stored = [data[task_id][RANK_FIELD] for task_id in order]
    assert [int(rank) for rank in stored] == list(range(1, 13))
    # PostgreSQL compares data fields as text: text order must be rank order too.
    text = [str(rank) for rank in stored]
    assert sorted(text) == text


def test_second_cycle_clears_leavers_retags_movers_and_reuses_the_tab(ls_client, gateway):
    project_id, ids = make_project(ls_client, 16, "queue writer: second cycle")
    first = ids[:8]
    first_result = write_queue(gateway(project_id), batch(first), cycle=1)
    ls_client.annotations.create(id=first[0], result=choice_result("intent", "text", ["no"]))
    second = [ids[5], ids[12], ids[3], ids[13], ids[14], ids[15], ids[8], ids[7]]

    result = write_queue(gateway(project_id), batch(second, "diverse"), cycle=2, previous=first)

    leavers = set(first) - set(second)
    assert result.tab_id == first_result.tab_id
    assert result.cleared == len(leavers)
    titles = [(tab.data or {}).get("title") for tab in ls_client.views.list(project=project_id)]
    assert titles.count(QUEUE_TAB_TITLE) == 1
    assert listed(ls_client, project_id, result.tab_id) == second
    data = task_data(ls_client, project_id)
    assert all(not set(QUEUE_FIELDS) & data[task_id].keys() for task_id in leavers)
    for rank, task_id in enumerate(second, start=1):
        tags = data[task_id]
        assert (tags[SLICE_FIELD], int(tags[RANK_FIELD]), tags[CYCLE_FIELD]) == ("diverse", rank, 2)


def test_other_task_data_survives_tagging_and_clearing(ls_client, gateway):
    project_id, ids = make_project(ls_client, 6, "queue writer: data preserved")
    queued, later = ids[:4], ids[4:]

    write_queue(gateway(project_id), batch(queued), cycle=1)
    tagged = task_data(ls_client, project_id)
    write_queue(gateway(project_id), batch(later), cycle=2, previous=queued)
    cleared = task_data(ls_client, project_id)

    for index, task_id in enumerate(queued):
        untagged = {key: value for key, value in tagged[task_id].items() if key not in QUEUE_FIELDS}
        assert set(QUEUE_FIELDS) <= tagged[task_id].keys()
        assert exact(untagged) == exact(original_data(index))
        assert exact(cleared[task_id]) == exact(original_data(index))


def test_batch_task_missing_from_project_raises_a_stale_batch_error(ls_client, gateway):
    project_id, ids = make_project(ls_client, 2, "queue writer: missing task")

    with pytest.raises(StaleBatchError, match="has no task"):
        write_queue(gateway(project_id), batch([ids[0], max(ids) + 10_000]), cycle=1)

    assert not any(set(QUEUE_FIELDS) & data.keys() for data in task_data(ls_client, project_id).values())


def test_rejected_token_is_refused_naming_the_setting_not_retried(label_studio):
    rejected = LabelStudioGateway(Connection(label_studio.url, "0" * 40), 1)

    with pytest.raises(LabelStudioRefused, match="HTTP 401.*LABEL_STUDIO_API_KEY"):
        write_queue(rejected, batch([1]), cycle=1)


def test_tab_loaded_before_a_batch_change_serves_the_new_batch(ls_client, gateway):
    project_id, ids = make_project(ls_client, 12, "queue writer: stale tab state")
    first = write_queue(gateway(project_id), batch(ids[:4]), cycle=1)
    loaded = tab_state(ls_client, first.tab_id)

    write_queue(gateway(project_id), batch(ids[4:8]), cycle=2, previous=ids[:4])

    served = next_task_as_displayed(ls_client, project_id, first.tab_id, loaded)
    assert served["id"] == ids[4]
    assert listed(ls_client, project_id, first.tab_id) == ids[4:8]


def test_labelled_tasks_leave_the_tab_but_keep_their_tags(ls_client, gateway):
    project_id, ids = make_project(ls_client, 6, "queue writer: labelled leave the tab")
    result = write_queue(gateway(project_id), batch(ids[:3]), cycle=1)

    ls_client.annotations.create(id=ids[0], result=choice_result("intent", "text", ["yes"]))

    assert listed(ls_client, project_id, result.tab_id) == ids[1:3]
    assert set(QUEUE_FIELDS) <= task_data(ls_client, project_id)[ids[0]].keys()


def test_every_next_task_during_a_write_is_a_queued_task(ls_client, gateway):
    """Each PATCH of a batch write is followed by a "Label Tasks As Displayed" request with the
    tab state from before the write: the server must answer with a tagged task every time."""
    project_id, ids = make_project(ls_client, 14, "queue writer: mid-write")
    first = write_queue(gateway(project_id), batch(ids[:6]), cycle=1)
    loaded = tab_state(ls_client, first.tab_id)
    second = [ids[3], *ids[8:14]]  # one task stays queued (at a new rank), five leave, six join
    served: list[tuple[int, dict]] = []

    class Watching(LabelStudioGateway):
        """The project's gateway, with a next-task request after every task update."""

        def update_data(self, task_id, data, outage=None):
            super().update_data(task_id, data, outage)
            task = next_task_as_displayed(ls_client, project_id, first.tab_id, loaded)
            with lock:
                served.append((task["id"], task["data"]))

    lock = threading.Lock()
    write_queue(Watching(gateway(project_id).connection, project_id), batch(second), cycle=2,
                previous=ids[:6])

    assert len(served) == len(second) + 5  # ids[3] moves to rank 1; five leavers are cleared
    assert all(data.get(RANK_FIELD) for _, data in served)
    assert {task_id for task_id, _ in served} <= set(ids[:6]) | set(second)
    assert next_task_as_displayed(ls_client, project_id, first.tab_id, loaded)["id"] == second[0]


def test_a_task_annotated_during_its_write_leaves_the_tab(ls_client, gateway):
    """Label Studio's ``PATCH`` saves the whole task row: an annotation submitted while the
    writer tags that task loses its counter update (seen in CI: ``total_annotations`` 0 and
    ``is_labeled`` false on an annotated task, still served by the tab). Here the annotation
    comes right after the task's tag and its counters are then set to what such a save leaves;
    the write must end with them restored."""
    project_id, ids = make_project(ls_client, 6, "queue writer: annotated mid-write")
    annotated = ids[1]

    class AnnotatedMidWrite(LabelStudioGateway):
        def update_data(self, task_id, data, outage=None):
            super().update_data(task_id, data, outage)
            if task_id == annotated:
                ls_client.annotations.create(id=task_id, result=choice_result("intent", "text", ["no"]))
                self.set_counters(task_id, 0, 0, False)  # the row as the overlapping save wrote it

    result = write_queue(AnnotatedMidWrite(gateway(project_id).connection, project_id), batch(ids[:4]), cycle=1)

    task = ls_client.tasks.get(id=str(annotated))
    assert (task.total_annotations, task.is_labeled, result.repaired) == (1, True, 1)
    assert listed(ls_client, project_id, result.tab_id) == [ids[0], ids[2], ids[3]]
