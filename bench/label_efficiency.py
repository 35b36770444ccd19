"""Label efficiency of labelqueue's selection against random and the peer AL libraries.

Simulates the labelling loop on banking77 (train = unlabelled pool, test = held out): a random
labelled seed, then cycles of ``--batch`` items up to ``--budget`` labels, retraining the
product's default model (``backend.model.classifier.fit_model``) after every batch, for every strategy,
``--seeds`` seeds and two annotators (a perfect oracle and a noisy one who errs on ambiguous
items). Writes the raw records as JSON, Markdown tables and PNG figures.

Usage (from the repository root)::

    python bench/label_efficiency.py                 # full run (~25 min on 2 cores)
    python bench/label_efficiency.py --quick         # smoke run (< 1 min), writes bench/out/quick
    python bench/label_efficiency.py --write-results # also refresh the block in bench/RESULTS.md
    python bench/label_efficiency.py --from-json bench/out/label_efficiency.json --write-results
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``bench`` importable from the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import multiprocessing as mp  # noqa: E402
import platform  # noqa: E402
import queue as queue_module  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from concurrent.futures import Future, ProcessPoolExecutor  # noqa: E402
from datetime import date  # noqa: E402

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: E402
from sklearn.metrics import f1_score  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from backend.model.classifier import fit_model  # noqa: E402
from backend.model.features import embed_texts, pool_idf  # noqa: E402
from bench import plots, report  # noqa: E402
from bench.aggregate import curves, summarise  # noqa: E402
from bench.annotators import (  # noqa: E402
    ANNOTATORS,
    ambiguity_from_proba,
    annotator_answers,
    error_probability,
    fold_proba,
    fold_splits,
)
from bench.data import DEFAULT_DATASETS, Split, load_banking77  # noqa: E402
from bench.peers import PEER_SUBSAMPLE, peer_strategies  # noqa: E402
from bench.simulate import FitCache, make_scenario, run_strategy  # noqa: E402
from bench.strategies import Strategy, own_strategies  # noqa: E402

BENCH = Path(__file__).resolve().parent
TARGET_FRACTIONS = (0.90, 0.95)
#: Rough relative cost of each family, so the slowest start first and the two workers finish
#: together. Only ordering depends on it.
COST = {"skal-typiclust": 6, "st-coreset": 5, "modal-ranked": 4, "st-kmeans": 3, "skal-coreset": 2}

# Read-only state set by the parent before the worker pool forks (documented module cache).
_CONTEXT: dict = {}
_PROGRESS = None
_LIMITS = None


def all_strategies() -> dict[str, Strategy]:
    return {s.name: s for s in own_strategies() + peer_strategies()}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=Path, default=DEFAULT_DATASETS,
                        help="folder holding banking77/ (default: ../shared/datasets)")
    parser.add_argument("--seeds", type=int, default=5, help="number of benchmark seeds")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=200, help="labels per cycle")
    parser.add_argument("--budget", type=int, default=2000, help="labels at the end")
    parser.add_argument("--seed-size", type=int, default=200, help="random labelled seed")
    parser.add_argument("--annotators", default=",".join(ANNOTATORS))
    parser.add_argument("--noise", type=float, default=0.10,
                        help="noisy annotator's error rate on a uniformly random item")
    parser.add_argument("--production", type=float, default=0.2,
                        help="share of the pool arriving as production traffic")
    parser.add_argument("--flag-rate", type=float, default=0.5,
                        help="chance a production mistake is noticed and flagged")
    parser.add_argument("--folds", type=int, default=5, help="folds for the reference model")
    parser.add_argument("--strategies", default="all", help="comma-separated names, or 'all'")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--out", type=Path, default=BENCH / "out",
                        help="folder for JSON, Markdown and the reference cache")
    parser.add_argument("--figures", type=Path, default=None,
                        help="folder for PNG figures (default: bench/, or <out>/quick with --quick)")
    parser.add_argument("--write-results", action="store_true",
                        help="replace the generated block in bench/RESULTS.md")
    parser.add_argument("--from-json", type=Path, default=None,
                        help="skip the simulation; rebuild tables and figures from saved records")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 1,000-item pool, 2 seeds, 4 cycles of 50")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.batch, args.budget, args.seed_size, args.folds = 2, 50, 250, 50, 3
        args.out = args.out / "quick"
    if args.figures is None:
        args.figures = args.out if args.quick else BENCH
    return args


# --- worker side --------------------------------------------------------------------------

def _init_worker(progress) -> None:
    global _PROGRESS, _LIMITS
    _PROGRESS = progress
    _LIMITS = threadpool_limits(1)  # one BLAS/OpenMP thread per worker: workers = cores
    warnings.simplefilter("ignore")


def _tick() -> None:
    if _PROGRESS is not None:
        _PROGRESS.put(1)


def _fold_task(train_rows: np.ndarray, held_out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    c = _CONTEXT
    return held_out, fold_proba(c["pool"].texts, c["pool"].labels, c["categories"], train_rows,
                                held_out)


def _full_pool_task() -> tuple[float, float, float]:
    """Accuracy and macro-F1 of the model trained on the whole pool with true labels."""
    c = _CONTEXT
    pool, test, categories = c["pool"], c["test"], c["categories"]
    started = time.perf_counter()
    model = fit_model(pool.texts, [(categories[y],) for y in pool.labels], labels=categories,
                      multilabel=False, version="full")
    seconds = time.perf_counter() - started
    predicted = model.predict_proba(test.texts).argmax(axis=1)
    return (float(np.mean(predicted == test.labels)),
            float(f1_score(test.labels, predicted, average="macro", zero_division=0)), seconds)


def _family_task(seed: int, annotator: str, names: list[str]) -> list[dict]:
    c = _CONTEXT
    a = c["args"]
    scenario = make_scenario(seed, annotator, c["pool"], c["test"], c["categories"],
                             c["embeddings"], c["answers"][seed, annotator],
                             seed_size=a.seed_size, batch=a.batch, budget=a.budget,
                             production=a.production, flag_rate=a.flag_rate)
    cache = FitCache(scenario)
    strategies = all_strategies()
    records: list[dict] = []
    for name in names:
        records.extend(run_strategy(scenario, strategies[name], cache, on_cycle=_tick))
    return records


# --- parent side --------------------------------------------------------------------------

def _data(args: argparse.Namespace) -> tuple[Split, Split, tuple[str, ...]]:
    data = load_banking77(args.datasets)
    if not args.quick:
        return data.train, data.test, data.categories
    rng = np.random.default_rng(12345)
    return (data.train.subset(np.sort(rng.choice(len(data.train), 1000, replace=False))),
            data.test.subset(np.sort(rng.choice(len(data.test), 400, replace=False))),
            data.categories)


def _wait(futures: list[Future], progress_queue, progress: Progress, task_id) -> None:
    """Advance the bar from worker ticks until every future is done (re-raising errors)."""
    while not all(f.done() for f in futures):
        try:
            progress.advance(task_id, progress_queue.get(timeout=0.5))
        except queue_module.Empty:
            pass
    while True:
        try:
            progress.advance(task_id, progress_queue.get_nowait())
        except queue_module.Empty:
            break
    for future in futures:
        future.result()


def _reference_proba(args, pool: Split, executor, console: Console) -> np.ndarray:
    """Out-of-fold reference probabilities, cached in ``bench/out/cache`` by data and folds."""
    digest = hashlib.blake2b(digest_size=8)
    digest.update("\n".join(pool.texts).encode())
    digest.update(pool.labels.tobytes())
    digest.update(f"{args.folds}".encode())
    path = BENCH / "out" / "cache" / f"reference-oof-{digest.hexdigest()}.npy"
    if path.exists():
        console.print(f"reference model: cached out-of-fold probabilities {path}")
        return np.load(path)
    console.print(f"reference model: {args.folds}-fold out-of-fold probabilities on the pool")
    proba = np.zeros((len(pool), len(_CONTEXT["categories"])))
    futures = [executor.submit(_fold_task, tr, te) for tr, te in fold_splits(pool.labels, args.folds, 0)]
    for future in futures:
        held_out, fold = future.result()
        proba[held_out] = fold
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, proba)
    return proba


def simulate(args: argparse.Namespace, console: Console) -> dict:
    """Run every (seed, annotator, strategy) and return the JSON-ready result."""
    started = time.perf_counter()
    pool, test, categories = _data(args)
    names = list(all_strategies()) if args.strategies == "all" else args.strategies.split(",")
    unknown = sorted(set(names) - set(all_strategies()))
    if unknown:
        raise SystemExit(f"unknown strategies {unknown}; choose from {sorted(all_strategies())}")
    annotators = args.annotators.split(",")
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    console.print(f"pool {len(pool):,} / test {len(test):,}; {len(names)} strategies x "
                  f"{len(seeds)} seeds x {len(annotators)} annotators; batch {args.batch}, "
                  f"seed set {args.seed_size}, budget {args.budget}")
    _CONTEXT.update(args=args, pool=pool, test=test, categories=categories,
                    embeddings=embed_texts(pool.texts, idf=pool_idf(pool.texts)))
    progress_queue = mp.get_context("fork").Queue()
    with ProcessPoolExecutor(args.workers, mp_context=mp.get_context("fork"),
                             initializer=_init_worker, initargs=(progress_queue,)) as executor:
        full = executor.submit(_full_pool_task)
        ambiguity = ambiguity_from_proba(_reference_proba(args, pool, executor, console), pool.labels)
        answers = {}
        for seed in seeds:
            for annotator in annotators:
                rng = np.random.default_rng([seed, 1])
                answers[seed, annotator] = annotator_answers(pool.labels, annotator, rng,
                                                             ambiguity=ambiguity,
                                                             mean_noise=args.noise)
        _CONTEXT["answers"] = answers
    # A second pool, created after the answers exist, so its forked workers inherit them.
    full_accuracy, full_f1, full_seconds = full.result()
    families: dict[str, list[str]] = {}
    strategies = all_strategies()
    for name in names:
        families.setdefault(strategies[name].family or name, []).append(name)
    tasks = sorted(((seed, annotator, members) for seed in seeds for annotator in annotators
                    for members in families.values()),
                   key=lambda t: -COST.get(strategies[t[2][0]].family, 1))
    cycles = int(np.ceil((args.budget - args.seed_size) / args.batch))
    records: list[dict] = []
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn()]
    with Progress(*columns, console=console) as progress, ProcessPoolExecutor(
            args.workers, mp_context=mp.get_context("fork"), initializer=_init_worker,
            initargs=(progress_queue,)) as executor:
        bar = progress.add_task("selection cycles",
                                total=cycles * len(names) * len(seeds) * len(annotators))
        futures = [executor.submit(_family_task, *task) for task in tasks]
        _wait(futures, progress_queue, progress, bar)
        for future in futures:
            records.extend(future.result())
    noisy_noise = error_probability(ambiguity, args.noise)
    return {
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "date": date.today().isoformat(),
        "machine": f"{platform.processor() or platform.machine()}, {mp.cpu_count()} cores, "
                   f"Python {platform.python_version()}, numpy {np.__version__}",
        "seconds": time.perf_counter() - started,
        "pool": len(pool), "test": len(test), "peer_subsample": PEER_SUBSAMPLE,
        "full_pool": {"accuracy": full_accuracy, "macro_f1": full_f1, "fit_seconds": full_seconds},
        "noise_model": {"mean": float(noisy_noise.mean()), "median": float(np.median(noisy_noise)),
                        "p90": float(np.percentile(noisy_noise, 90)), "max": float(noisy_noise.max())},
        "strategies": {name: [strategies[name].source, strategies[name].description]
                       for name in names},
        "records": records,
    }


def render(result: dict, args: argparse.Namespace) -> str:
    """Tables and figures from a result; returns the Markdown block."""
    cfg = result["config"]
    budget = int(cfg["budget"])
    targets = {f: f * result["full_pool"]["accuracy"] for f in TARGET_FRACTIONS}
    data = curves(result["records"])
    names = list(result["strategies"])
    sources = {n: v[0] for n, v in result["strategies"].items()}
    annotators = [a for a in cfg["annotators"].split(",") if any((a, n) in data for n in names)]
    summaries = {a: [summarise(data[a, n], n, targets) for n in names if (a, n) in data]
                 for a in annotators}
    registry = all_strategies()  # colours follow the full registry, so subsets match
    style = {n: v for n, v in plots.styles([(n, s.source) for n, s in registry.items()]).items()
             if n in names}
    figures = Path(args.figures)
    figures.mkdir(parents=True, exist_ok=True)
    plots.learning_curves(data, annotators, style, figures / "learning_curves.png")
    plots.learning_curves(data, annotators, style, figures / "learning_curves_vs_random.png",
                          relative=True)
    plots.aulc_bars(summaries, style, figures / "aulc.png")
    reach_figures = []
    for fraction in TARGET_FRACTIONS:
        if any(v is not None for items in summaries.values() for s in items
               for v in s.reach[fraction].values()):
            path = figures / f"labels_to_{round(100 * fraction)}.png"
            plots.reach_bars(summaries, fraction, budget, style, path)
            reach_figures.append((fraction, path))
    pooled = [summarise({**{(a, s): c for a in annotators for s, c in data[a, n].items()}}, n, {})
              for n in names]
    plots.cycle_times(pooled, style, figures / "cycle_time.png")
    if "noisy" in summaries:
        plots.noise_bars(summaries["noisy"], style, figures / "label_noise.png")

    full = result["full_pool"]
    nm = result["noise_model"]
    rel = lambda p: p.name if figures == BENCH else str(p)  # noqa: E731
    parts = [
        "## Label efficiency",
        "",
        f"- Date: {result['date']}; machine: {result['machine']}; wall time "
        f"{result['seconds'] / 60:.1f} min with {cfg['workers']} worker processes.",
        f"- Command: `python bench/label_efficiency.py{' --quick' if cfg['quick'] else ''}"
        f"{' --write-results' if cfg['write_results'] else ''}` (batch {cfg['batch']}, seed set "
        f"{cfg['seed_size']}, budget {budget:,}, {cfg['seeds']} seeds, noise {cfg['noise']}, "
        f"production {cfg['production']}, flag rate {cfg['flag_rate']}).",
        f"- Pool: banking77 train ({result['pool']:,} texts); held out: banking77 test "
        f"({result['test']:,}). Model every cycle: `backend.model.classifier.fit_model` (the product's "
        "default TF-IDF 1-2 grams + balanced logistic regression), identical for every strategy.",
        f"- Full-pool model (all {result['pool']:,} true labels): accuracy {full['accuracy']:.4f}, "
        f"macro-F1 {full['macro_f1']:.4f}. Targets: 90 % = {targets[0.90]:.4f}, "
        f"95 % = {targets[0.95]:.4f} accuracy.",
        f"- Noisy annotator: error probability per item mean {100 * nm['mean']:.1f} %, median "
        f"{100 * nm['median']:.1f} %, p90 {100 * nm['p90']:.1f} %, max {100 * nm['max']:.1f} % "
        "(proportional to 1 - out-of-fold reference probability of the true label).",
        "- AULC = area under the learning curve divided by its label range (mean accuracy over "
        "the run); ± = sample std across seeds; Δ columns are paired by seed (same seed set, "
        "same annotator draws); pp = percentage points.",
        "",
        "### Strategies",
        "",
        report.description_table({n: tuple(v) for n, v in result["strategies"].items()}),
        "",
    ]
    for annotator in annotators:
        parts += [f"### {annotator.capitalize()} annotator", "",
                  report.strategy_table(summaries[annotator], sources, budget,
                                        list(TARGET_FRACTIONS), noisy=annotator == "noisy"), ""]
    parts += ["### Failure slice: flagged production mistakes that got labelled", "",
              f"{cfg['production']:.0%} of the pool arrives as production traffic, one chunk per "
              "cycle; the model in service predicts it and each mistake is flagged with "
              f"probability {cfg['flag_rate']}. Flagged items stay selectable by every strategy; "
              "only lq-mix reads the flags.", "",
              report.failure_table(result["records"], names), ""]
    parts += ["### Per-cycle wall time (all seeds, both annotators; one thread per worker)", "",
              report.timing_table(pooled, sources), "",
              "Retrain = `fit_model` on the labelled set (the same model for every strategy, but its "
              "time depends on which items were labelled; a strategy whose batches matched "
              "another's reused that fit and shows its measured time). Scoring the 10k pool adds "
              "~0.1 s per cycle for every strategy. Cycle = select + retrain.", "",
              f"![learning curves]({rel(figures / 'learning_curves.png')})",
              f"![learning curves relative to random]({rel(figures / 'learning_curves_vs_random.png')})",
              f"![AULC]({rel(figures / 'aulc.png')})",
              *[f"![labels to {f:.0%}]({rel(p)})" for f, p in reach_figures],
              f"![label noise]({rel(figures / 'label_noise.png')})",
              f"![cycle time]({rel(figures / 'cycle_time.png')})", ""]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.from_json:
        result = json.loads(args.from_json.read_text())
        result["config"]["write_results"] = args.write_results
    else:
        result = simulate(args, console)
        path = args.out / "label_efficiency.json"
        path.write_text(json.dumps(result))
        console.print(f"records: {path}")
    block = render(result, args)
    (args.out / "label_efficiency.md").write_text(block + "\n")
    console.print(f"tables: {args.out / 'label_efficiency.md'}; figures: {args.figures}")
    if args.write_results:
        report.write_block(BENCH / "RESULTS.md", block)
        console.print(f"updated {BENCH / 'RESULTS.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
