"""The quickstart as a newcomer meets it, checked in a real browser.

``labelqueue quickstart`` runs as a subprocess exactly as the README tells people to run it (with
a throwaway ``LABELQUEUE_DATA_DIR``); Debian's chromium, driven by Playwright, does what a
person would: log in, open the project and its "Active learning queue" tab, label from the
queue, submit. One scenario in named phases; screenshots of each go to the test's temp dir.
Every request the pages make off 127.0.0.1 is refused and reported.

Why "Label Tasks As Displayed" and not "Label All Tasks": the latter sends no filters or
ordering, so Label Studio serves by the project's sampling setting (sequential: lowest task id;
uncertainty: lowest stored prediction score; uniform: random), never by a tab's order. The
queue interleaves four slices, so neither the lowest id nor the lowest score is its first task.
The last phase records what "Label All Tasks" serves, so this stays documented by a test.
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.helpers import wait_for

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
#: Headless, and nothing that phones home: no QUIC, sync, component updates or background fetches.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
STARTUP_TIMEOUT = 170
ROWS_CHECKED = 10


@dataclass(frozen=True)
class Connection:
    """``connection.json`` that the quickstart writes into its run dir."""

    label_studio_url: str
    label_studio_api_key: str
    backend_url: str
    labelqueue_data_dir: str
    project_id: int

    def client(self):
        from label_studio_sdk import LabelStudio

        return LabelStudio(base_url=self.label_studio_url, api_key=self.label_studio_api_key)

    @property
    def backend_log(self) -> Path:
        return Path(self.labelqueue_data_dir).parent / "backend.log"


@dataclass
class QuickstartRun:
    """A running ``labelqueue quickstart`` and what it printed."""

    process: subprocess.Popen
    lines: list[str] = field(default_factory=list)

    @property
    def connection(self) -> Connection:
        return Connection(**json.loads((Path(self.printed(r"Data:\s+(\S+)")) / "connection.json").read_text()))

    def printed(self, pattern: str) -> str:
        for line in self.lines:
            if found := re.search(pattern, line):
                return found.group(1)
        raise AssertionError(f"quickstart output has no line matching {pattern!r}:\n" + "\n".join(self.lines))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def quickstart(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[QuickstartRun]:
    """``labelqueue quickstart --no-browser``, plus the test's arguments (indirect parameter)."""
    env = {**os.environ, "LABELQUEUE_DATA_DIR": str(tmp_path / "data"), "PYTHONUNBUFFERED": "1"}
    started = time.monotonic()
    arguments = list(getattr(request, "param", []))
    process = subprocess.Popen([str(Path(sys.executable).parent / "labelqueue"), "quickstart", "--no-browser",
                                *arguments],
                               env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    run = QuickstartRun(process)
    reader = threading.Thread(target=lambda: run.lines.extend(line.rstrip() for line in process.stdout), daemon=True)
    reader.start()
    try:
        wait_for(lambda: any("Press Ctrl-C" in line for line in run.lines) or process.poll() is not None,
                 timeout=STARTUP_TIMEOUT, what="the quickstart to print its URL")
        assert process.poll() is None, f"quickstart exited with {process.returncode}:\n{run.output}"
        print(f"\ncommand -> 'Press Ctrl-C' line: {time.monotonic() - started:.1f}s (measured by the test)")
        print(run.output)
        servers = (run.connection.label_studio_url, run.connection.backend_url)
        yield run
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        code = process.wait(timeout=60)
        reader.join(timeout=5)
    assert code == 0, f"quickstart did not stop cleanly on Ctrl-C (exit {code}):\n{run.output}"
    assert "Stopped." in run.output
    assert all(port_closed(url) for url in servers), f"a server still listens after Ctrl-C: {servers}"


@pytest.fixture
def browser(tmp_path: Path):
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium); "
                    ".ci/run does this")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: pip install -e '.[test]' (never 'playwright install')")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class Person:
    """A browser tab with the habits of a careful tester: screenshots and loopback only."""

    page: object
    shots: Path
    refused: list[str]

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(self.shots / f"{name}.png"))


