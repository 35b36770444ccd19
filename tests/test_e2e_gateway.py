"""The gateway's reads against a real Label Studio 1.23: never a page past the last, and every
annotated task, whatever its stored annotation counter says.

Label Studio answers a page past the end with 404 and logs an ERROR traceback ("Invalid page")
each time. The SDK's pager (2.1.2) asks for one after every non-empty page and hides the 404;
the gateway stops at a short page, or once the ``total`` Label Studio reports has come back.
Every task-list request is recorded here with its page number and status.
"""
from __future__ import annotations

import httpx
import pytest
from label_studio_sdk import LabelStudio

from backend.labelstudio import gateway as gateway_module
from backend.labelstudio.gateway import Connection, LabelStudioGateway
from backend.labelstudio.queue_writer import READ_CHUNK
from tests.helpers import choice_result

pytestmark = pytest.mark.e2e

CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Choices name="intent" toName="text"><Choice value="yes"/><Choice value="no"/></Choices>
</View>"""


class Recorder:
    """An SDK client whose every task-list request is recorded as ``(page, status)``."""

    def __init__(self, connection: Connection):
        self.pages: list[tuple[int, int]] = []
        http = httpx.Client(timeout=120, event_hooks={"response": [self.record]})
        self.client = LabelStudio(base_url=connection.url, api_key=connection.api_key, httpx_client=http)

    def record(self, response: httpx.Response) -> None:
        if response.request.url.path.rstrip("/").endswith("/api/tasks"):
            self.pages.append((int(response.request.url.params.get("page", 1)), response.status_code))


class RecordingGateway(LabelStudioGateway):
    def __init__(self, connection: Connection, project_id: int):
        super().__init__(connection, project_id)
        self.recorder = Recorder(connection)

    def _client(self) -> LabelStudio:
        return self.recorder.client


@pytest.fixture()
def project(ls_client, label_studio):
    """Seven tasks, four of them annotated; a recording gateway to it."""
    created = ls_client.projects.create(title="gateway: paged reads", label_config=CONFIG)
    ls_client.projects.import_tasks(id=created.id, request=[{"text": f"task {i}"} for i in range(7)])
    ids = sorted(t.id for t in ls_client.tasks.list(project=created.id, include="id"))
    for task_id in ids[:4]:
        ls_client.annotations.create(id=task_id, result=choice_result("intent", "text", ["yes"]))
    return RecordingGateway(Connection(label_studio.url, label_studio.token), created.id), ids


def test_the_sdk_pager_asks_for_a_page_past_the_last(project):
    """Why the gateway pages by itself: the recorder sees the SDK's extra request and its 404."""
    gateway, ids = project
    assert len(list(gateway.recorder.client.tasks.list(project=gateway.project_id, page_size=7))) == 7
    assert gateway.recorder.pages == [(1, 200), (2, 404)]


def test_paged_reads_never_ask_for_a_page_past_the_last(project, monkeypatch):
    gateway, ids = project
    monkeypatch.setattr(gateway_module, "PAGE_SIZE", 2)  # four annotated tasks: exactly two full pages
    monkeypatch.setattr(gateway_module, "LIGHT_PAGE_SIZE", 3)  # seven tasks: pages of 3, 3 and 1

    assert sorted(t["id"] for t in gateway.annotated_tasks()) == ids[:4]
    assert gateway.recorder.pages == [(1, 200), (2, 200)]

    gateway.recorder.pages.clear()
    assert [t["id"] for t in gateway.tasks_after(0)] == ids
    assert gateway.recorder.pages == [(1, 200), (2, 200), (3, 200)]

    gateway.recorder.pages.clear()
    assert sorted(gateway.task_ids()) == ids and gateway.recorder.pages == [(1, 200)]

    gateway.recorder.pages.clear()
    assert sorted(gateway.tasks_data(ids, chunk=len(ids))) == ids  # one chunk, exactly one full page
    assert sorted(gateway.tasks_data(ids, chunk=READ_CHUNK)) == ids
    assert gateway.recorder.pages == [(1, 200), (1, 200)]

    gateway.recorder.pages.clear()
    assert gateway.tasks_after(ids[-1]) == [] and gateway.recorder.pages == [(1, 200)]


def test_an_annotated_task_whose_counter_was_overwritten_is_still_read(project, ls_client):
    """A task update that overlaps an annotation's creation writes back the task's old
    ``total_annotations`` (``task_counters.py``); training must still see that label, and a
    task with several annotations once."""
    gateway, ids = project
    ls_client.annotations.create(id=ids[0], result=choice_result("intent", "text", ["no"]))
    gateway.set_counters(ids[1], 0, 0, False)  # as the overlapping save leaves it

    labelled = {t.task_id: t.labels for t in gateway.labelled(gateway.spec())}

    assert sorted(labelled) == ids[:4] and labelled[ids[1]] == ("yes",)
