"""Scale-out of pool scoring: a 1M-item pool scored by 1 and then 2 ``labelqueue worker`` processes.

A selection cycle rescores every unlabelled task with the new model. In RQ mode
``backend/jobs/pool_scoring.py`` cuts the pool into chunks that workers score in parallel; this
measures what that fan-out buys against the single in-process ``predict_proba`` call the default
mode makes (``LocalScorer``), in the same run, on the same texts and model:

1. pool: banking77 train texts cycled to ``--items``, every copy after the first changed by
   seeded word edits (drop, swap, repeat, insert a corpus word), so rows are not identical;
2. model: the product's ``fit_model`` on the 10,003 train rows (77 labels, single-label), saved
   as project 1 into the data dir the workers read it from;
3. baseline: ``model.predict_proba(pool)`` in this process, one call;
4. for N in (1, 2): a flushed throwaway Redis, N ``labelqueue worker --queues score`` processes,
   ``ChunkedScorer(steal=False).score`` timed from the call to the merged array, which must equal
   the baseline (``np.allclose``, atol 1e-5).

The CPU seconds of every process during each run (this process, Redis, the workers with their
work horses) are read from ``/proc``, so that the overhead can be placed, not just totalled.

Usage (from the repository root)::

    .venv/bin/python -m bench.scoring_scale                  # 1M items, ~3 min on 2 cores
    .venv/bin/python -m bench.scoring_scale --items 100000   # smoke run
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rq import Worker
from rq.job import Job

from backend.jobs.backends import open_store
from backend.jobs.pool_scoring import ChunkedScorer
from backend.jobs.rq_jobs import QUEUE_SCORE, RQJobs
from backend.local.label_studio_server import LocalServer
from backend.model.classifier import TrainedModel, fit_model
from backend.settings import Settings
from backend.store import ModelStore
from bench.data import DEFAULT_DATASETS, load_banking77
from tests.servers import start_redis, start_worker

BENCH = Path(__file__).resolve().parent
PROJECT_ID = 1
WORKER_COUNTS = (1, 2)
#: Word edits applied to every copy of a text after its first; with two, ~93 % of a 1M pool is distinct.
EDITS_PER_COPY = 2


@dataclass
class WorkerRun:
    """One timed ``ChunkedScorer.score`` call on ``workers`` worker processes."""

    workers: int
    seconds: float
    chunks: int
    chunks_by_worker: dict[str, int]
    scored_by_caller: int
    #: From the call to the first chunk job starting on a worker: writing the first chunk's
    #: texts file and enqueueing its job, plus the dequeue and fork.
    first_chunk_started_after: float
    #: From the last chunk job ending to the merged array: poll latency, ``np.load``, concatenate.
    merged_after_last_chunk: float
    #: ``score_chunk``'s own timing (model load + ``predict_proba`` + result file), summed over chunks.
    chunk_job_seconds_sum: float
    chunk_job_seconds_median: float
    cpu_seconds: dict[str, float]
    max_abs_diff: float
    matches_baseline: bool


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000, help="pool size")
    parser.add_argument("--chunk-size", type=int, default=50_000, help="LABELQUEUE_SCORE_CHUNK_SIZE")
    parser.add_argument("--seed", type=int, default=0, help="seed of the word edits")
    parser.add_argument("--datasets", type=Path, default=DEFAULT_DATASETS)
    parser.add_argument("--out", type=Path, default=BENCH / "out")
    args = parser.parse_args(argv)
    if args.items <= args.chunk_size:
        parser.error("--items must exceed --chunk-size: ChunkedScorer scores a single chunk in the caller")
    return args


def perturbed_pool(texts: Sequence[str], items: int, seed: int) -> list[str]:
    """``texts`` cycled to ``items`` rows; each copy after the first gets ``EDITS_PER_COPY`` edits.

    The edits keep the vocabulary of banking77 (an inserted word is drawn from the corpus), so
    the vectoriser does the same work per row as on real tasks rather than on noise tokens.
    """
    vocabulary = sorted({word for text in texts for word in text.split()})
    rng = np.random.default_rng(seed)
    kinds = rng.integers(0, 4, size=(items, EDITS_PER_COPY))
    places = rng.random((items, EDITS_PER_COPY))
    inserts = rng.integers(0, len(vocabulary), size=(items, EDITS_PER_COPY))
    pool = list(texts[:items])
    for row in range(len(pool), items):
        words = texts[row % len(texts)].split()
        for kind, place, insert in zip(kinds[row], places[row], inserts[row]):
            at = int(place * len(words))
            if kind == 0 and len(words) > 1:
                del words[at]
            elif kind == 1 and len(words) > 1:
                at = min(at, len(words) - 2)
                words[at], words[at + 1] = words[at + 1], words[at]
            elif kind == 2:
                words.insert(at, words[at])
            else:
                words.insert(at, vocabulary[insert])
        pool.append(" ".join(words))
    return pool


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` plus that of the children it reaped (a worker's work horses)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def start_workers(count: int, data_dir: Path, redis_url: str) -> list[LocalServer]:
    """``count`` workers on the score queue only, so nothing but chunks competes for the cores."""
    return [start_worker(data_dir, label_studio=None, name=f"scale-{count}w-{k}",
                         env={"LABELQUEUE_REDIS_URL": redis_url}, queues=("score",))
            for k in range(count)]


def wait_until_idle(jobs: RQJobs, count: int, timeout: float = 30) -> None:
    """Until every worker has reaped its last work horse, whose CPU only then counts as its child's."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sum(w.get_state() == "idle" for w in Worker.all(connection=jobs.redis)) >= count:
            return
        time.sleep(0.1)