@pytest.fixture
def person(browser, tmp_path: Path) -> Iterator[Person]:
    context = browser.new_context(viewport={"width": 1600, "height": 1400})
    refused: list[str] = []

    def loopback_only(route) -> None:
        if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    context.route("**/*", loopback_only)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield Person(page, shots, refused)
    print(f"screenshots: {shots}")
    if refused:
        print(f"requests refused because they left 127.0.0.1: {sorted(set(refused))}")
    context.close()


def test_newcomer_labels_the_queue_with_predictions_shown(quickstart, person):
    page = person.page
    connection = quickstart.connection
    ls = connection.client()
    project_id, project_url = connection.project_id, quickstart.printed(r"Project:\s+(\S+)")
    seconds = float(quickstart.printed(r"queue written ([\d.]+) s after the command started"))
    print(f"quickstart: command -> queue written in {seconds:.1f}s (as printed by the quickstart)")
    queue = httpx.get(f"{connection.backend_url}/projects/{project_id}/queue", timeout=10).json()
    items = queue["items"]
    assert queue["model_version"] and len(items) == 20  # the quickstart's batch size

    # Log in with the printed credentials; open the project from the projects list.
    page.goto(f"{connection.label_studio_url}/user/login/")
    page.fill("#email", quickstart.printed(r"Email:\s+(\S+)"))
    page.fill("#password", quickstart.printed(r"Password:\s+(\S+)"))
    person.shot("01-login")
    page.click("button.login-button")
    page.get_by_text("labelqueue demo").first.click()
    page.wait_for_url(re.compile(rf"/projects/{project_id}/data"))

    # The "Active learning queue" tab: tasks in queue order, each with its slice, for the admin.
    page.get_by_text("Active learning queue").first.click()
    page.locator("[data-testid=table-row]").nth(ROWS_CHECKED - 1).wait_for()
    person.shot("02-queue-tab")
    shown = [(int(row["ID"]), row["labelqueue_slice"], int(row["labelqueue_rank"])) for row in read_table(page)]
    expected = [(item["task_id"], item["slice"], item["rank"]) for item in items]
    assert len(shown) >= ROWS_CHECKED
    assert shown == expected[:len(shown)], "the tab does not list the queue in order with its slices"

    # "Label All Tasks" follows the project's sampling (sequential: lowest unlabelled id), not
    # the tab. Checked first: the task it serves gets locked to us, and a locked task would be
    # served again by the next "Label All Tasks", which would muddle what this shows.
    lowest_unlabelled = min(task.id for task in ls.tasks.list(project=project_id, fields="task_only")
                            if not task.is_labeled)
    with page.expect_response(is_next_task) as all_tasks:
        page.get_by_role("button", name="Label All Tasks").click()
    page.locator(".lsf-current-task__task-id").wait_for()
    person.shot("03-label-all-tasks")
    print(f"'Label All Tasks' served task {all_tasks.value.json()['id']} (lowest unlabelled id "
          f"{lowest_unlabelled}); the queue starts at task {items[0]['task_id']}")
    assert all_tasks.value.json()["id"] == lowest_unlabelled

    # "Label Tasks As Displayed" from the queue tab: the first task served is the queue's first,
    # with the model's prediction preselected (Label Studio asks the backend when it opens).
    first, second = items[0], items[1]
    page.goto(project_url)
    with page.expect_response(is_next_task) as served:
        page.get_by_role("button", name="Toggle open").click()
        page.get_by_text("Label Tasks As Displayed").click()
    assert served.value.json()["id"] == first["task_id"]
    assert served.value.json()["predictions"][0]["model_version"] == queue["model_version"]
    task_id_shown = page.locator(".lsf-current-task__task-id")
    task_id_shown.wait_for()
    assert re.match(rf"{first['task_id']}\b", task_id_shown.inner_text())
    checked = page.locator(".lsf-choices input[type=checkbox]:checked")
    checked.first.wait_for()
    assert sorted(checked.evaluate_all("boxes => boxes.map(box => box.name)")) == sorted(first["predicted"])
    person.shot("04-first-queued-task-with-prediction")

    # The person picks the intent the demo message was written for and submits: Label Studio
    # stores it, serves the queue's second task, and the backend receives the webhook.
    text = page.locator(".lsf-richtext__line").first.inner_text()
    intent = demo_intents()[text]
    webhooks_before = webhook_count(connection)
    page.locator(f".lsf-choices input[name='{intent}']").check()  # the model may have preselected it
    with page.expect_response(is_next_task) as following:
        page.get_by_role("button", name="Submit current annotation").click()
    assert following.value.json()["id"] == second["task_id"]
    page.locator(".lsf-richtext__line", has_text=following.value.json()["data"]["text"]).wait_for()
    person.shot("05-after-submit-next-queued-task")
    stored = [a.result[0]["value"]["choices"] for a in ls.annotations.list(id=first["task_id"])]
    assert stored == [[intent]]
    wait_for(lambda: webhook_count(connection) > webhooks_before, timeout=30,
             what="Label Studio's webhook for the annotation in the backend's access log")


