"""What each slice of the default batch picks: the share of its items the current model gets wrong.

Issue 12's diagnostic. A slice earns its place when it picks items the model does not know yet;
an item the model already predicts right teaches it little. For each phase of the learning curve
(labels so far: early < 1,000 <= mid < 2,000 <= late), this prints, per slice (the failure slice
split by source: flagged production mistakes, override neighbours), how many items the default
mix picked and the share the model in service mispredicted at that moment, beside plain top-k
margin's would-be batch and the control slice (a uniform sample: the pool's error rate).

The loop is issue 12's protocol (``bench/simulate.py``, the product's cadence, oracle annotator;
``--scenario shift`` draws production traffic from a shifted class mix, so flags come from
there). Every batch is the product's ``compose_batch`` (``bench.strategies.compose``).

Usage (from the repository root)::

    python bench/slice_errors.py --data banking77 --scenario shift --seeds 0,1
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse  # noqa: E402
import warnings  # noqa: E402
from collections import Counter  # noqa: E402

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import track  # noqa: E402
from rich.table import Table  # noqa: E402

from backend.model.features import embed_texts, pool_idf  # noqa: E402
from bench.annotators import annotator_answers  # noqa: E402
from bench.data import DEFAULT_DATASETS, Banking77, load_dataset  # noqa: E402
from bench.simulate import FitCache, make_scenario, run_strategy  # noqa: E402
from bench.strategies import CycleState, Strategy, batch_rows, compose, top_k  # noqa: E402

PHASES = ((1_000, "early"), (2_000, "mid"), (float("inf"), "late"))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=Path, default=DEFAULT_DATASETS)
    parser.add_argument("--data", default="banking77")
    parser.add_argument("--scenario", choices=("oracle", "shift"), default="shift")
    parser.add_argument("--seeds", default="0,1", help="comma-separated benchmark seeds")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--seed-size", type=int, default=100)
    parser.add_argument("--budget", type=int, default=3000)
    parser.add_argument("--production", type=float, default=0.2)
    parser.add_argument("--flag-rate", type=float, default=0.5)
    return parser.parse_args(argv)


def phase(labels: int) -> str:
    return next(name for bound, name in PHASES if labels < bound)


def counting_mix(truth: np.ndarray, picks: Counter, wrong: Counter):
    """The default mix as a strategy that tallies, per (phase, slice), picks and mispredicted picks."""
    margin = top_k("margin")

    def select(state: CycleState, size: int, seed: int) -> np.ndarray:
        batch = compose(state, size, seed)
        rows = batch_rows(batch)
        when = phase(len(state.labelled))
        slices = [item.slice if item.slice != "failure" else f"failure: {item.reason['source']}"
                  for item in batch.items]
        for name, row in [*zip(slices, rows), *(("top-k margin (not labelled)", r) for r in margin(state, size, seed))]:
            picks[when, name] += 1
            wrong[when, name] += int(state.proba[row].argmax() != truth[row])
        return rows

    return select


def tally(data: Banking77, seeds: list[int], args: argparse.Namespace) -> tuple[Counter, Counter]:
    embeddings = embed_texts(data.train.texts, idf=pool_idf(data.train.texts))
    picks: Counter = Counter()
    wrong: Counter = Counter()
    strategy = Strategy("lq-mix", "labelqueue", "default mix, tallied",
                        counting_mix(data.train.labels, picks, wrong), "lq-mix")
    for seed in track(seeds, description=f"{args.data} {args.scenario}"):
        answers = annotator_answers(data.train.labels, "oracle", np.random.default_rng([seed, 1]))
        scenario = make_scenario(seed, "oracle", data.train, data.test, data.categories, embeddings, answers,
                                 seed_size=args.seed_size, batch=args.batch, budget=args.budget,
                                 production=args.production, flag_rate=args.flag_rate,
                                 shift=args.scenario == "shift")
        run_strategy(scenario, strategy, FitCache(scenario))
    return picks, wrong


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    warnings.simplefilter("ignore")
    seeds = [int(s) for s in args.seeds.split(",")]
    picks, wrong = tally(load_dataset(args.data, args.datasets), seeds, args)
    table = Table(title=f"{args.data}, {args.scenario}, seeds {args.seeds}: share of picks the model in "
                        "service gets wrong")
    for column in ("phase", "slice", "picks", "wrong"):
        table.add_column(column, justify="left" if column in ("phase", "slice") else "right")
    for when in (name for _, name in PHASES):
        for (at, name) in sorted(key for key in picks if key[0] == when):
            table.add_row(at, name, f"{picks[at, name]:,}", f"{wrong[at, name] / picks[at, name]:.0%}")
    Console().print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
