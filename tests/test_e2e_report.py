"""Loop measurement against a real Label Studio: two annotators, overlap on control, three cycles.

The scenario runs once per module on its own backend (two gunicorn workers sharing the SQLite
file). Annotations do not trigger retrains there (``LABELQUEUE_MIN_NEW_ANNOTATIONS`` is huge and
trailing labels are off);
each cycle is started with ``POST /train`` and then ``POST /projects/<id>/select`` (selection
after retrains is off) after a round of labelling, so what every cycle's
model was trained on, and so every per-cycle figure, is known exactly:

* seed: annotator 1 labels 3 tasks per intent -> ``/train`` -> cycle 1;
* round 1: both annotators label cycle 1's control tasks (annotator 2 disagrees on the first,
  and labels the last only after cycle 2 was written), annotator 1 labels 8 other queued tasks
  -> cycle 2;
* round 2: the same on cycle 2's queue, all agreeing -> cycle 3; then production feedback.

The report is then opened in Debian's chromium (Playwright, ``executable_path``): it must load
without console errors and show every section. The screenshot is kept in ``tests/output/``.
"""
from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from sklearn.metrics import cohen_kappa_score

from backend.local.label_studio_server import LocalServer, StartupError, start_backend
from backend.measure.report import SECTIONS
from tests.helpers import INTENTS, backend_metrics, choice_result, config_with_choices, wait_for

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "tests" / "output"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
BATCH = 20
MIX = {"uncertain": 0.55, "diverse": 0.15, "failure": 0.1, "control": 0.2}
SECONDS = {1: 5.0, 2: 7.0}  # lead time of each annotator's annotations
OTHERS_PER_ROUND = 8
FEEDBACK = {2: [("card_arrival", "card_arrival"), ("pin_blocked", "pin_blocked"), ("exchange_rate", "exchange_rate"),
                ("top_up_failed", "request_refund")],
            3: [("card_arrival", "card_arrival"), ("pin_blocked", "pin_blocked"), ("request_refund", "request_refund")]}


@dataclass
class Scenario:
    backend: LocalServer
    data_dir: Path
    project_id: int
    users: dict[int, int]  # annotator number -> Label Studio user id
    truth: dict[int, str]
    given: dict[int, dict[int, str]] = field(default_factory=dict)  # task -> {annotator number: label}
    queues: list[dict] = field(default_factory=list)  # GET /queue after each cycle
    held: int = 0
    held_data_after_cycle_2: dict = field(default_factory=dict)

    def annotate(self, ls_client, task_id: int, annotator: int, label: str) -> None:
        ls_client.annotations.create(id=task_id, result=choice_result("intent", "text", [label]),
                                     completed_by=self.users[annotator], lead_time=SECONDS[annotator])
        self.given.setdefault(task_id, {})[annotator] = label

    def resolved(self, task_id: int) -> str:
        """Label Studio's majority; a tie goes to the later annotation, annotator 2's here."""
        labels = self.given[task_id]
        return labels.get(2, labels[1])

    def measurement(self) -> dict | None:
        response = httpx.get(f"{self.backend.url}/projects/{self.project_id}/measurement", timeout=10)
        return response.json() if response.status_code == 200 else None

    def next_cycle(self, cycle: int) -> dict:
        """Start a cycle with a forced retrain and a batch on demand (a retrain alone replaces
        only a mostly labelled batch); wait until it is written and measured."""
        def version() -> str | None:
            return backend_metrics(self.backend.url)["projects"].get(str(self.project_id), {}).get("model_version")

        before = version()
        response = httpx.post(f"{self.backend.url}/train", json={"project": self.project_id}, timeout=10)
        assert response.status_code == 200, response.text
        wait_for(lambda: version() not in (None, before), timeout=120, what=f"the model of cycle {cycle}")
        response = httpx.post(f"{self.backend.url}/projects/{self.project_id}/select", timeout=10)
        assert response.status_code == 202, response.text
        wait_for(lambda: (self.measurement() or {}).get("totals", {}).get("cycles") == cycle, timeout=120,
                 what=f"cycle {cycle} to be written and measured")
        queue = httpx.get(f"{self.backend.url}/projects/{self.project_id}/queue", timeout=10).json()
        assert queue["cycle"] == cycle
        self.queues.append(queue)
        return queue