def cpu_snapshot(redis: LocalServer, workers: list[LocalServer]) -> dict[str, float]:
    """CPU seconds so far of this process (the caller), Redis and the workers, to difference."""
    return {"caller": time.process_time(), "redis": cpu_seconds(redis.process.pid),
            "workers": sum(cpu_seconds(w.process.pid) for w in workers)}


def utc_seconds(moment: datetime) -> float:
    """Epoch seconds of an RQ timestamp (naive ones are UTC)."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def score_on_workers(count: int, *, jobs: RQJobs, store: ModelStore, model: TrainedModel, texts: list[str],
                     baseline: np.ndarray, chunk_size: int, data_dir: Path, redis: LocalServer,
                     progress: Progress) -> WorkerRun:
    """Start ``count`` workers on a flushed Redis, time one scoring call, stop them."""
    jobs.redis.flushdb()
    workers = start_workers(count, data_dir, redis.url)
    queue = jobs.queues[QUEUE_SCORE]
    chunks = -(-len(texts) // chunk_size)
    task = progress.add_task(f"{count} worker(s): chunks scored", total=chunks)
    watching = threading.Event()

    def watch() -> None:
        while not watching.wait(0.5):
            progress.update(task, completed=queue.finished_job_registry.get_job_count(cleanup=False))

    try:
        cpu_before = cpu_snapshot(redis, workers)
        threading.Thread(target=watch, daemon=True).start()
        started_wall, started = time.time(), time.perf_counter()
        proba = ChunkedScorer(store, queue, chunk_size=chunk_size, steal=False).score(PROJECT_ID, model, texts)
        seconds = time.perf_counter() - started
        watching.set()
        wait_until_idle(jobs, len(workers))
        cpu_after = cpu_snapshot(redis, workers)
        finished = [job for job in Job.fetch_many(queue.finished_job_registry.get_job_ids(),
                                                  connection=jobs.redis) if job is not None]
        progress.update(task, completed=len(finished))
    finally:
        watching.set()
        for worker in workers:
            worker.stop()
    job_seconds = [job.return_value()["seconds"] for job in finished]
    by_worker: dict[str, int] = {}
    for job in finished:
        by_worker[job.worker_name or "?"] = by_worker.get(job.worker_name or "?", 0) + 1
    return WorkerRun(
        workers=count, seconds=seconds, chunks=chunks, chunks_by_worker=by_worker,
        scored_by_caller=chunks - len(finished),
        first_chunk_started_after=min(utc_seconds(job.started_at) for job in finished) - started_wall,
        merged_after_last_chunk=started_wall + seconds - max(utc_seconds(job.ended_at) for job in finished),
        chunk_job_seconds_sum=sum(job_seconds), chunk_job_seconds_median=statistics.median(job_seconds),
        cpu_seconds={k: round(cpu_after[k] - cpu_before[k], 2) for k in cpu_after},
        max_abs_diff=float(np.max(np.abs(proba - baseline))),
        matches_baseline=bool(np.allclose(proba, baseline, atol=1e-5)))


def overhead_parts(store: ModelStore, texts: list[str], chunk_size: int, classes: int) -> dict[str, float]:
    """What each chunk job costs besides the scoring itself, measured outside the timed runs."""
    manifest = store.manifest(PROJECT_ID)
    assert manifest is not None
    started = time.perf_counter()
    store.load(PROJECT_ID, manifest)
    load_seconds = time.perf_counter() - started
    return {"model_pickle_mib": (store.layout.models(PROJECT_ID) / manifest.file).stat().st_size / 2**20,
            "model_load_seconds": load_seconds,
            "chunk_texts_file_mb": len(json.dumps(texts[:chunk_size]).encode()) / 1e6,
            "chunk_result_file_mb": chunk_size * classes * 4 / 1e6}


def speedups(baseline_seconds: float, runs: list[WorkerRun]) -> dict[str, float]:
    one, two = runs
    return {"2_workers_vs_1_worker": one.seconds / two.seconds,
            "1_worker_vs_in_process": baseline_seconds / one.seconds,
            "2_workers_vs_in_process": baseline_seconds / two.seconds}


def show(console: Console, args: argparse.Namespace, baseline_seconds: float, runs: list[WorkerRun],
         ratios: dict[str, float], parts: dict[str, float]) -> None:
    """The timing table, the core count beside the speedup, and where the time went."""
    one = runs[0]
    table = Table(title=f"scoring {args.items:,} items, chunks of {args.chunk_size:,}")
    for column in ("run", "seconds", "items/s", "x in-process", "x 1 worker", "equals baseline"):
        table.add_column(column, justify="right")
    table.add_row("in-process (baseline)", f"{baseline_seconds:.1f}",
                  f"{args.items / baseline_seconds:,.0f}", "1.00", "", "")
    for run in runs:
        table.add_row(f"{run.workers} worker(s)", f"{run.seconds:.1f}",
                      f"{args.items / run.seconds:,.0f}", f"{baseline_seconds / run.seconds:.2f}",
                      f"{one.seconds / run.seconds:.2f}",
                      f"{'yes' if run.matches_baseline else 'NO'} (max diff {run.max_abs_diff:.1e})")
    console.print(table)
    cores = os.cpu_count()
    console.print(f"speedup 2 workers vs 1 worker: [bold]{ratios['2_workers_vs_1_worker']:.2f}x[/] - "
                  f"os.cpu_count() = {cores}: this machine has {cores} cores, so {cores} workers is the ceiling")

    where = Table(title="where the time goes (CPU seconds are per process, during the timed call)")
    for column in ("run", "wall s", "to 1st chunk s", "merge after last s", "caller CPU s", "Redis CPU s",
                   "workers CPU s", "chunks per worker", "by caller", "chunk jobs s: sum (median)"):
        where.add_column(column, justify="right")
    for run in runs:
        where.add_row(f"{run.workers} worker(s)", f"{run.seconds:.1f}", f"{run.first_chunk_started_after:.2f}",
                      f"{run.merged_after_last_chunk:.2f}",
                      *(f"{run.cpu_seconds[k]:.1f}" for k in ("caller", "redis", "workers")),
                      ", ".join(map(str, sorted(run.chunks_by_worker.values()))), str(run.scored_by_caller),
                      f"{run.chunk_job_seconds_sum:.1f} ({run.chunk_job_seconds_median:.2f})")
    console.print(where)
    console.print(f"per chunk of {args.chunk_size:,}: its share of the in-process baseline "
                  f"{baseline_seconds * args.chunk_size / args.items:.2f} s; model load {parts['model_load_seconds']:.2f} s "
                  f"({parts['model_pickle_mib']:.1f} MiB pickle); texts file {parts['chunk_texts_file_mb']:.1f} MB JSON; "
                  f"result file {parts['chunk_result_file_mb']:.1f} MB float32")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console()
    load_start = os.getloadavg()
    data = load_banking77(args.datasets)
    with console.status(f"building a {args.items:,}-item pool"):
        texts = perturbed_pool(data.train.texts, args.items, args.seed)
    console.print(f"pool: {len(texts):,} texts, {len(set(texts)):,} distinct")
    with console.status(f"fitting the default model on {len(data.train):,} banking77 train rows"):
        model = fit_model(data.train.texts, [(data.categories[i],) for i in data.train.labels],
                          labels=data.categories, multilabel=False, version="scale-bench")
    with console.status("baseline: predict_proba over the whole pool in this process"):
        started = time.perf_counter()
        baseline = model.predict_proba(texts)
        baseline_seconds = time.perf_counter() - started
    console.print(f"baseline in-process: {baseline_seconds:.1f} s")

    with tempfile.TemporaryDirectory(prefix="labelqueue-scale-") as tmp:
        folder = Path(tmp)
        redis = start_redis(folder / "redis")
        try:
            # start_worker points the workers at <folder>/data; the model must be saved there.
            settings = Settings(data_dir=folder / "data", redis_url=redis.url, score_chunk_size=args.chunk_size)
            jobs = RQJobs(settings)
            store = open_store(settings, jobs)
            store.save(PROJECT_ID, model, {"n_examples": model.n_examples})
            parts = overhead_parts(store, texts, args.chunk_size, len(data.categories))
            with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          console=console) as progress:
                runs = [score_on_workers(count, jobs=jobs, store=store, model=model, texts=texts, baseline=baseline,
                                         chunk_size=args.chunk_size, data_dir=folder, redis=redis, progress=progress)
                        for count in WORKER_COUNTS]
        finally:
            redis.stop()

    ratios = speedups(baseline_seconds, runs)
    show(console, args, baseline_seconds, runs, ratios, parts)
    args.out.mkdir(parents=True, exist_ok=True)
    record = {"date": date.today().isoformat(), "cpu_count": os.cpu_count(), "python": platform.python_version(),
              "numpy": np.__version__, "load_average_start": load_start, "load_average_end": os.getloadavg(),
              "items": args.items, "chunk_size": args.chunk_size, "seed": args.seed,
              "baseline_seconds": baseline_seconds, "runs": [asdict(run) for run in runs],
              "speedups": ratios, "per_chunk": parts}
    (args.out / "scoring_scale.json").write_text(json.dumps(record, indent=1))
    console.print(f"wrote {args.out / 'scoring_scale.json'}")
    if not all(run.matches_baseline for run in runs):
        console.print("[red]the merged worker result differs from the in-process baseline[/]")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