#: Small batches keep the three-batch stream quick: 10 tasks, the first control item at rank 5,
#: the next batch written once 8 are labelled (a retrain every 2 labels checks).
STREAM_BATCH = 10
OUTPUT = REPO / "tests" / "output"


def log_in_and_open_the_queue(page, quickstart: QuickstartRun, project_id: int,
                              title: str = "labelqueue demo") -> None:
    page.goto(f"{quickstart.connection.label_studio_url}/user/login/")
    page.fill("#email", quickstart.printed(r"Email:\s+(\S+)"))
    page.fill("#password", quickstart.printed(r"Password:\s+(\S+)"))
    page.click("button.login-button")
    page.get_by_text(title).first.click()
    page.wait_for_url(re.compile(rf"/projects/{project_id}/data"))
    page.get_by_text("Active learning queue").first.click()
    page.locator("[data-testid=table-row]").first.wait_for()


@pytest.mark.parametrize("quickstart", [["--batch-size", str(STREAM_BATCH)]], indirect=True)
def test_three_batches_in_one_stream_each_with_a_control_label(quickstart, person):
    """Issue 13's Done-when: a person labels three whole batches through "Label Tasks As
    Displayed" from one page load, never meets "No More Tasks" while queued tasks remain, and
    labels a control item in each batch; the report then has control figures per cycle.

    The person is only as fast as the backend: before submitting the last queued task of a
    batch whose successor is not written yet, they wait for it (a person reads and thinks for
    longer than a retrain and a queue write take); every such wait is counted and printed."""
    page, connection = person.page, quickstart.connection
    project_id, backend = connection.project_id, connection.backend_url
    OUTPUT.mkdir(exist_ok=True)
    intents = demo_intents()

    def queue() -> dict:
        return httpx.get(f"{backend}/projects/{project_id}/queue", timeout=10).json()

    log_in_and_open_the_queue(page, quickstart, project_id)
    with page.expect_response(is_next_task_call) as first:
        page.get_by_role("button", name="Toggle open").click()
        page.get_by_text("Label Tasks As Displayed").click()
    served, submitted, waits = first.value, [], 0
    control_by_cycle: dict[int, list[int]] = {}
    while True:
        assert served.ok, f"'No More Tasks' after {len(submitted)} labels, with queued tasks left: {served.text()}"
        task = served.json()
        cycle, slice_ = int(task["data"]["labelqueue_cycle"]), task["data"]["labelqueue_slice"]
        if cycle > 3:
            break
        assert task["data"].get("labelqueue_queued") in (1, "1") and not task.get("annotations")
        page.locator(".lsf-richtext__line", has_text=task["data"]["text"]).first.wait_for()
        if slice_ == "control":
            control_by_cycle.setdefault(cycle, []).append(task["id"])
            if cycle == 1:
                person.shot("stream-control-item")
        left = [i["task_id"] for i in queue()["items"] if i["task_id"] not in {*submitted, task["id"]}]
        if not left:  # the last queued task: its successor batch should be on its way
            waits += 1
            current = queue()["cycle"]
            wait_for(lambda current=current: queue()["cycle"] > current, timeout=120,
                     what=f"cycle {current + 1} to be written")
        page.locator(f".lsf-choices input[name='{intents[task['data']['text']]}']").check()
        with page.expect_response(is_next_task_call) as following:
            page.get_by_role("button", name="Submit current annotation").click()
        submitted.append(task["id"])
        served = following.value
        assert len(submitted) <= 5 * STREAM_BATCH, "the stream never reached a fourth batch"
    person.shot("stream-fourth-batch")
    page.screenshot(path=str(OUTPUT / "stream-fourth-batch.png"))
    print(f"labelled {len(submitted)} tasks in one stream through cycles 1-3; waited for the next batch "
          f"{waits} time(s); control items labelled per cycle: {control_by_cycle}")
    assert page.get_by_text("No More Tasks").count() == 0
    assert sorted(control_by_cycle) == [1, 2, 3], f"a batch without a control label: {control_by_cycle}"

    # The report, measured after cycle 4 was written: control figures for cycles 1-3.
    def control_cycles() -> list[dict] | None:
        response = httpx.get(f"{backend}/projects/{project_id}/measurement", timeout=10)
        rows = response.json()["cycles"] if response.status_code == 200 else []
        measured = [r for r in rows if r["control"]]
        return measured if len(measured) >= 3 else None

    measured = wait_for(control_cycles, timeout=120, what="a measurement with control figures for three cycles")
    page.goto(f"{backend}/projects/{project_id}/report")
    page.locator("#summary").wait_for()
    helping = page.locator("#summary dd").first.inner_text()
    page.screenshot(path=str(OUTPUT / "stream-report.png"), full_page=True)
    print(f"control per cycle: {[(r['cycle'], r['control']['n'], r['control']['accuracy']) for r in measured]}")
    print(f"'Is the loop helping?': {helping}")
    assert not helping.startswith("Not known yet")