def control_items(queue: dict) -> list[dict]:
    return [item for item in queue["items"] if item["slice"] == "control"]


def other_items(queue: dict) -> list[dict]:
    return [item for item in queue["items"] if item["slice"] != "control"][:OTHERS_PER_ROUND]


def another_intent(label: str) -> str:
    return INTENTS[(INTENTS.index(label) + 1) % len(INTENTS)]


@pytest.fixture(scope="module")
def scenario(label_studio, ls_client, banking77, tmp_path_factory) -> Iterator[Scenario]:
    env = {"LABELQUEUE_MIN_NEW_ANNOTATIONS": "100000", "LABELQUEUE_TRAILING_QUIET_SECONDS": "0",
           "LABELQUEUE_SELECT_AFTER_RETRAIN": "false",
           "LABELQUEUE_FAILURE_FIELD": "data.source=production_error",
           "LABELQUEUE_HIGH_IMPACT_CLASSES": "pin_blocked,top_up_failed",
           "LABELQUEUE_FAILURE_MODE_CLASSES": "lost_or_stolen_card", "LABELQUEUE_RARE_CLASS_THRESHOLD": "6"}
    run_dir = tmp_path_factory.mktemp("labelqueue-report")
    try:
        backend = start_backend(run_dir, label_studio=label_studio, workers=2, env=env)
    except StartupError as exc:
        pytest.fail(str(exc))
    try:
        yield run_scenario(backend, run_dir / "data", ls_client, banking77)
    finally:
        backend.stop()


def run_scenario(backend: LocalServer, data_dir: Path, ls_client, banking77) -> Scenario:
    rng = random.Random(5)
    rows = [row for row in banking77["train"] if row["category"] in INTENTS]
    rng.shuffle(rows)
    rows = rows[:200]
    project = ls_client.projects.create(title="labelqueue e2e report",
                                        label_config=config_with_choices("text_classification.xml", INTENTS))
    ls_client.projects.import_tasks(id=project.id, request=[
        {"text": row["text"], "source": "production_error" if i < 3 else "web"} for i, row in enumerate(rows)])
    tasks = sorted(ls_client.tasks.list(project=project.id, page_size=1000), key=lambda t: t.id)
    truth = {t.id: next(r["category"] for r in rows if r["text"] == t.data["text"]) for t in tasks}
    suffix = rng.randrange(10**6)
    users = {n: ls_client.users.create(username=f"annotator{n}-{suffix}", email=f"annotator{n}-{suffix}@example.com",
                                       first_name=f"Annotator {n}").id for n in (1, 2)}
    ls_client.ml.create(url=backend.url, project=project.id, title="labelqueue", is_interactive=False,
                        extra_params={"batch_size": BATCH, "mix": MIX, "control_overlap": 2})
    s = Scenario(backend, data_dir, project.id, users, truth)

    seed = {}
    for task in tasks[3:]:
        if sum(label == truth[task.id] for label in seed.values()) < 3:
            seed[task.id] = truth[task.id]
    for task_id, label in seed.items():
        s.annotate(ls_client, task_id, 1, label)
    queue = s.next_cycle(1)

    for round_ in (1, 2):
        controls = control_items(queue)
        for i, item in enumerate(controls):
            label = truth[item["task_id"]]
            s.annotate(ls_client, item["task_id"], 1, label)
            if round_ == 1 and i == len(controls) - 1:
                s.held = item["task_id"]
            else:
                s.annotate(ls_client, item["task_id"], 2, another_intent(label) if round_ == 1 and i == 0 else label)
        for item in other_items(queue):
            s.annotate(ls_client, item["task_id"], 1, truth[item["task_id"]])
        queue = s.next_cycle(round_ + 1)
        if round_ == 1:
            s.held_data_after_cycle_2 = ls_client.tasks.get(id=str(s.held)).data
            s.annotate(ls_client, s.held, 2, truth[s.held])

    for cycle, outcomes in FEEDBACK.items():
        for predicted, correct in outcomes:
            response = httpx.post(f"{backend.url}/projects/{project.id}/feedback", timeout=10, json={
                "text": "where is my card?", "predicted": predicted, "correct": correct,
                "model_version": s.queues[cycle - 1]["model_version"]})
            assert response.status_code == 201, response.text
    before = s.measurement()["measured_at"]
    httpx.post(f"{backend.url}/projects/{project.id}/measure", timeout=10)
    wait_for(lambda: s.measurement()["measured_at"] != before, timeout=60, what="a measurement with the feedback")
    return s


