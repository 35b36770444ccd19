"""Shared steps of the end-to-end tests: building a banking77 project in a real Label Studio."""
from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

import httpx

from backend.layout import PENDING_RETRAIN, RUNNING_RETRAIN
from backend.local.quickstart_inputs import config_with_labels

REPO = Path(__file__).resolve().parents[1]
T = TypeVar("T")

#: Eight banking77 intents: enough classes to make chance low (1/8), few enough that ~20 labels
#: per class train a useful model within the test's time budget.
INTENTS = ("card_arrival", "lost_or_stolen_card", "exchange_rate", "balance_not_updated_after_bank_transfer",
           "cash_withdrawal_charge", "pin_blocked", "top_up_failed", "request_refund")


def config_with_choices(template: str, choices: Iterable[str]) -> str:
    """The shipped config ``template`` (single- or multi-label) with our intents as its choices,
    built by the same function the quickstart uses for ``--labels``."""
    return config_with_labels(list(choices), multilabel=template.startswith("multi_label"))


def choice_result(spec_from: str, spec_to: str, labels: list[str]) -> list[dict]:
    return [{"from_name": spec_from, "to_name": spec_to, "type": "choices", "value": {"choices": labels}}]


def label_studio_down(message: str = "connection refused") -> None:
    """What a job sees when Label Studio is down: the gateway's translation of a refused connection."""
    from backend.labelstudio.errors import translated

    with translated("reading the labelling config of project 1"):
        raise httpx.ConnectError(message)


def wait_for(probe: Callable[[], T | None], timeout: float, what: str, interval: float = 0.25) -> T:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` after ``timeout`` s
    (the failure report then shows the servers' log tails, see ``conftest.py``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def backend_metrics(url: str) -> dict:
    return httpx.get(f"{url}/metrics", timeout=10).json()


#: A backend with the slow classifier (``tests/slow_classifier.py``) and no selection after retrains.
SLOW_ENV = {"LABELQUEUE_CLASSIFIER": "tests.slow_classifier:make", "PYTHONPATH": str(REPO),
            "LABELQUEUE_SELECT_AFTER_RETRAIN": "false"}


def fit_started(marker: Path, examples: int) -> bool:
    """The slow fit on ``examples`` labels has begun (it sleeps for seconds before fitting)."""
    try:
        return int(marker.read_text() or 0) == examples
    except (OSError, ValueError):
        return False


def slow_project(ls_client, banking77, title: str, seed: int):
    """A 200-task banking77 project; returns it, its tasks by id, and ``annotate(tasks)``."""
    rows = [r for r in banking77["train"] if r["category"] in INTENTS]
    random.Random(seed).shuffle(rows)
    rows = rows[:200]
    config = config_with_choices("text_classification.xml", INTENTS)
    project = ls_client.projects.create(title=title, label_config=config)
    ls_client.projects.import_tasks(id=project.id, request=[{"text": r["text"]} for r in rows])
    tasks = sorted(ls_client.tasks.list(project=project.id, page_size=1000), key=lambda t: t.id)
    truth = {r["text"]: r["category"] for r in rows}

    def annotate(batch):
        for task in batch:
            ls_client.annotations.create(id=task.id, result=choice_result("intent", "text", [truth[task.data["text"]]]))

    return project, tasks, annotate


def connect_backend(backend_url: str, project) -> None:
    """What Label Studio does when an admin connects the backend to a project: ``/setup``,
    which makes the project exist on the backend (webhooks for unknown projects get 404)."""
    import httpx

    response = httpx.post(f"{backend_url}/setup", json={"project": f"{project.id}.0", "schema": project.label_config},
                          timeout=30)
    assert response.status_code == 200, response.text


def retrain_markers(project_dir: Path) -> list[str]:
    """The markers saying a retrain is still owed now (pending, or taken up and not finished);
    not the check a retrain leaves for the end of the quiet period (``"trailing"``)."""
    def owed(name: str) -> bool:
        try:
            marker = json.loads((project_dir / name).read_text())
        except FileNotFoundError:
            return False
        return not (name == PENDING_RETRAIN and marker.get("trailing"))
    return [name for name in (PENDING_RETRAIN, RUNNING_RETRAIN) if owed(name)]
