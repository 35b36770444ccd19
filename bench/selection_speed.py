"""How long compose_batch takes on a large pool, against plain top-k uncertainty.

Builds a synthetic pool (clustered float32 embeddings, Dirichlet class probabilities), a
labelled set with overrides, a few flagged failures and a pending queue to exclude, then
times ``compose_batch`` and a baseline that only scores the pool and takes the top-k by
margin, on the same data in the same run.

Memory is the peak of Python/numpy allocations made during one call above what was
allocated when it started, measured with ``tracemalloc`` in a separate, untimed call
(tracing slows allocation). numpy reports its array buffers to tracemalloc, so this covers
every temporary array; it does not see OpenBLAS's own small per-thread work buffers.

Usage::

    python bench/selection_speed.py --pool 1000000 --dim 256 --batch 500 --classes 77 --seed 0
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import tracemalloc
from collections.abc import Callable

import numpy as np

from selection.batch import Batch, LabelledSet, Pool, compose_batch
from selection.uncertainty import uncertainty_scores

MIB = 1024 * 1024


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=int, default=1_000_000, help="unlabelled pool size")
    parser.add_argument("--dim", type=int, default=256, help="embedding width")
    parser.add_argument("--batch", type=int, default=500, help="batch size")
    parser.add_argument("--classes", type=int, default=77, help="number of classes")
    parser.add_argument("--labelled", type=int, default=5_000, help="labelled set size")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per method")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def synthetic_data(args: argparse.Namespace) -> tuple[Pool, LabelledSet, list[int], list[int]]:
    """Pool, labelled set, flagged ids and excluded ids drawn around 64 topic centres."""
    rng = np.random.default_rng(args.seed)
    centres = rng.standard_normal((64, args.dim)).astype(np.float32)

    def embed(n: int) -> np.ndarray:
        points = rng.standard_normal((n, args.dim), dtype=np.float32)
        points *= 0.8
        points += centres[rng.integers(len(centres), size=n)]
        return points

    pool = Pool(
        task_ids=np.arange(args.pool, dtype=np.int64),
        proba=rng.dirichlet(np.full(args.classes, 0.3), size=args.pool),
        embeddings=embed(args.pool),
    )
    labelled = LabelledSet(
        task_ids=np.arange(args.pool, args.pool + args.labelled, dtype=np.int64),
        embeddings=embed(args.labelled),
        overridden=rng.random(args.labelled) < 0.15,
    )
    flagged = rng.choice(args.pool, size=50, replace=False).tolist()
    exclude = rng.choice(args.pool, size=1_000, replace=False).tolist()
    return pool, labelled, flagged, exclude


def top_k_uncertainty(pool: Pool, size: int) -> np.ndarray:
    """Baseline: margin scores over the whole pool, then the ``size`` highest."""
    scores = uncertainty_scores(pool.proba, "margin")
    return np.argpartition(-scores, size - 1)[:size]


def timed(run: Callable[[], object], repeats: int) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds (all threads of this process) of each call.

    Selection is compute-bound in memory, so on an otherwise idle machine a call's wall time is
    at most its CPU time (a second thread only shortens it): the CPU column bounds the quiet
    wall time from above even when other processes share the cores.
    """
    wall, cpu = [], []
    for _ in range(repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        run()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - cpu_start)
    return wall, cpu


def peak_extra_mib(run: Callable[[], object]) -> float:
    tracemalloc.start()
    try:
        baseline, _ = tracemalloc.get_traced_memory()
        run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return (peak - baseline) / MIB


def show(rows: list[tuple[str, ...]], batch: Batch) -> None:
    header = ("method", "median s", "best s", "x baseline", "median CPU s", "peak extra MiB")
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        for row in (header, *rows):
            print("  ".join(f"{cell:>16}" for cell in row))
    else:
        table = Table(title="selection speed")
        for column in header:
            table.add_column(column, justify="right")
        for row in rows:
            table.add_row(*row)
        Console().print(table)
    print(f"slice counts: {batch.counts}")


def main() -> None:
    args = parse_args()
    print(
        f"{os.cpu_count()} cores; pool {args.pool} x {args.dim}, {args.classes} classes, "
        f"{args.labelled} labelled, batch {args.batch}, seed {args.seed}"
    )
    start = time.perf_counter()
    pool, labelled, flagged, exclude = synthetic_data(args)
    print(f"synthetic data built in {time.perf_counter() - start:.1f} s")

    def baseline() -> np.ndarray:
        return top_k_uncertainty(pool, args.batch)

    def selection() -> Batch:
        return compose_batch(
            pool, labelled, flagged=flagged, exclude=exclude, size=args.batch, seed=args.seed
        )

    batch = selection()  # warm-up: first BLAS call and page faults are not the library's cost
    baseline()
    base_times, base_cpu = timed(baseline, args.repeats)
    select_times, select_cpu = timed(selection, args.repeats)
    base_median = statistics.median(base_times)
    rows = [
        ("top-k margin (baseline)", base_times, base_cpu, peak_extra_mib(baseline)),
        ("compose_batch", select_times, select_cpu, peak_extra_mib(selection)),
    ]
    show(
        [
            (name, f"{statistics.median(wall):.2f}", f"{min(wall):.2f}",
             f"{statistics.median(wall) / base_median:.1f}", f"{statistics.median(cpu):.2f}",
             f"{memory:.0f}")
            for name, wall, cpu, memory in rows
        ],
        batch,
    )
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