def test_every_cycle_is_recorded_with_the_labels_and_time_it_added(scenario):
    cycles = scenario.measurement()["cycles"]
    for c in cycles:
        control = c["control"] or {}
        print(f"\ncycle {c['cycle']} ({c['model_version']}): trained on {c['training_labels']}, added "
              f"{c['labels_added']}, {c['annotations']} annotations, {c['cost']} min; control "
              f"{control.get('correct')}/{control.get('n')} [{control.get('low')}, {control.get('high')}] "
              f"macro-F1 {control.get('macro_f1')}; gain/100 labels {c['gain_points_per_100']}; "
              f"cost/point {c['cost_per_point']}")
    assert [c["cycle"] for c in cycles] == [1, 2, 3]
    assert [c["model_version"] for c in cycles] == [q["model_version"] for q in scenario.queues]
    assert cycles[0]["labels_added"] == {"total": 24, "per_slice": {"unqueued": 24}}
    assert cycles[0]["cost"] == pytest.approx(24 * SECONDS[1] / 60)
    for cycle, queue in zip(cycles[1:], scenario.queues):
        labelled = control_items(queue) + other_items(queue)
        per_slice: dict[str, int] = {}
        for item in labelled:
            per_slice[item["slice"]] = per_slice.get(item["slice"], 0) + 1
        assert cycle["labels_added"] == {"total": len(labelled), "per_slice": per_slice}
        seconds = len(control_items(queue)) * (SECONDS[1] + SECONDS[2]) + OTHERS_PER_ROUND * SECONDS[1]
        assert cycle["cost"] == pytest.approx(seconds / 60, abs=1e-3)
        assert cycle["training_labels"] == sum(c["labels_added"]["total"] for c in cycles[:cycle["cycle"]])


def test_control_quality_compares_the_models_predictions_with_what_annotators_said(scenario):
    cycles = scenario.measurement()["cycles"]
    accuracies = []
    for cycle, queue in zip(cycles[:2], scenario.queues):
        controls = control_items(queue)
        correct = sum(item["predicted"] == [scenario.resolved(item["task_id"])] for item in controls)
        assert (cycle["control"]["n"], cycle["control"]["correct"]) == (len(controls), correct)
        assert cycle["control"]["low"] <= cycle["control"]["accuracy"] <= cycle["control"]["high"]
        accuracies.append(correct / len(controls))
    assert cycles[2]["control"] is None  # cycle 3's control tasks are not labelled yet
    labels_between = cycles[1]["labels_added"]["total"]
    assert cycles[1]["gain_per_label"] == pytest.approx((accuracies[1] - accuracies[0]) / labels_between, abs=1e-6)
    production = {v["model_version"]: v for v in scenario.measurement()["production"]}
    assert production[scenario.queues[0]["model_version"]]["control"]["error"] == pytest.approx(1 - accuracies[0])


