"""The report's plots: matplotlib figures rendered to PNG bytes, one function per section.

Uses ``matplotlib.figure.Figure`` directly, never ``pyplot``: pyplot keeps global state and is
not safe in the backend's worker threads, while a ``Figure`` is an ordinary object. Every
function takes the measurement record (``backend/measure/measurement_record.py``) and returns PNG bytes, or
None when there is nothing to plot yet (the report then says so in words).
"""
from __future__ import annotations

import io

from matplotlib.figure import Figure

from backend.measure.measurement_record import Measurement

#: One colour per slice, the same in every plot.
SLICE_COLOURS = {"uncertain": "#d95f02", "diverse": "#7570b3", "failure": "#e7298a", "control": "#1b9e77",
                 "unqueued": "#999999"}
DPI = 110


def png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def learning_curve(m: Measurement) -> bytes | None:
    """Control accuracy (sentence exact match for spans; 95 % Wilson interval) and macro-F1 (entity F1)
    against the training-set size."""
    rows = m.measured_cycles
    if not rows:
        return None
    figure = Figure(figsize=(8, 3.8))
    ax = figure.add_subplot()
    x = [r["training_labels"] for r in rows]
    acc = [r["control"]["accuracy"] for r in rows]
    below = [a - r["control"]["low"] for a, r in zip(acc, rows)]
    above = [r["control"]["high"] - a for a, r in zip(acc, rows)]
    ax.errorbar(x, acc, yerr=[below, above], fmt="o-", color=SLICE_COLOURS["control"], capsize=4,
                label=f"{m.quality_name} on control (95 % interval)")
    ax.fill_between(x, [r["control"]["low"] for r in rows], [r["control"]["high"] for r in rows],
                    color=SLICE_COLOURS["control"], alpha=0.12)
    key, name = m.f1_figure
    ax.plot(x, [r["control"][key] for r in rows], "s--", color="#555555", label=f"{name} on control")
    for xi, yi, r in zip(x, acc, rows):
        ax.annotate(f"c{r['cycle']} n={r['control']['n']}", (xi, yi), textcoords="offset points", xytext=(4, 6),
                    fontsize=7)
    ax.set(xlabel="labels the model in service was trained on", ylabel="quality on control", ylim=(0, 1.05))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return png(figure)


def gain_and_cost(m: Measurement) -> bytes | None:
    """Gain per 100 labels (with the warning threshold) and cost per point, per cycle."""
    rows = [r for r in m.cycles if r["gain_points_per_100"] is not None]
    if not rows:
        return None
    figure = Figure(figsize=(8, 3.6))
    gain_ax, cost_ax = figure.subplots(1, 2)
    cycles = [str(r["cycle"]) for r in rows]
    gains = [r["gain_points_per_100"] for r in rows]
    gain_ax.bar(cycles, gains, color=["#1b9e77" if g > 0 else "#d95f02" for g in gains])
    threshold = m.thresholds["gain_per_label"] * 10_000
    gain_ax.axhline(threshold, color="#333333", linestyle="--", linewidth=1, label=f"threshold {threshold:g}")
    gain_ax.axhline(0, color="#999999", linewidth=0.8)
    gain_ax.set(xlabel="cycle", ylabel=f"{m.quality_name} points per 100 labels", title="gain per label")
    gain_ax.legend(fontsize=8)
    costs = [r["cost_per_point"] for r in rows]
    cost_ax.bar(cycles, [c or 0 for c in costs], color="#7570b3")
    for i, c in enumerate(costs):
        if c is None:
            cost_ax.annotate("no gain", (i, 0), ha="center", va="bottom", fontsize=7, rotation=90)
    cost_ax.set(xlabel="cycle", ylabel=f"{m.cost_unit} per point", title="label cost per point")
    for ax in (gain_ax, cost_ax):
        ax.grid(axis="y", alpha=0.3)
    return png(figure)


def agreement_by_slice(m: Measurement) -> bytes | None:
    """Per slice (tasks labelled by two or more annotators): percent agreement and kappa, or for
    spans, span F1 and the share of sentences agreed on every span."""
    per_slice = {s: a for s, a in m.agreement["per_slice"].items() if a["items"]}
    if not per_slice:
        return None
    first, second = ((("span_f1", "span F1"), ("percent", "whole sentence agreed")) if m.is_spans
                     else (("percent", "percent agreement"), ("kappa", "kappa")))
    figure = Figure(figsize=(8, 3.4))
    ax = figure.add_subplot()
    names = list(per_slice)
    positions = range(len(names))
    ax.bar([p - 0.2 for p in positions], [per_slice[s].get(first[0]) or 0 for s in names], width=0.4,
           color=[SLICE_COLOURS.get(s, "#999999") for s in names], label=first[1])
    ax.bar([p + 0.2 for p in positions], [per_slice[s].get(second[0]) or 0 for s in names], width=0.4, color="#cccccc",
           edgecolor="#333333", label=second[1])
    unit = "sentences" if m.is_spans else "tasks"
    ax.set_xticks(list(positions), [f"{s}\n{per_slice[s]['items']} {unit}" for s in names])
    ax.set(ylim=(min(0, *[per_slice[s].get(second[0]) or 0 for s in names]) - 0.05, 1.05), ylabel="agreement")
    ax.axhline(0, color="#999999", linewidth=0.8)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return png(figure)


def class_coverage(m: Measurement) -> bytes | None:
    """Labels per class against the rare-class threshold; high-impact classes stand out."""
    classes = m.coverage["classes"]
    if not any(c["labels"] for c in classes):
        return None
    figure = Figure(figsize=(8, max(2.5, 0.32 * len(classes) + 1)))
    ax = figure.add_subplot()
    names = [c["label"] + (" *" if c["high_impact"] else "") for c in classes]
    colours = ["#d95f02" if c["below_threshold"] else ("#e7298a" if c["high_impact"] else "#1b9e77") for c in classes]
    ax.barh(names, [c["labels"] for c in classes], color=colours)
    ax.axvline(m.coverage["threshold"], color="#333333", linestyle="--", linewidth=1,
               label=f"threshold {m.coverage['threshold']}")
    ax.invert_yaxis()
    ax.set(xlabel="labels (orange: below threshold, * high-impact)")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    return png(figure)


def production_error(m: Measurement) -> bytes | None:
    """Per model version: disagreement with annotators on control, and error on production feedback."""
    versions = [v for v in m.production if v["control"]["n"] or v["feedback"]["n"]]
    if not versions:  # an empty plot would also make matplotlib warn about a legend without entries
        return None
    figure = Figure(figsize=(8, 3.6))
    ax = figure.add_subplot()
    for offset, source, colour, label in ((-0.12, "control", "#1b9e77", "disagreement on control"),
                                          (0.12, "feedback", "#d95f02", "error on production feedback")):
        points = [(i + offset, v[source]) for i, v in enumerate(versions) if v[source]["n"]]
        if points:
            ax.errorbar([p for p, _ in points], [e["error"] for _, e in points],
                        yerr=[[e["error"] - e["low"] for _, e in points], [e["high"] - e["error"] for _, e in points]],
                        fmt="o", color=colour, capsize=4, label=label)
    ax.set_xticks(range(len(versions)), [v["model_version"].split("-")[0] for v in versions])
    ax.set(xlabel="model version (in order of service)", ylabel="error rate (95 % interval)", ylim=(-0.02, 1.02))
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return png(figure)
