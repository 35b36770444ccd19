"""Entity extraction benchmark (issue 16): which sentences to label next, measured on snips_slots.

Simulated loop, per (strategy, annotator, seed): a seeded pool of ``--pool`` train sentences, a
random seed set of ``--seed-size``, then ``--rounds`` rounds of: fit the production span model
(``backend/model/span_model.py``, the default CRF), tag the pool, pick ``--batch`` sentences,
have the annotator label them. After every fit the model is scored on all of test.jsonl
(entity micro-F1, exact span and type, seqeval). Both cost axes are recorded: sentences and
tokens labelled (a long sentence costs more to label).

Strategies: ``random``; pure top-k by ``least_confidence``, ``mnlp`` (Shen et al. 2017),
``mean_entropy``, ``max_entropy`` and ``total_entropy`` (sum of token entropies, which favours long sentences);
``default``: labelqueue's batch (``selection.compose_batch`` with the backend's share schedule
over the config's entity types, uncertain slice ranked by the model's default sequence measure,
diverse slice on the backend's IDF-weighted sentence embeddings, failure slice from annotators' overrides of the model's spans,
uniform control). Annotators: ``oracle`` (the gold spans) and ``noisy`` (each gold span,
independently with probability 0.15, is dropped, gets another type, or loses or gains a token
at one end: the mistakes span annotators make).

Records go to a JSONL file, one line per round, appended as runs finish, so an interrupted run
keeps what it measured; ``--report`` turns the file into tables and plots in bench/RESULTS.md's
format. Speed (``--speed``): ``/predict`` for 100 sentences through the Flask app, and a
retrain on 2,000 sentences.

    nice -n 15 python -m bench.ner_quality --seeds 5
    python -m bench.ner_quality --report
    nice -n 15 python -m bench.ner_quality --speed
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from seqeval.metrics import f1_score

from backend.model.features import embed_texts, pool_idf
from backend.model.span_model import DEFAULT_SEQUENCE_MEASURE, SpanModel, fit_span_model
from backend.model.span_tokens import Span, spans_to_tags, tag_runs, tokenize
from bench.data import DEFAULT_DATASETS
from selection.batch import compose_batch
from selection.mix import scheduled_mix
from selection.pool import LabelledSet, Pool
from selection.sequence_uncertainty import NEEDS_MARGINALS, SEQUENCE_MEASURES, total_token_entropy

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "ner_quality.jsonl"
STRATEGIES = ("random", "mnlp", "total_entropy", "default", "least_confidence", "max_entropy", "mean_entropy")
ANNOTATORS = ("oracle", "noisy")
NOISE = 0.15


@dataclass(frozen=True)
class Sentences:
    texts: list[str]
    spans: list[tuple[Span, ...]]
    tokens: np.ndarray


def load_snips(split: str, datasets: Path = DEFAULT_DATASETS) -> Sentences:
    rows = [json.loads(line) for line in (datasets / "snips_slots" / f"{split}.jsonl").open(encoding="utf-8")]
    return Sentences([r["text"] for r in rows],
                     [tuple((s["start"], s["end"], s["label"]) for s in r["spans"]) for r in rows],
                     np.array([len(r["tokens"]) for r in rows]))


def entity_types(datasets: Path = DEFAULT_DATASETS) -> tuple[str, ...]:
    return tuple(json.loads((datasets / "snips_slots" / "labels.json").read_text()))


def noisy_spans(text: str, spans: tuple[Span, ...], types: tuple[str, ...], rng: np.random.Generator) -> tuple:
    """The gold spans with the mistakes of a careless span annotator (see the module docstring)."""
    offsets = tokenize(text)
    out = []
    for start, end, label in spans:
        if rng.random() >= NOISE:
            out.append((start, end, label))
            continue
        mistake = rng.integers(3)
        if mistake == 0:
            continue
        if mistake == 1:
            out.append((start, end, str(rng.choice([t for t in types if t != label]))))
            continue
        first = next(i for i, (a, b) in enumerate(offsets) if b > start)
        last = max(i for i, (a, b) in enumerate(offsets) if a < end)
        if last > first and rng.random() < 0.5:
            last -= 1
        else:
            last = min(last + 1, len(offsets) - 1)
        out.append((offsets[first][0], offsets[last][1], label))
    return tuple(sorted(out))


def test_f1(model: SpanModel, test: Sentences) -> float:
    tagged = model.tag(test.texts)
    truth = [spans_to_tags(s.offsets, spans) for s, spans in zip(tagged, test.spans)]
    return float(f1_score(truth, [s.tags for s in tagged]))


def predicted_spans(model: SpanModel, tagged) -> tuple[Span, ...]:
    return tuple((tagged.offsets[a][0], tagged.offsets[b - 1][1], label) for a, b, label in tag_runs(tagged.tags))


def pick(strategy: str, model: SpanModel, pool: Sentences, embeddings: np.ndarray, labelled: list[int],
         overridden: list[bool], size: int, rng: np.random.Generator, seed: int) -> list[int]:
    """``size`` pool rows to label next (none already labelled)."""
    free = np.setdiff1d(np.arange(len(pool.texts)), labelled)
    if strategy == "random":
        return rng.choice(free, size=min(size, len(free)), replace=False).tolist()
    texts = [pool.texts[i] for i in free]
    full = strategy == "total_entropy" or strategy in NEEDS_MARGINALS
    tagged = model.tag(texts, marginals=full)
    logp = np.array([s.path_logprob for s in tagged])
    lengths = np.array([len(s.offsets) for s in tagged])
    if strategy == "total_entropy":
        scores = total_token_entropy([s.marginals for s in tagged])
    elif strategy == "default":
        u = SEQUENCE_MEASURES[DEFAULT_SEQUENCE_MEASURE](logp, lengths, None)
        batch = compose_batch(
            Pool(task_ids=free, proba=np.column_stack([1 - u / 2, u / 2]), embeddings=embeddings[free]),
            LabelledSet(task_ids=np.array(labelled), embeddings=embeddings[labelled],
                        overridden=np.array(overridden, dtype=bool)),
            size=size, mix=scheduled_mix(len(labelled), len(model.labels)), seed=seed, measure="margin")
        return [item.task_id for item in batch.items]
    else:
        scores = SEQUENCE_MEASURES[strategy](logp, lengths, [s.marginals for s in tagged] if full else None)
    order = np.lexsort((rng.random(len(free)), -scores))
    return free[order[:size]].tolist()


def run(strategy: str, annotator: str, seed: int, train: Sentences, test: Sentences, types: tuple[str, ...],
        args: argparse.Namespace) -> list[dict]:
    rng = np.random.default_rng([seed, STRATEGIES.index(strategy), ANNOTATORS.index(annotator)])
    pool_rows = np.random.default_rng(seed).choice(len(train.texts), size=args.pool, replace=False)
    pool = Sentences([train.texts[i] for i in pool_rows], [train.spans[i] for i in pool_rows], train.tokens[pool_rows])
    embeddings = embed_texts(pool.texts, seed=0, idf=pool_idf(pool.texts))  # as the pool cache embeds
    noise_rng = np.random.default_rng([seed, 99])
    answers = [noisy_spans(t, s, types, noise_rng) for t, s in zip(pool.texts, pool.spans)] \
        if annotator == "noisy" else pool.spans
    labelled = np.random.default_rng([seed, 7]).choice(len(pool.texts), size=args.seed_size, replace=False).tolist()
    overridden = [False] * len(labelled)
    records = []
    for round_ in range(args.rounds + 1):
        started = time.process_time()
        model = fit_span_model([pool.texts[i] for i in labelled], [answers[i] for i in labelled], labels=types,
                               version=f"r{round_}")
        fit_cpu = time.process_time() - started
        f1 = test_f1(model, test)
        records.append({"strategy": strategy, "annotator": annotator, "seed": seed, "round": round_,
                        "sentences": len(labelled), "tokens": int(pool.tokens[labelled].sum()),
                        "entities": int(sum(len(answers[i]) for i in labelled)), "f1": f1,
                        "fit_cpu_seconds": round(fit_cpu, 3)})
        if round_ == args.rounds:
            break
        started = time.process_time()
        batch = pick(strategy, model, pool, embeddings, labelled, overridden, args.batch, rng, seed * 1000 + round_)
        records[-1]["select_cpu_seconds"] = round(time.process_time() - started, 3)
        before = model.tag([pool.texts[i] for i in batch])
        overridden += [predicted_spans(model, s) != tuple(answers[i]) for s, i in zip(before, batch)]
        labelled += batch
    return records


def main_runs(args: argparse.Namespace) -> None:
    train, test, types = load_snips("train"), load_snips("test"), entity_types()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    done = {(r["strategy"], r["annotator"], r["seed"]) for r in read_records(args.out)}
    for annotator in args.annotators:
        for seed in range(args.seeds):
            for strategy in args.strategies:
                if (strategy, annotator, seed) in done:
                    continue
                started = time.monotonic()
                records = run(strategy, annotator, seed, train, test, types, args)
                with args.out.open("a") as out:
                    out.writelines(json.dumps(r) + "\n" for r in records)
                logger.warning("%s/%s/seed %d: final F1 %.3f at %d sentences, %d tokens (%.0f s)", strategy,
                               annotator, seed, records[-1]["f1"], records[-1]["sentences"], records[-1]["tokens"],
                               time.monotonic() - started)


def read_records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.open()] if path.exists() else []


def curves(records: Sequence[dict]) -> dict[tuple[str, str], dict[int, list[dict]]]:
    out: dict[tuple[str, str], dict[int, list[dict]]] = {}
    for r in records:
        out.setdefault((r["strategy"], r["annotator"]), {}).setdefault(r["seed"], []).append(r)
    return {k: {s: sorted(v, key=lambda r: r["round"]) for s, v in by_seed.items()} for k, by_seed in out.items()}


def aulc(x: np.ndarray, y: np.ndarray, grid: np.ndarray) -> float:
    """Mean height of the curve over ``grid`` (linear interpolation; held flat past its ends)."""
    return float(np.trapezoid(np.interp(grid, x, y), grid) / (grid[-1] - grid[0]))


def summaries(records: Sequence[dict]) -> tuple[dict, np.ndarray, np.ndarray]:
    """Per (strategy, annotator): AULC on the sentence and token axes per seed, over common grids.

    The token grid ends at the smallest final token count of any run of that annotator, so every
    strategy is compared over a token budget all of them reached (random ends lowest, since
    uncertainty sampling prefers long sentences).
    """
    data = curves(records)
    out = {}
    for annotator in {a for _, a in data}:
        runs = [rs for (s, a), by_seed in data.items() if a == annotator for rs in by_seed.values()]
        sent_grid = np.linspace(runs[0][0]["sentences"], min(r[-1]["sentences"] for r in runs), 50)
        tok_grid = np.linspace(max(r[0]["tokens"] for r in runs), min(r[-1]["tokens"] for r in runs), 50)
        for (strategy, a), by_seed in data.items():
            if a != annotator:
                continue
            out[(strategy, a)] = {
                seed: {"sentences": aulc(np.array([r["sentences"] for r in rs]), np.array([r["f1"] for r in rs]),
                                         sent_grid),
                       "tokens": aulc(np.array([r["tokens"] for r in rs]), np.array([r["f1"] for r in rs]), tok_grid),
                       "final_f1": rs[-1]["f1"], "final_tokens": rs[-1]["tokens"]}
                for seed, rs in by_seed.items()}
    return out, sent_grid, tok_grid


def report(path: Path, plot_dir: Path) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_records(path)
    data = curves(records)
    table, _, _ = summaries(records)
    lines = ["| annotator | strategy | runs (seeds) | entity-F1 AULC, sentences axis | entity-F1 AULC, tokens axis | "
             "vs random (tokens, paired) | final F1 | tokens labelled |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for (strategy, annotator), by_seed in sorted(table.items(), key=lambda kv: (kv[0][1], STRATEGIES.index(kv[0][0]))):
        seeds = sorted(by_seed)
        tok = np.array([by_seed[s]["tokens"] for s in seeds])
        sen = np.array([by_seed[s]["sentences"] for s in seeds])
        rand = table.get(("random", annotator), {})
        paired = [by_seed[s]["tokens"] - rand[s]["tokens"] for s in seeds if s in rand]
        diff = f"{100 * np.mean(paired):+.1f} pp ± {100 * np.std(paired):.1f}" if paired and strategy != "random" else ""
        lines.append(f"| {annotator} | {strategy} | {len(seeds)} | {100 * sen.mean():.1f} ± {100 * sen.std():.1f} | "
                     f"{100 * tok.mean():.1f} ± {100 * tok.std():.1f} | {diff} | "
                     f"{np.mean([by_seed[s]['final_f1'] for s in seeds]):.3f} | "
                     f"{np.mean([by_seed[s]['final_tokens'] for s in seeds]):.0f} |")
    plot_dir.mkdir(parents=True, exist_ok=True)
    annotators = sorted({a for _, a in data})
    fig, axes = plt.subplots(len(annotators), 2, figsize=(11, 4 * len(annotators)), squeeze=False)
    for row, annotator in enumerate(annotators):
        for col, axis in enumerate(("sentences", "tokens")):
            ax = axes[row][col]
            for strategy in STRATEGIES:
                by_seed = data.get((strategy, annotator))
                if not by_seed:
                    continue
                n = min(len(rs) for rs in by_seed.values())
                x = np.mean([[r[axis] for r in rs[:n]] for rs in by_seed.values()], axis=0)
                y = np.mean([[r["f1"] for r in rs[:n]] for rs in by_seed.values()], axis=0)
                ax.plot(x, y, marker="o", markersize=3, label=f"{strategy} ({len(by_seed)})")
            ax.set_xlabel(f"{axis} labelled")
            ax.set_ylabel("entity micro-F1 on test")
            ax.set_title(f"{annotator} annotator, F1 vs {axis}")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(plot_dir / "ner_learning_curves.png", dpi=110)
    plt.close(fig)
    return "\n".join(lines)


def speed(args: argparse.Namespace) -> dict:
    """``/predict`` latency for 100 sentences (Flask app, in process) and a retrain on 2,000 sentences."""
    import tempfile

    from backend.labelstudio.label_config import parse_label_config
    from backend.settings import Settings
    from backend.web.app import create_app

    train, test, types = load_snips("train"), load_snips("test"), entity_types()
    rows = np.random.default_rng(0).choice(len(train.texts), size=2000, replace=False)
    wall, cpu = time.monotonic(), time.process_time()
    model = fit_span_model([train.texts[i] for i in rows], [train.spans[i] for i in rows], labels=types, version="v1")
    fit = {"wall_seconds": time.monotonic() - wall, "cpu_seconds": time.process_time() - cpu}
    config = ('<View><Labels name="label" toName="text">' + "".join(f'<Label value="{t}"/>' for t in types)
              + '</Labels><Text name="text" value="$text"/></View>')
    parse_label_config(config)
    with tempfile.TemporaryDirectory() as data_dir:
        app = create_app(Settings(data_dir=Path(data_dir), label_studio_url="http://127.0.0.1:9",
                                  label_studio_api_key="x"))
        try:
            client = app.test_client()
            client.post("/setup", json={"project": "1.1", "schema": config})
            app.extensions["labelqueue"].store.save(1, model, {"number": 1, "n_examples": 2000})
            body = {"project": "1.1", "label_config": config,
                    "tasks": [{"id": i, "data": {"text": t}} for i, t in enumerate(test.texts[:100])]}
            latencies = []
            for _ in range(args.calls + 3):
                started = time.perf_counter()
                response = client.post("/predict", json=body)
                latencies.append(time.perf_counter() - started)
                assert response.status_code == 200 and len(response.get_json()["results"]) == 100
            latencies = np.array(latencies[3:])
        finally:
            app.extensions["labelqueue"].close()
    return {"retrain_2000": fit, "predict_100": {"calls": len(latencies), "p50_ms": 1000 * float(np.median(latencies)),
                                                 "p90_ms": 1000 * float(np.percentile(latencies, 90))},
            "test_f1_2000": test_f1(model, test)}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--pool", type=int, default=1500)
    parser.add_argument("--seed-size", type=int, default=20)
    parser.add_argument("--batch", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES[:4]), choices=STRATEGIES)
    parser.add_argument("--annotators", nargs="+", default=list(ANNOTATORS), choices=ANNOTATORS)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--report", action="store_true", help="print the tables and write the plots")
    parser.add_argument("--speed", action="store_true", help="time /predict and a retrain on 2,000 sentences")
    parser.add_argument("--calls", type=int, default=30)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    if args.report:
        print(report(args.out, HERE))
    elif args.speed:
        print(json.dumps(speed(args), indent=2))
    else:
        main_runs(args)


if __name__ == "__main__":
    main()
