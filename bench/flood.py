"""Floods and load against a real ``labelqueue serve`` (with a real Label Studio behind it).

1. Idle: ``/predict`` latency (batches of 10 tasks) with nothing else going on.
2. Flood: 1,000 ``ANNOTATION_CREATED`` webhooks for one project within 10 s (8 concurrent
   senders), while ``/predict`` keeps being measured. Reports webhook latency (max, p99), how
   many retrains actually ran (counted from the backend's log), and ``/predict`` p99 during the
   flood against the idle p99 of the same run.
3. Load: N concurrent clients for a fixed time mixing ``/predict``, ``/setup`` and ``/health``;
   requests per second and error count.

All traffic goes to 127.0.0.1 and every loop is bounded in count and time.
Usage: ``python bench/flood.py [--webhooks 1000] [--workers 2] [--load-seconds 20]``
"""
from __future__ import annotations

import argparse
import csv
import re
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from label_studio_sdk import LabelStudio
from rich.console import Console
from rich.table import Table

from backend.local.label_studio_server import start_backend, start_label_studio
from backend.local.quickstart_inputs import config_with_labels

REPO = Path(__file__).resolve().parents[1]
INTENTS = ("card_arrival", "lost_or_stolen_card", "exchange_rate", "pin_blocked", "top_up_failed")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def config() -> str:
    return config_with_labels(INTENTS)


def make_project(ls: LabelStudio, datasets: Path) -> tuple[int, list[str]]:
    with open(datasets / "banking77" / "train.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["category"] in INTENTS][:300]
    project = ls.projects.create(title="labelqueue flood", label_config=config())
    ls.projects.import_tasks(id=project.id, request=[{"text": r["text"]} for r in rows])
    tasks = list(ls.tasks.list(project=project.id, page_size=1000))
    truth = {r["text"]: r["category"] for r in rows}
    for task in tasks[:100]:
        ls.annotations.create(id=task.id, result=[{"from_name": "intent", "to_name": "text", "type": "choices",
                                                   "value": {"choices": [truth[task.data["text"]]]}}])
    return project.id, [r["text"] for r in rows]


def time_predicts(url: str, body: dict, stop: threading.Event, limit: float) -> list[float]:
    latencies, deadline = [], time.monotonic() + limit
    with httpx.Client(timeout=30) as client:
        while not stop.is_set() and time.monotonic() < deadline:
            started = time.perf_counter()
            client.post(f"{url}/predict", json=body).raise_for_status()
            latencies.append(time.perf_counter() - started)
    return latencies


def flood(url: str, project_id: int, count: int, seconds: float) -> tuple[list[float], int]:
    body = {"action": "ANNOTATION_CREATED", "project": {"id": project_id}, "annotation": {"id": 1}}
    latencies, errors = [], 0
    interval = seconds / count

    def send(i: int, client: httpx.Client) -> tuple[float, bool]:
        time.sleep(max(0.0, start + i * interval - time.monotonic()))
        t0 = time.perf_counter()
        response = client.post(f"{url}/webhook", json=body)
        return time.perf_counter() - t0, response.status_code == 200

    with httpx.Client(timeout=10, limits=httpx.Limits(max_connections=8)) as client, ThreadPoolExecutor(8) as pool:
        start = time.monotonic()
        for latency, ok in pool.map(lambda i: send(i, client), range(count)):
            latencies.append(latency)
            errors += not ok
    return latencies, errors


def load(url: str, body: dict, clients: int, seconds: float) -> tuple[int, int]:
    done, errors, lock = 0, 0, threading.Lock()
    deadline = time.monotonic() + seconds
    calls = [("post", "/predict", body), ("post", "/setup", {"project": body["project"], "schema": body["label_config"]}),
             ("get", "/health", None)]

    def worker(index: int) -> None:
        nonlocal done, errors
        with httpx.Client(timeout=30) as client:
            i = index
            while time.monotonic() < deadline:
                method, path, payload = calls[i % len(calls)]
                i += 1
                try:
                    ok = (client.post(f"{url}{path}", json=payload) if method == "post" else client.get(f"{url}{path}")).status_code == 200
                except httpx.HTTPError:
                    ok = False
                with lock:
                    done += 1
                    errors += not ok

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return done, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--webhooks", type=int, default=1000)
    parser.add_argument("--flood-seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--load-clients", type=int, default=8)
    parser.add_argument("--load-seconds", type=float, default=20.0)
    parser.add_argument("--datasets", type=Path, default=REPO.parent / "shared" / "datasets")
    args = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        console.print("starting Label Studio and the backend")
        ls_server = start_label_studio(Path(tmp) / "ls")
        backend = start_backend(Path(tmp) / "lq", label_studio=ls_server, workers=args.workers,
                                env={"LABELQUEUE_MIN_NEW_ANNOTATIONS": "1"})
        try:
            ls = LabelStudio(base_url=ls_server.url, api_key=ls_server.token, timeout=120)
            project_id, texts = make_project(ls, args.datasets)
            httpx.post(f"{backend.url}/webhook", json={"action": "START_TRAINING", "project": {"id": project_id}})
            time.sleep(5)
            body = {"project": f"{project_id}.0", "label_config": config(),
                    "tasks": [{"data": {"text": t}} for t in texts[:10]]}
            idle = time_predicts(backend.url, body, threading.Event(), limit=10)

            stop = threading.Event()
            during: list[float] = []
            measurer = threading.Thread(target=lambda: during.extend(time_predicts(backend.url, body, stop, 60)))
            measurer.start()
            hooks, hook_errors = flood(backend.url, project_id, args.webhooks, args.flood_seconds)
            stop.set()
            measurer.join()
            time.sleep(10)  # let the coalesced retrains finish before counting them
            log = backend.log.read_text(errors="replace")
            retrains = len(re.findall(rf"project {project_id}: retrain (done|skipped)", log))
            served, errors = load(backend.url, body, args.load_clients, args.load_seconds)
        finally:
            backend.stop()
            ls_server.stop()

    table = Table(title=f"flood and load: labelqueue serve --workers {args.workers} (2 cores, loopback)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row(f"webhooks sent ({args.webhooks} in {args.flood_seconds:.0f} s)", str(len(hooks)))
    table.add_row("webhook errors", str(hook_errors))
    table.add_row("webhook latency p50 / p99 / max (ms)",
                  f"{percentile(hooks, .5) * 1e3:.1f} / {percentile(hooks, .99) * 1e3:.1f} / {max(hooks) * 1e3:.1f}")
    table.add_row("webhooks over 100 ms", str(sum(h > 0.1 for h in hooks)))
    table.add_row("retrain runs they caused (incl. skipped)", str(retrains))
    table.add_row("/predict p99 idle (ms, 10 tasks)", f"{percentile(idle, .99) * 1e3:.1f}")
    table.add_row("/predict p99 during flood (ms)", f"{percentile(during, .99) * 1e3:.1f}")
    table.add_row("flood / idle p99 ratio", f"{percentile(during, .99) / percentile(idle, .99):.2f}")
    table.add_row(f"load: {args.load_clients} clients x {args.load_seconds:.0f} s, requests/s",
                  f"{served / args.load_seconds:.0f}")
    table.add_row("load: errors", str(errors))
    console.print(table)
    console.print(f"median idle /predict: {statistics.median(idle) * 1e3:.1f} ms over {len(idle)} calls")


if __name__ == "__main__":
    main()
