"""``labelqueue quickstart --task ner`` as a newcomer meets it, in a real browser: the demo's span
project, the queue tab, the model's entities marked on the first queued sentence, and correcting
them the way a person does (click a region and press Backspace; pick a type, drag over words).

The quickstart, browser and person fixtures are the classification walkthrough's
(tests/test_e2e_browser.py); screenshots go to the test's temp dir.
"""
from __future__ import annotations

import json
import re

import httpx
import pytest

from tests.helpers import wait_for

# The fixtures are imported by name so pytest finds them here; the test's arguments use them.
from tests.test_e2e_browser import (  # noqa: F401
    REPO,
    browser,
    is_next_task,
    log_in_and_open_the_queue,
    person,
    quickstart,
    webhook_count,
)

pytestmark = pytest.mark.e2e

#: The bounding box of characters [start, end) of the sentence shown, counted across the text
#: nodes the labelling UI splits it into once regions are drawn.
CHARACTER_BOX = """([start, end]) => {
    const root = document.querySelector('.lsf-richtext');
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    const range = document.createRange();
    let seen = 0, node;
    while ((node = walker.nextNode())) {
        const length = node.textContent.length;
        if (start >= seen && start < seen + length) range.setStart(node, start - seen);
        if (end > seen && end <= seen + length) { range.setEnd(node, end - seen); break; }
        seen += length;
    }
    const box = range.getBoundingClientRect();
    return [box.left, box.top, box.right, box.bottom];
}"""


def demo_entities() -> dict[str, set[tuple[int, int, str]]]:
    lines = (REPO / "label_config" / "demo_ner_tasks.jsonl").read_text().splitlines()
    return {row["text"]: {(e["start"], e["end"], e["label"]) for e in row["demo_entities"]}
            for row in map(json.loads, lines)}


def mark(page, start: int, end: int, label: str) -> None:
    """What a person does to mark an entity: click its type, then drag across its words."""
    page.locator(".lsf-labels .lsf-label", has_text=re.compile(rf"^{label}")).first.click()
    left, top, right, bottom = page.evaluate(CHARACTER_BOX, [start, end])
    middle = (top + bottom) / 2
    page.mouse.move(left + 1, middle)
    page.mouse.down()
    page.mouse.move(right - 1, middle, steps=5)
    page.mouse.up()


def stored_spans(ls, task_id: int) -> list[set[tuple[int, int, str]]]:
    return [{(r["value"]["start"], r["value"]["end"], r["value"]["labels"][0]) for r in a.result}
            for a in ls.annotations.list(id=task_id)]


@pytest.mark.parametrize("quickstart", [["--task", "ner"]], indirect=True)
def test_newcomer_corrects_the_models_entities_on_the_first_queued_sentence(quickstart, person):  # noqa: F811
    page, connection = person.page, quickstart.connection
    ls, project_id = connection.client(), connection.project_id
    assert "with the entities the model found already marked" in quickstart.output
    queue = httpx.get(f"{connection.backend_url}/projects/{project_id}/queue", timeout=10).json()
    items = queue["items"]
    assert queue["model_version"] and len(items) == 20

    # The admin's view: the demo project and its queue tab, slices shown.
    log_in_and_open_the_queue(page, quickstart, project_id, title="labelqueue NER demo")
    page.locator("[data-testid=table-row]").nth(9).wait_for()
    person.shot("ner-01-queue-tab")

    # The annotator's: the first queued sentence comes with the model's entities marked.
    first, second = items[0], items[1]
    page.goto(quickstart.printed(r"Project:\s+(\S+)"))
    with page.expect_response(is_next_task) as served:
        page.get_by_role("button", name="Toggle open").click()
        page.get_by_text("Label Tasks As Displayed").click()
    task = served.value.json()
    assert task["id"] == first["task_id"]
    prediction = task["predictions"][0]
    assert prediction["model_version"] == queue["model_version"]
    assert [[r["value"]["start"], r["value"]["end"], r["value"]["labels"][0]] for r in prediction["result"]] \
        == first["predicted"]
    page.locator(".lsf-richtext").first.wait_for()
    regions = page.locator(".htx-highlight")
    wait_for(lambda: regions.count() == len(first["predicted"]), timeout=15,
             what=f"the {len(first['predicted'])} predicted entities to be marked")
    person.shot("ner-02-first-sentence-with-the-models-entities")

    # Corrected as a person would: every marked region removed, then the true entities marked.
    text = task["data"]["text"]
    truth = demo_entities()[text]
    while regions.count():
        regions.first.click()
        page.keyboard.press("Backspace")
    for start, end, label in sorted(truth):
        mark(page, start, end, label)
    wait_for(lambda: regions.count() == len(truth), timeout=15, what="the entities marked by the person")
    person.shot("ner-03-entities-corrected")
    webhooks_before = webhook_count(connection)
    with page.expect_response(is_next_task) as following:
        page.get_by_role("button", name="Submit current annotation").click()
    assert following.value.json()["id"] == second["task_id"]
    person.shot("ner-04-next-queued-sentence")
    assert stored_spans(ls, first["task_id"]) == [truth]
    wait_for(lambda: webhook_count(connection) > webhooks_before, timeout=30,
             what="Label Studio's webhook for the annotation in the backend's access log")

    # The admin's: the connection form shows the quickstart's extra params as JSON text, and
    # turning on agreement on control (README, "Agreement on a random sample") is one edit.
    page.goto(f"{connection.label_studio_url}/projects/{project_id}/settings/ml")
    page.get_by_text("labelqueue", exact=True).first.wait_for()
    page.locator("[class*=card] button, [class*=Card] button").last.click()
    page.get_by_text("Edit", exact=True).click()
    extra = page.locator("textarea[name=extra_params]")
    wait_for(extra.input_value, timeout=15, what="the connection form to show the extra params")
    extra.click()  # as a person does, once the dialog has opened (text filled in earlier is lost)
    shown = json.loads(extra.input_value())  # was "[object Object]": the params stored as an object
    assert shown["batch_size"] == 20 and "mix" in shown
    extra.fill(json.dumps({**shown, "control_overlap": 2}, indent=1))
    person.shot("ner-05-admin-turns-on-control-overlap")
    page.get_by_text("Validate and Save").click()
    wait_for(lambda: json.loads(ls.ml.list(project=project_id)[0].extra_params).get("control_overlap") == 2,
             timeout=15, what="the connection's extra params saved with control_overlap")
    assert page.get_by_text("Runtime error").count() == 0  # the backend's /setup accepted them