def is_next_task_call(response) -> bool:
    """Any answer to a next-task request, "No More Tasks" (an error status) included."""
    return "/api/dm/actions" in response.url and "id=next_task" in response.url


def read_table(page) -> list[dict[str, str]]:
    """The Data Manager rows on screen, as {column title: cell text} (titles without type badges)."""
    return page.evaluate("""() => {
        const titles = [...document.querySelectorAll('.lsf-table-head .lsf-th')]
            .map(th => th.innerText.trim().split('\\n')[0]);
        return [...document.querySelectorAll('[data-testid=table-row]')].map(row =>
            Object.fromEntries([...row.querySelectorAll('.lsf-table__cell')].map((cell, i) =>
                [titles[i] || String(i), cell.innerText.trim()])));
    }""")


def is_next_task(response) -> bool:
    return "/api/dm/actions" in response.url and "id=next_task" in response.url and response.ok


def demo_intents() -> dict[str, str]:
    rows = [json.loads(line) for line in (REPO / "label_config" / "demo_tasks.jsonl").read_text().splitlines()]
    return {row["text"]: row["demo_intent"] if isinstance(row["demo_intent"], str) else row["demo_intent"][0]
            for row in rows}


def webhook_count(connection: Connection) -> int:
    """``POST /webhook`` lines in the backend's gunicorn access log."""
    log = connection.backend_log
    return log.read_text(errors="replace").count("POST /webhook") if log.exists() else 0


def port_closed(url: str) -> bool:
    parts = urlsplit(url)
    with socket.socket() as sock:
        return sock.connect_ex((parts.hostname, parts.port)) != 0
