"""A span-labelling (NER) project against a real Label Studio 1.23: annotate spans, retrain, get spans back.

One scenario in the order an admin and annotators live it, on the in-process backend: a project
from the shipped ``label_config/ner.xml``, sentences written for the purpose (the entity types of
that config), span annotations through the SDK as the labelling UI stores them, the webhook
retrain, Label Studio's own "Retrieve predictions" storing ``labels`` regions, the queue written
into the project, and the report.
"""
from __future__ import annotations

import random
from pathlib import Path

import httpx
import pytest

from tests.helpers import backend_metrics, wait_for

pytestmark = pytest.mark.e2e

NER = (Path(__file__).resolve().parents[1] / "label_config" / "ner.xml").read_text()
PEOPLE = ["Maria Lopez", "John Smith", "Ana Silva", "Wei Chen", "Olga Petrova", "Tom Baker", "Sara Khan"]
ORGS = ["Acme Corp", "Globex", "Initech", "Umbrella Labs", "Hooli", "Stark Industries"]
PLACES = ["Berlin", "Lyon", "Boston", "Madrid", "Oslo", "Nairobi", "Osaka"]
PRODUCTS = ["X200", "Model T9", "RouterMax", "Z-Phone", "AirDesk"]
DATES = ["3 March", "Monday", "next week", "12 May", "Friday"]
TEMPLATES = ["{PERSON} from {ORG} ordered a {PRODUCT} for the {LOCATION} office on {DATE} .",
             "{ORG} will ship the {PRODUCT} to {LOCATION} by {DATE} .",
             "Please ask {PERSON} whether {ORG} still sells the {PRODUCT} .",
             "{PERSON} moved to {LOCATION} on {DATE} and joined {ORG} .",
             "Is the {PRODUCT} in stock in {LOCATION} ?"]
LABELLED = 30


def sentence(rng: random.Random) -> tuple[str, list[tuple[int, int, str]]]:
    """One sentence and its spans, built left to right so offsets are exact."""
    template = rng.choice(TEMPLATES)
    pools = {"PERSON": PEOPLE, "ORG": ORGS, "LOCATION": PLACES, "PRODUCT": PRODUCTS, "DATE": DATES}
    text, spans, rest = "", [], template
    while "{" in rest:
        before, _, rest = rest.partition("{")
        label, _, rest = rest.partition("}")
        text += before
        value = rng.choice(pools[label])
        spans.append((len(text), len(text) + len(value), label))
        text += value
    return text + rest, spans


def span_result(text: str, spans) -> list[dict]:
    """Regions as Label Studio's labelling UI stores them for ``<Labels>`` on ``<Text>``."""
    return [{"id": f"r{i}", "from_name": "label", "to_name": "text", "type": "labels",
             "value": {"start": a, "end": b, "text": text[a:b], "labels": [label]}} for i, (a, b, label) in enumerate(spans)]


def test_ner_project_gets_span_predictions_queue_and_report(label_studio, backend, ls_client):
    rng = random.Random(16)
    rows, seen = [], set()
    while len(rows) < 90:
        text, spans = sentence(rng)
        if text not in seen:
            seen.add(text)
            rows.append((text, spans))
    truth = dict(rows)

    # Admin: project from the shipped config, sentences imported, backend connected.
    project = ls_client.projects.create(title="labelqueue e2e ner", label_config=NER)
    ls_client.projects.import_tasks(id=project.id, request=[{"text": text} for text, _ in rows])
    ls_client.ml.create(url=backend.url, project=project.id, title="labelqueue", is_interactive=False)
    tasks = sorted(ls_client.tasks.list(project=project.id, page_size=1000), key=lambda t: t.id)
    assert len(tasks) == len(rows)

    # Annotators: span annotations (one webhook each).
    labelled = tasks[:LABELLED]
    for task in labelled:
        text = task.data["text"]
        ls_client.annotations.create(id=task.id, result=span_result(text, truth[text]), lead_time=6.0)

    # (1) The webhooks retrained a span model on every annotated sentence.
    def trained_on_all():
        model = backend_metrics(backend.url)["projects"].get(str(project.id), {}).get("model") or {}
        return model if model.get("n_examples") == LABELLED else None

    model = wait_for(trained_on_all, timeout=180, what=f"a span model trained on {LABELLED} sentences")
    assert set(model["classes"]) == {"PERSON", "ORG", "LOCATION", "PRODUCT", "DATE"}  # entity types, not spans
    version = backend_metrics(backend.url)["projects"][str(project.id)]["model_version"]

    # (2) Label Studio's "Retrieve predictions" stores labels regions the labelling UI renders.
    unlabelled = tasks[LABELLED:]
    ls_client.actions.create(id="retrieve_tasks_predictions", project=project.id,
                             selected_items={"all": False, "included": [t.id for t in unlabelled]})
    stored = {p.task: p for p in ls_client.predictions.list(project=project.id) if p.model_version == version}
    assert len(stored) == len(unlabelled), f"{len(stored)} of {len(unlabelled)} tasks got a {version} prediction"
    found = right = 0
    for task in unlabelled:
        prediction, text = stored[task.id], task.data["text"]
        assert 0.0 <= prediction.score <= 1.0
        for region in prediction.result:
            assert (region["from_name"], region["to_name"], region["type"]) == ("label", "text", "labels")
            value = region["value"]
            assert text[value["start"]:value["end"]] == value["text"] and len(value["labels"]) == 1
            found += 1
            right += (value["start"], value["end"], value["labels"][0]) in truth[text]
    assert found and right / found > 0.8, f"{right} of {found} predicted spans match the sentences' spans"

    # (3) The queue was written into the project: tasks tagged with their slice.
    def queue():
        response = httpx.get(f"{backend.url}/projects/{project.id}/queue", timeout=10)
        return response.json() if response.status_code == 200 and response.json().get("items") else None

    written = wait_for(queue, timeout=180, what="the first active-learning queue")
    first = written["items"][0]
    assert ls_client.tasks.get(id=first["task_id"]).data.get("labelqueue_slice") == first["slice"]
    # The first batch was composed while the annotations were still arriving; a batch asked for
    # once all of them are in holds none of the labelled sentences.
    httpx.post(f"{backend.url}/projects/{project.id}/select", timeout=10)
    written = wait_for(lambda: (found := queue()) and found["cycle"] > written["cycle"] and found, timeout=180,
                       what="a batch composed after every annotation")
    assert not {item["task_id"] for item in written["items"]} & {t.id for t in labelled}

    # (4) The report of the span project is measured and served.
    httpx.post(f"{backend.url}/projects/{project.id}/measure", timeout=10)

    def report():
        response = httpx.get(f"{backend.url}/projects/{project.id}/report", timeout=30)
        return response if response.status_code == 200 else None

    page = wait_for(report, timeout=180, what="the project's report")
    assert "labelqueue" in page.text
