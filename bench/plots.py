"""Figures for RESULTS.md: learning curves, AULC, labels to target, noise and cycle time.

Colours group strategies by where they come from, so a reader can tell ours from the peers'
at a glance: labelqueue in blues/greens (the default mix thick), peers in warm colours, random
in black.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from bench.aggregate import Curve, Summary, mean_curve  # noqa: E402

SOURCE_COLOURS = {
    "baseline": ["#000000"],
    "labelqueue": ["#08519c", "#3182bd", "#6baed6", "#006d2c", "#31a354", "#74c476", "#756bb1",
                   "#00bcd4"],
    "scikit-activeml": ["#d94801", "#fd8d3c", "#fdae6b"],
    "small-text": ["#a50f15", "#ef3b2c", "#fc9272"],
    "modAL": ["#7a0177", "#f768a1"],
}


def styles(strategies: list[tuple[str, str]]) -> dict[str, dict]:
    """Line style per strategy name from ``(name, source)`` pairs, stable across figures."""
    used: dict[str, int] = {}
    out = {}
    for name, source in strategies:
        palette = SOURCE_COLOURS.get(source, ["#777777"])
        colour = palette[used.get(source, 0) % len(palette)]
        used[source] = used.get(source, 0) + 1
        out[name] = {"color": colour,
                     "linestyle": "-" if source in ("labelqueue", "baseline") else "--",
                     "linewidth": 2.6 if name in ("lq-mix", "random") else 1.3}
    return out


def _distinct(data: dict[tuple[str, str], dict[int, Curve]], annotator: str,
              style: dict[str, dict]) -> dict[str, list[str]]:
    """Strategies to draw, each with the later strategies whose curves are identical to it.

    The peers' margin sampling picks exactly the batches our plain top-k margin picks, so their
    lines would hide each other; they are drawn once and named together in the legend.
    """
    drawn: dict[str, list[str]] = {}
    for name in style:
        by_seed = data.get((annotator, name))
        if not by_seed:
            continue
        twin = next((other for other in drawn
                     if data[annotator, other].keys() == by_seed.keys()
                     and all(np.array_equal(data[annotator, other][s].accuracy, c.accuracy)
                             and np.array_equal(data[annotator, other][s].macro_f1, c.macro_f1)
                             for s, c in by_seed.items())), None)
        if twin is None:
            drawn[name] = []
        else:
            drawn[twin].append(name)
    return drawn


def learning_curves(data: dict[tuple[str, str], dict[int, Curve]], annotators: list[str],
                    style: dict[str, dict], path: Path, *, relative: bool = False) -> None:
    """Accuracy and macro-F1 against labels, mean over seeds with a +-1 std band.

    With ``relative``, each curve is shown minus random's on the same seed (paired), which
    makes small gaps between strategies readable.
    """
    fig, axes = plt.subplots(len(annotators), 2, figsize=(14, 5.2 * len(annotators)), squeeze=False)
    for row, annotator in enumerate(annotators):
        for col, metric in enumerate(("accuracy", "macro_f1")):
            ax = axes[row][col]
            for name, aliases in _distinct(data, annotator, style).items():
                by_seed = data[annotator, name]
                if relative:
                    base = data[annotator, "random"]
                    diffs = np.stack([getattr(c, metric) - getattr(base[s], metric)
                                      for s, c in by_seed.items()])
                    labels = next(iter(by_seed.values())).labels
                    mean = diffs.mean(axis=0)
                    std = diffs.std(axis=0, ddof=1) if len(diffs) > 1 else np.zeros_like(mean)
                else:
                    labels, mean, std = mean_curve(by_seed, metric)
                label = f"{name} (= {', '.join(aliases)})" if aliases else name
                ax.plot(labels, mean, label=label, **style[name])
                ax.fill_between(labels, mean - std, mean + std, color=style[name]["color"],
                                alpha=0.08)
            ax.set_title(f"{annotator} annotator: {'Δ ' if relative else ''}"
                         f"{metric.replace('_', '-')}{' vs random (paired)' if relative else ''}")
            ax.set_xlabel("labels")
            ax.grid(alpha=0.3)
            if relative:
                ax.axhline(0.0, color="black", linewidth=0.8)
    axes[0][1].legend(loc="lower right", fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def aulc_bars(summaries: dict[str, list[Summary]], style: dict[str, dict], path: Path) -> None:
    """Horizontal bars of AULC (accuracy and macro-F1), mean +- std across seeds."""
    annotators = list(summaries)
    fig, axes = plt.subplots(1, 2 * len(annotators), figsize=(6 * len(annotators) + 4, 7),
                             sharey=True)
    for a, annotator in enumerate(annotators):
        items = summaries[annotator]
        names = [s.strategy for s in items]
        for m, (metric, title) in enumerate((("aulc_accuracy", "AULC accuracy"),
                                             ("aulc_f1", "AULC macro-F1"))):
            ax = axes[2 * a + m]
            means = [getattr(s, metric).mean for s in items]
            stds = [getattr(s, metric).std for s in items]
            ax.barh(names, means, xerr=stds, color=[style[n]["color"] for n in names])
            low = min(means) - 2 * max(stds) - 0.01
            ax.set_xlim(low, max(means) + 2 * max(stds) + 0.01)
            ax.set_title(f"{annotator}: {title}")
            ax.grid(axis="x", alpha=0.3)
    axes[0].invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def reach_bars(summaries: dict[str, list[Summary]], fraction: float, budget: int,
               style: dict[str, dict], path: Path) -> None:
    """Labels needed to reach ``fraction`` of the full-pool accuracy (budget+ when not reached)."""
    annotators = list(summaries)
    fig, axes = plt.subplots(1, len(annotators), figsize=(7 * len(annotators), 7), sharey=True,
                             squeeze=False)
    for a, annotator in enumerate(annotators):
        ax = axes[0][a]
        items = summaries[annotator]
        names = [s.strategy for s in items]
        for i, s in enumerate(items):
            values = [v if v is not None else np.nan for v in s.reach[fraction].values()]
            reached = [v for v in values if not np.isnan(v)]
            mean = np.mean(reached) if reached else budget
            ax.barh(i, mean, color=style[s.strategy]["color"],
                    hatch="" if len(reached) == len(values) else "//",
                    alpha=1.0 if reached else 0.25)
            ax.text(mean, i, f" {len(reached)}/{len(values)}", va="center", fontsize=8)
        ax.set_yticks(range(len(names)), names)
        ax.axvline(budget, color="black", linewidth=0.8)
        ax.set_title(f"{annotator}: labels to {fraction:.0%} of full-pool accuracy\n"
                     "(mean over seeds that reached it; k/n = seeds that did)")
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def noise_bars(summaries: list[Summary], style: dict[str, dict], path: Path) -> None:
    """Share of wrong labels among the items each strategy chose (noisy annotator)."""
    fig, ax = plt.subplots(figsize=(8, 7))
    names = [s.strategy for s in summaries]
    ax.barh(names, [100 * s.noise_rate.mean for s in summaries],
            xerr=[100 * s.noise_rate.std for s in summaries],
            color=[style[n]["color"] for n in names])
    ax.invert_yaxis()
    ax.set_xlabel("% of chosen items mislabelled by the noisy annotator")
    ax.set_title("Label noise bought by each strategy")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def cycle_times(summaries: list[Summary], style: dict[str, dict], path: Path) -> None:
    """Per-cycle selection wall time (box plot, log scale) beside the shared retrain time."""
    fig, ax = plt.subplots(figsize=(9, 7))
    names = [s.strategy for s in summaries]
    data = [np.maximum(s.select_seconds, 1e-4) for s in summaries]
    box = ax.boxplot(data, vert=False, tick_labels=names, patch_artist=True, showfliers=True)
    for patch, name in zip(box["boxes"], names):
        patch.set_facecolor(style[name]["color"])
        patch.set_alpha(0.6)
    fits = np.concatenate([s.fit_seconds for s in summaries])
    if len(fits):
        ax.axvline(np.median(fits), color="grey", linestyle=":",
                   label=f"median retrain (fit_model) {np.median(fits):.2f} s")
        ax.legend(loc="upper right")
    ax.set_xscale("log")
    ax.invert_yaxis()
    ax.set_xlabel("seconds per selection cycle (one batch), single thread")
    ax.set_title("Selection time per cycle")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
