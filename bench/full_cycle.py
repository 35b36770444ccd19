"""How long one full loop cycle takes on a large project: retrain, rescore, select, write the queue.

Starts a real Label Studio and ``labelqueue serve`` on 127.0.0.1, imports ``--tasks`` banking77
texts (the 13k train+test rows repeated with a variant suffix to reach the size), annotates
``--labels`` of them through the SDK, connects the backend, then presses Label Studio's
"Start training", then asks for a second batch, and reads the backend's own phase timings from
``/metrics``:

* cycle 1 ("Start training": retrain, then the first batch) runs with a cold pool cache (every
  task read from Label Studio and embedded once);
* cycle 2 is the steady state (cache hit, one query for new tasks, rescoring the cached pool,
  tagging the new batch and clearing the old one). A retrain no longer replaces a batch that is
  mostly unlabelled, so it is asked for as an admin would, with ``POST /projects/<id>/select``.

Usage: ``python bench/full_cycle.py [--tasks 50000] [--labels 500] [--batch 100]``
"""
from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import httpx
from label_studio_sdk import LabelStudio
from rich.console import Console
from rich.progress import track
from rich.table import Table

from backend.local.label_studio_server import start_backend, start_label_studio
from backend.local.quickstart_inputs import config_with_labels

REPO = Path(__file__).resolve().parents[1]


def banking_rows(datasets: Path) -> list[dict[str, str]]:
    rows = []
    for split in ("train", "test"):
        with open(datasets / "banking77" / f"{split}.csv", newline="") as handle:
            rows += list(csv.DictReader(handle))
    return rows


def wait_for_cycle(url: str, project_id: int, cycle: int, timeout: float = 1800) -> float:
    """Seconds until the queue of ``cycle`` is written."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        project = httpx.get(f"{url}/metrics", timeout=30).json()["projects"].get(str(project_id), {})
        if (project.get("queue") or {}).get("cycle", 0) >= cycle:
            return time.monotonic() - started
        time.sleep(0.5)
    raise TimeoutError(f"cycle {cycle} not written within {timeout}s")


def outcomes_of(url: str, project_id: int, cycle: int, tries: int = 40) -> tuple[dict, dict]:
    """The retrain and select outcomes of ``cycle``: ``/metrics`` answers from one gunicorn
    worker per call, and only the worker that ran a job knows its timings, so ask a few times."""
    for _ in range(tries):
        jobs = httpx.get(f"{url}/metrics", timeout=30).json()["projects"][str(project_id)]["jobs"]
        select = jobs["select"].get("last_outcome") or {}
        if select.get("cycle") == cycle:
            return jobs["retrain"].get("last_outcome") or {}, select
        time.sleep(0.05)
    return {}, {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=50_000)
    parser.add_argument("--labels", type=int, default=500)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--datasets", type=Path, default=REPO.parent / "shared" / "datasets")
    parser.add_argument("--startup-timeout", type=float, default=600,
                        help="seconds Label Studio and the backend may take to start on a busy machine")
    args = parser.parse_args()
    console = Console()
    rows = banking_rows(args.datasets)
    categories = sorted({r["category"] for r in rows})
    tasks = [{"text": rows[i % len(rows)]["text"] + ("" if i < len(rows) else f" (#{i // len(rows)})"),
              "category": rows[i % len(rows)]["category"]} for i in range(args.tasks)]

    with tempfile.TemporaryDirectory() as tmp:
        console.print("starting Label Studio (migrations take ~30 s)")
        ls_server = start_label_studio(Path(tmp) / "ls", timeout=args.startup_timeout)
        try:
            backend = start_backend(Path(tmp) / "lq", label_studio=ls_server, workers=2,
                                    env={"LABELQUEUE_BATCH_SIZE": str(args.batch)}, timeout=args.startup_timeout)
        except BaseException:
            ls_server.stop()
            raise
        try:
            client = LabelStudio(base_url=ls_server.url, api_key=ls_server.token, timeout=600)
            project = client.projects.create(title="labelqueue full cycle",
                                             label_config=config_with_labels(categories))
            started = time.monotonic()
            for chunk in track(range(0, len(tasks), 10_000), description="importing tasks"):
                client.projects.import_tasks(id=project.id, request=tasks[chunk:chunk + 10_000])
            import_seconds = time.monotonic() - started
            ids = [t.id for t in client.tasks.list(project=project.id, include="id", page_size=5000)]
            for task_id, task in track(list(zip(ids, tasks))[:args.labels], description="annotating"):
                client.annotations.create(id=task_id, lead_time=5.0, result=[{
                    "from_name": "intent", "to_name": "text", "type": "choices",
                    "value": {"choices": [task["category"]]}}])
            ml = client.ml.create(url=backend.url, project=project.id, title="labelqueue", is_interactive=False)

            results = []
            for cycle in (1, 2):
                if cycle == 1:
                    client.ml.train(id=ml.id)
                else:
                    httpx.post(f"{backend.url}/projects/{project.id}/select", timeout=30).raise_for_status()
                total = wait_for_cycle(backend.url, project.id, cycle)
                trained, selected = outcomes_of(backend.url, project.id, cycle)
                results.append((cycle, total, trained.get("seconds"), selected.get("seconds", {})))
        finally:
            backend.stop()
            ls_server.stop()

    table = Table(title=f"full cycle: {args.tasks} tasks, {args.labels} labels, batch {args.batch} (2 cores)")
    for column in ("cycle", "total s", "retrain s", "sync s", "score s", "select s", "write s"):
        table.add_column(column, justify="right")
    for cycle, total, train_s, phases in results:
        table.add_row(f"{cycle} ({'cold cache' if cycle == 1 else 'steady'})", f"{total:.1f}",
                      f"{train_s or float('nan'):.1f}", *(f"{phases.get(k, float('nan')):.2f}" for k in
                                               ("sync", "score", "select", "write")))
    console.print(table)
    console.print(f"import of {args.tasks} tasks into Label Studio: {import_seconds:.0f}s (not part of a cycle)")


if __name__ == "__main__":
    main()