def test_agreement_on_overlapping_control_tasks_is_cohens_kappa_of_the_two_annotators(scenario):
    doubled = [t for t, labels in scenario.given.items() if len(labels) == 2]
    first = [scenario.given[t][1] for t in doubled]
    second = [scenario.given[t][2] for t in doubled]
    agreement = scenario.measurement()["agreement"]
    control = agreement["per_slice"]["control"]
    assert (control["items"], control["annotators"], control["kappa_kind"]) == (len(doubled), 2, "cohen")
    assert control["percent"] == pytest.approx((len(doubled) - 1) / len(doubled))
    assert control["kappa"] == pytest.approx(cohen_kappa_score(first, second), abs=1e-6)
    assert agreement["overall"] == control
    print(f"\nagreement on control: {control}")


def test_control_tasks_ask_label_studio_for_two_annotators_and_stay_queued_until_they_have(scenario, ls_client):
    for queue in scenario.queues:
        for item in control_items(queue):
            assert ls_client.tasks.get(id=str(item["task_id"])).overlap == 2
    carried = scenario.held_data_after_cycle_2
    assert (carried["labelqueue_cycle"], carried["labelqueue_rank"], carried["labelqueue_slice"]) == (2, "000000", "control")
    waiting = ls_client.tasks.get(id=str(control_items(scenario.queues[2])[0]["task_id"]))
    assert waiting.is_labeled is False


def test_production_feedback_gives_an_error_rate_per_model_version(scenario):
    production = {v["model_version"]: v for v in scenario.measurement()["production"]}
    for cycle, outcomes in FEEDBACK.items():
        found = production[scenario.queues[cycle - 1]["model_version"]]["feedback"]
        wrong = sum(p != c for p, c in outcomes)
        assert (found["n"], found["wrong"]) == (len(outcomes), wrong)


def test_metrics_summarise_the_loop(scenario):
    metrics = httpx.get(f"{scenario.backend.url}/metrics", timeout=10).json()
    loop = metrics["projects"][str(scenario.project_id)]["loop"]
    assert loop["cycles"] == 3 and loop["control"]["cycle"] == 2
    assert loop["agreement"]["kappa_kind"] == "cohen"
    assert isinstance(loop["warnings"], list)


def test_report_loads_in_chromium_without_console_errors_and_shows_every_section(scenario, tmp_path):
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium); .ci/run does this")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: pip install -e '.[test]' (never 'playwright install')")
    errors: list[str] = []
    outside: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("request", lambda r: outside.append(r.url) if urlsplit(r.url).hostname not in
                    ("127.0.0.1", "localhost", None) and not r.url.startswith("data:") else None)
            response = page.goto(f"{scenario.backend.url}/projects/{scenario.project_id}/report")
            assert response.status == 200
            for anchor in SECTIONS:
                assert page.locator(f"section#{anchor}").is_visible(), f"section {anchor} is not shown"
            images = page.locator("img")
            assert images.count() >= 4
            assert all(images.nth(i).evaluate("img => img.naturalWidth > 0") for i in range(images.count()))
            rows = page.locator("section#cycles table tr")
            assert rows.count() == 1 + 3
            assert "Are annotators agreeing?" in page.locator("section#summary").inner_text()
            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    OUTPUT.mkdir(exist_ok=True)
    shutil.copy(shot, OUTPUT / "report.png")
    print(f"\nreport screenshot: {OUTPUT / 'report.png'}")
    assert not errors, f"console errors: {errors}"
    assert not outside, f"the report requested pages off this machine: {outside}"


def test_cli_writes_the_same_report(scenario, label_studio, tmp_path):
    out = tmp_path / "report.html"
    env = {**os.environ, "LABELQUEUE_DATA_DIR": str(scenario.data_dir), "LABEL_STUDIO_URL": label_studio.url,
           "LABEL_STUDIO_API_KEY": label_studio.token}
    done = subprocess.run([str(Path(sys.executable).parent / "labelqueue"), "report", "--project",
                           str(scenario.project_id), "--out", str(out)], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "3 cycles measured" in done.stdout
    page = out.read_text()
    assert all(f"<section id='{anchor}'>" in page for anchor in SECTIONS)
