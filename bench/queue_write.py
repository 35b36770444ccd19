"""How fast a queue write is, and how many task updates in flight Label Studio takes.

Starts a real Label Studio (SQLite) on 127.0.0.1, imports ``--tasks`` short tasks, then writes
batches of ``--batch`` tasks through the gateway's queue writer, one write per concurrency in
``--concurrency``: each write tags a fresh batch and clears the previous one (2 x ``--batch``
task updates), the steady-state write of a cycle. Prints seconds per write and the errors met.

Usage: ``python bench/queue_write.py [--tasks 2000] [--batch 100] [--concurrency 1 2 4 8]``
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from backend.labelstudio.gateway import Connection
from backend.labelstudio.project_setup import LabelStudioAdmin
from backend.labelstudio.queue_writer import write_queue
from backend.local.label_studio_server import start_label_studio
from backend.local.quickstart_inputs import config_with_labels
from selection.batch import BatchItem


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--startup-timeout", type=float, default=600)
    args = parser.parse_args()
    console = Console()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        ls_server = start_label_studio(Path(tmp) / "ls", timeout=args.startup_timeout)
        try:
            admin = LabelStudioAdmin(Connection(ls_server.url, ls_server.token))
            project = admin.create_project("queue write speed", config_with_labels(["a", "b"]), "benchmark")
            admin.import_tasks(project.project_id, [{"text": f"task {i}"} for i in range(args.tasks)])
            ids = sorted(project.task_ids())
            previous: list[int] = []
            for cycle, concurrency in enumerate([1, *args.concurrency], start=1):  # cycle 1 warms up
                start = ((cycle - 1) * args.batch) % (len(ids) - args.batch)
                queued = ids[start:start + args.batch]
                items = [BatchItem(task_id=t, slice="uncertain", rank=r, reason={}) for r, t in enumerate(queued, 1)]
                began = time.monotonic()
                try:
                    result = write_queue(project, items, cycle, previous=previous, concurrency=concurrency)
                    outcome = f"tagged {result.tagged}, cleared {result.cleared}"
                except Exception as exc:  # a benchmark reports what Label Studio did, whatever it was
                    outcome = f"{type(exc).__name__}: {str(exc)[:120]}"
                if cycle > 1:
                    rows.append((concurrency, time.monotonic() - began, outcome))
                previous = queued
        finally:
            ls_server.stop()
    table = Table(title=f"queue write: {args.batch} tagged + {args.batch} cleared, {args.tasks} tasks (SQLite)")
    for column in ("updates in flight", "seconds", "outcome"):
        table.add_column(column)
    for concurrency, seconds, outcome in rows:
        table.add_row(str(concurrency), f"{seconds:.2f}", outcome)
    console.print(table)


if __name__ == "__main__":
    main()
