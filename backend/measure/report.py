"""The loop report: one self-contained HTML page an admin can read without any other tool.

Plots are PNGs embedded as data URIs and the styles are inline, so the page works saved to
disk, mailed, or opened offline; it has no scripts. It opens with five answers in plain words
(``backend/measure/report_answers.py``), then the warnings, then a section per figure with the
numbers behind it. Every section has a stable ``id`` (:data:`SECTIONS`) that the browser test
checks.
"""
from __future__ import annotations

import base64
import html
from collections.abc import Callable, Sequence
from typing import Any

from backend.measure import report_figures
from backend.measure.measurement_record import Measurement
from backend.measure.report_answers import (
    amount,
    answer_agreement,
    answer_cost,
    answer_coverage,
    answer_helping,
    answer_production,
    fmt,
    pct,
    span,
)

STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:62rem;padding:0 1rem;color:#222}
h1{margin-bottom:.2rem} h2{margin-top:2.2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
.muted{color:#666;font-size:.9em} img{max-width:100%} table{border-collapse:collapse;font-size:.85em;margin:.6rem 0}
td,th{border:1px solid #ddd;padding:.25rem .5rem;text-align:right} th{background:#f5f5f5}
td:first-child,th:first-child{text-align:left} dt{font-weight:600;margin-top:.6rem} dd{margin-left:1rem}
.warning{border-left:4px solid #d95f02;background:#fff4ec;padding:.5rem .8rem;margin:.6rem 0}
.ok{border-left:4px solid #1b9e77;background:#eefaf5;padding:.5rem .8rem}
"""
SECTIONS = ("summary", "warnings", "learning-curve", "cost", "agreement", "coverage", "failure-modes",
            "production", "cycles", "mix-changes")


def esc(value: Any) -> str:
    return html.escape(str(value))


def image(render: Callable[[Measurement], bytes | None], m: Measurement, alt: str, empty: str) -> str:
    data = render(m)
    if data is None:
        return f"<p class='muted'>{esc(empty)}</p>"
    return f"<img alt='{esc(alt)}' src='data:image/png;base64,{base64.b64encode(data).decode()}'>"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def section(anchor: str, title: str, *parts: str) -> str:
    return f"<section id='{anchor}'><h2>{esc(title)}</h2>{''.join(parts)}</section>"


def mix_text(mix: dict[str, float]) -> str:
    return ", ".join(f"{name} {share:.0%}" for name, share in mix.items())


def summary_section(m: Measurement) -> str:
    answers = (("Is the loop helping?", answer_helping(m)),
               ("What does a point of quality cost?", answer_cost(m)),
               ("Are annotators agreeing?", answer_agreement(m)),
               ("Which classes are still uncovered?", answer_coverage(m)),
               ("Did the last retrain lower the production error rate?", answer_production(m)))
    return section("summary", "At a glance",
                   "<dl>" + "".join(f"<dt>{esc(q)}</dt><dd>{esc(a)}</dd>" for q, a in answers) + "</dl>")


def warnings_section(m: Measurement) -> str:
    measured = len(m.measured_cycles)
    patience = m.thresholds["patience"]
    items = "".join(f"<div class='warning'><strong>{esc(w['message'])}</strong><br>{esc(w['suggestion'])}</div>"
                    for w in m.warnings)
    if measured < patience:  # "no warning" must not read as "the trend is fine"
        return section("warnings", "Warnings", items, f"<p class='muted'>Not much to go on yet: the trend warnings "
                       f"need {patience} cycles with labelled control items ({measured} so far).</p>")
    return section("warnings", "Warnings", items or "<p class='ok'>No warning: nothing suggests the loop is "
                   "selecting the wrong work.</p>")


def learning_curve_section(m: Measurement) -> str:
    return section("learning-curve", "Learning curve on the control slice",
                   "<p>Quality of the model in service on control items, as it predicted them before they were "
                   "labelled. The control slice is a uniform random sample, so this estimates quality on the whole "
                   "pool; the interval shows how little a few items can tell.</p>",
                   image(report_figures.learning_curve, m, "learning curve", "No control item has been labelled yet."),
                   entity_tables(m))


def entity_tables(m: Measurement) -> str:
    """A span project's entity precision / recall / F1 on control per cycle, and per type for the
    latest measured cycle: exact match alone would call a sentence with one wrong span of five wrong."""
    rows = m.measured_cycles
    if not m.is_spans or not rows:
        return ""
    per_cycle = [(r["cycle"], r["control"]["n"], pct(r["control"]["accuracy"]), pct(r["control"]["entity_precision"]),
                  pct(r["control"]["entity_recall"]), pct(r["control"]["entity_f1"]),
                  f"{pct(r['control']['f1_low'])}-{pct(r['control']['f1_high'])}") for r in rows]
    latest = rows[-1]
    per_type = [(name, pct(s["precision"]), pct(s["recall"]), pct(s["f1"]), s["support"], s["predicted"])
                for name, s in latest["control"]["per_type"].items()]
    return ("<p>Entities on control: exact span and type, counted over all control sentences of the cycle.</p>"
            + table(("cycle", "control sentences", "sentence exact match", "entity precision", "entity recall",
                     "entity F1", "95 % interval"), per_cycle)
            + f"<p>Per entity type, cycle {latest['cycle']}:</p>"
            + table(("type", "precision", "recall", "F1", "on control (annotated)", "predicted"), per_type))


def cost_section(m: Measurement) -> str:
    control_n = {r["cycle"]: r["control"]["n"] for r in m.cycles if r["control"]}
    rows = [(r["cycle"], f"{r['gain_since']}-{r['cycle']}", f"{control_n[r['gain_since']]} / {control_n[r['cycle']]}",
             r["labels_since"], amount(r["cost_since"]),
             fmt(r["gain_points_per_100"]), amount(r["cost_per_point"]) if r["cost_per_point"] else "no gain")
            for r in m.cycles if r["gain_since"] is not None]
    return section("cost", "Gain per label and cost per point",
                   f"<p>Change in control {esc(m.quality_name)} since the previous measured cycle, per 100 "
                   f"labels added in between, and the label cost ({esc(m.cost_unit)}) of one point of it. Each "
                   f"figure rests on the control items of its two cycles (column <em>control items</em>): with a "
                   f"few, one item moves it by tens of points, so read the learning curve's intervals first.</p>",
                   unit_cost_paragraph(m),
                   image(report_figures.gain_and_cost, m, "gain and cost", "Needs two cycles with labelled control items."),
                   table(("cycle", "since", "control items", "labels", "cost", "points per 100 labels",
                          "cost per point"), rows))


def unit_cost_paragraph(m: Measurement) -> str:
    """A span project's cost per token and per entity: a long sentence costs more to label than
    a short one, so the cost per label alone would hide where the effort goes."""
    units = m.totals.get("cost_per_unit") or {}
    if not units:
        return ""
    plural = {"entity": "entities"}
    parts = [f"{amount(figures['cost'])} per {esc(unit)} ({figures['n']} {esc(plural.get(unit, unit + 's'))})"
             for unit, figures in units.items()]
    tasks = next(iter(units.values()))["tasks"]
    return (f"<p>Label cost ({esc(m.cost_unit)}) per unit of annotator effort, over the {tasks} labelled "
            f"sentences whose annotations carry a lead time: {'; '.join(parts)}.</p>")


def agreement_section(m: Measurement) -> str:
    """Agreement per slice; a span project's leads with span F1, since whole-sentence agreement
    calls two annotators who differ on one span of five as far apart as two who share none."""
    slices = [("all slices", m.agreement["overall"]), *m.agreement["per_slice"].items()]
    if m.is_spans:
        rows = [(name, a["items"], a["annotators"], pct(a.get("span_f1")), pct(a["percent"]), fmt(a["kappa"]),
                 a["kappa_kind"]) for name, a in slices]
        headers = ("slice", "sentences", "annotators", "span F1", "whole sentence agreed", "kappa", "kind")
        intro = ("<p>Sentences labelled by two or more annotators. Span F1: of the spans two annotators marked, the "
                 "share both marked with the same start, end and type, pooled over every pair of annotators. Whole "
                 "sentence agreed, and its kappa (Cohen's for two annotators on every sentence, Fleiss' otherwise), "
                 "count a sentence only when every span matches.</p>")
    else:
        rows = [(name, a["items"], a["annotators"], pct(a["percent"]), fmt(a["kappa"]), a["kappa_kind"])
                for name, a in slices]
        headers = ("slice", "tasks", "annotators", "agreement", "kappa", "kind")
        intro = ("<p>Tasks labelled by two or more annotators. Cohen's kappa when the same two annotators labelled "
                 "every task, Fleiss' kappa otherwise.</p>")
    return section("agreement", "Agreement among labellers", intro,
                   image(report_figures.agreement_by_slice, m, "agreement by slice", "No task has two annotations yet."),
                   table(headers, rows))


def coverage_section(m: Measurement) -> str:
    rows = [(c["label"] + (" (high-impact)" if c["high_impact"] else ""), c["labels"],
             "yes" if c["below_threshold"] else "", c["control_support"], pct(c["control_recall"]))
            for c in m.coverage["classes"]]
    unknown = m.coverage["unknown_high_impact"]
    note = (f"<p class='muted'>Not in the labelling config (check LABELQUEUE_HIGH_IMPACT_CLASSES): "
            f"{esc(', '.join(unknown))}</p>") if unknown else ""
    return section("coverage", "Class coverage",
                   image(report_figures.class_coverage, m, "class coverage", "No data yet: no task is labelled."), note,
                   table(("class", "labels", "below threshold", "on control (all cycles)", "recall on control"), rows))


def failure_section(m: Measurement) -> str:
    modes = m.failure_modes
    parts = []
    if modes["classes"]:
        parts.append(table(("failure-mode class", "precision on control", "recall on control", "on control"),
                           [(c["label"], pct(c["precision"]), pct(c["recall"]), c["support"]) for c in modes["classes"]]))
    elif modes["configured"]:
        parts.append("<p class='muted'>No control item measured yet for the failure-mode classes.</p>")
    else:
        parts.append("<p class='muted'>No failure-mode classes set (LABELQUEUE_FAILURE_MODE_CLASSES).</p>")
    if modes["unknown"]:
        parts.append(f"<p class='muted'>Not in the labelling config: {esc(', '.join(modes['unknown']))}</p>")
    flagged = modes["flagged"]
    if flagged["n"]:
        parts.append(f"<p>Flagged production failures labelled so far: {flagged['n']}; the model in service had "
                     f"{pct(flagged['accuracy'])} of them right before they were labelled.</p>")
        parts.append(table(("cycle", "failure items labelled", "model right before labelling"),
                           [(f["cycle"], f["n"], pct(f["accuracy"])) for f in flagged["per_cycle"]]))
    else:
        parts.append("<p class='muted'>No flagged failure item has been labelled yet.</p>")
    return section("failure-modes", "Failure modes", *parts)


def production_section(m: Measurement) -> str:
    rows = [(v["model_version"], v["control"]["n"], pct(v["control"]["error"]), span(v["control"]),
             v["feedback"]["n"], pct(v["feedback"]["error"]), span(v["feedback"])) for v in m.production]
    rows = [row for row, v in zip(rows, m.production) if v["control"]["n"] or v["feedback"]["n"]]
    return section("production", "Production error rate per model version",
                   "<p>Disagreement between each model version and the annotators on the control items it predicted, "
                   "and its error rate on production feedback (POST /projects/&lt;id&gt;/feedback).</p>",
                   image(report_figures.production_error, m, "production error",
                         "No data yet: no model version has labelled control items or production feedback."),
                   table(("model version", "control items", "disagreement", "95 % interval", "feedback",
                          "feedback error", "95 % interval"), rows) if rows else "")


def cycles_section(m: Measurement) -> str:
    f1_key, f1_name = m.f1_figure
    agreed = "span_f1" if m.is_spans else "percent"
    rows = []
    for r in m.cycles:
        control = r["control"]
        agreement = "; ".join(f"{s} {pct(a.get(agreed))} ({a['items']})" for s, a in r["agreement"].items())
        rows.append((r["cycle"], (r["model_version"] or "none").split("-")[0], r["training_labels"],
                     r["labels_added"]["total"], ", ".join(f"{s} {n}" for s, n in sorted(r["labels_added"]["per_slice"].items())),
                     r["annotations"], amount(r["cost"]),
                     f"{pct(control['accuracy'])} ({control['n']})" if control else "none labelled yet",
                     fmt(control[f1_key]) if control else "", fmt(r["gain_points_per_100"]), agreement or ""))
    return section("cycles", "Cycles",
                   f"<p class='muted'>Labels added: labels the cycle's model was trained on that the previous "
                   f"cycle's was not, by the slice they were queued in. Cost in {esc(m.cost_unit)}.</p>",
                   table(("cycle", "model", "trained on", "labels added", "per slice", "annotations", "cost",
                          f"control {m.quality_name} (n)", f"control {f1_name}", "points per 100 labels",
                          "span F1 among annotators" if m.is_spans else "agreement"), rows))


def mix_changes_section(m: Measurement) -> str:
    changes = [(c["cycle"], c["changed_at"][:19], mix_text(c["old_mix"]), mix_text(c["new_mix"]), c["reason"])
               for c in m.mix_changes]
    return section("mix-changes", "Automatic mix changes",
                   table(("cycle", "at (UTC)", "from", "to", "why"), changes) if changes
                   else "<p class='muted'>None (LABELQUEUE_AUTO_ADJUST_MIX is off, or nothing called for one).</p>")


def render_report(m: Measurement) -> str:
    """The whole page for one measurement (``backend.measure.measurement.measure_loop``'s record)."""
    totals = m.totals
    body = "".join([
        f"<h1>Is the loop working? Project {esc(m.project_id)}</h1>",
        f"<p class='muted'>Measured {esc(m.measured_at[:19])} UTC over {totals['cycles']} cycles: "
        f"{totals['labels']} labels, {totals['annotations']} annotations, {amount(totals['cost'])} "
        f"{esc(m.cost_unit)}.</p>",
        summary_section(m), warnings_section(m), learning_curve_section(m), cost_section(m), agreement_section(m),
        coverage_section(m), failure_section(m), production_section(m), cycles_section(m), mix_changes_section(m),
    ])
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><link rel='icon' href='data:,'>"
            f"<title>labelqueue report: project {esc(m.project_id)}</title><style>{STYLE}</style></head>"
            f"<body>{body}</body></html>")
