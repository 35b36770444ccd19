"""The five questions the report answers first, in plain words, from a measurement record.

Each answer states the figures it rests on and says when they cannot support a conclusion
(too few control items, overlapping intervals): an admin must be able to tell "no" from
"not known yet".
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from backend.measure.measurement_record import Measurement
from selection.metrics import weighted_slope, wilson_interval

KAPPA_NAMES = {"cohen": "Cohen's", "fleiss": "Fleiss'", "none": "no"}


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def span(figures: dict[str, Any]) -> str:
    """A 95 % interval as text; empty when nothing was measured."""
    return f"{pct(figures['low'])}-{pct(figures['high'])}" if figures["n"] else ""


def interval(figures: dict[str, Any]) -> str:
    return f"{pct(figures['accuracy'])} (n={figures['n']}, 95 % interval {span(figures)})"


def kappa_words(kappa: float | None) -> str:
    """Landis and Koch's (1977) reading of kappa, the one most annotation guides quote."""
    if kappa is None:
        return "not measurable"
    bands = ((0, "poor"), (0.2, "slight"), (0.4, "fair"), (0.6, "moderate"), (0.8, "substantial"))
    return next((word for limit, word in bands if kappa <= limit), "almost perfect")


def pooled_control(rows: Sequence[dict]) -> dict[str, Any] | None:
    n = sum(r["control"]["n"] for r in rows)
    if not n:
        return None
    correct = sum(r["control"]["correct"] for r in rows)
    low, high = wilson_interval(correct, n)
    return {"n": n, "accuracy": correct / n, "low": low, "high": high}


def answer_helping(m: Measurement) -> str:
    rows = m.measured_cycles
    if len(rows) < 2:
        return "Not known yet: fewer than two cycles have labelled control items."
    half = len(rows) // 2
    early, late = pooled_control(rows[:half]), pooled_control(rows[half:])
    evidence = (f"control {m.quality_name} was {interval(early)} in {cycle_span(rows[:half])} and "
                f"{interval(late)} in {cycle_span(rows[half:])}")
    stalled = any(w["code"] == "low_gain" for w in m.warnings)
    if late["accuracy"] > early["accuracy"] and late["low"] > early["high"]:
        verdict = "Yes" if not stalled else "It did, but gains have now stalled"
    elif late["accuracy"] > early["accuracy"]:
        verdict = (f"Not proven yet: {m.quality_name} is higher, but the intervals overlap (too few control items "
                   "to be sure)")
    else:
        verdict = "Not visibly"
    return f"{verdict}: {evidence}."


def cycle_span(rows: Sequence[dict]) -> str:
    first, last = rows[0]["cycle"], rows[-1]["cycle"]
    return f"cycle {first}" if first == last else f"cycles {first}-{last}"


def answer_cost(m: Measurement) -> str:
    rows = m.measured_cycles
    if len({r["training_labels"] for r in rows}) < 2:
        return ("Not known yet: a price needs control items labelled in two cycles whose models were trained "
                f"on different numbers of labels ({len(rows)} cycle{'' if len(rows) == 1 else 's'} with "
                "labelled control items so far).")
    cumulative, spent = {}, 0.0
    for r in m.cycles:
        spent += r["cost"]
        cumulative[r["cycle"]] = spent
    weights = [r["control"]["n"] for r in rows]
    per_cost = weighted_slope([cumulative[r["cycle"]] for r in rows], [r["control"]["accuracy"] for r in rows], weights)
    per_label = weighted_slope([r["training_labels"] for r in rows], [r["control"]["accuracy"] for r in rows], weights)
    if per_label <= 0:
        return (f"No price can be put on it: control {m.quality_name} is not rising as labels are added "
                f"(over {len(rows)} measured cycles).")
    cost_text = (f"about {amount(1 / (per_cost * 100))} {m.cost_unit}" if per_cost and per_cost > 0
                 else "an unknown cost (no annotation time was recorded)")
    labels = 1 / (per_label * 100)
    return (f"One point of control {m.quality_name} costs {cost_text}, or {labels:.{0 if labels >= 10 else 1}f} labels "
            f"(slope of the learning curve over {len(rows)} measured cycles, weighted by control items).")


def answer_agreement(m: Measurement) -> str:
    overall = m.agreement["overall"]
    if not overall["items"]:
        return ("Not measured: no task has two annotations. Add \"control_overlap\": 2 to the model "
                "connection's extra params so two annotators label every control task.")
    per_slice = m.agreement["per_slice"]
    if m.is_spans:
        text = (f"On {overall['items']} sentences labelled by two or more annotators, {pct(overall.get('span_f1'))} of "
                f"their spans match (exact-match span F1); they agree on every span of "
                f"{pct(overall['percent'])} of the sentences.")
        key = "span_f1"
    else:
        text = (f"On {overall['items']} tasks labelled by two or more annotators they agree {pct(overall['percent'])} "
                f"of the time ({KAPPA_NAMES[overall['kappa_kind']]} kappa {fmt(overall['kappa'])}: "
                f"{kappa_words(overall['kappa'])}).")
        key = "percent"
    if "control" in per_slice and "uncertain" in per_slice:
        text += f" Control: {pct(per_slice['control'].get(key))}, uncertain: {pct(per_slice['uncertain'].get(key))}."
    return text


def answer_coverage(m: Measurement) -> str:
    classes = m.coverage["classes"]
    if not any(c["labels"] for c in classes):
        return f"Not known yet: no task is labelled, so all {len(classes)} classes are uncovered."
    short = sorted((c for c in classes if c["below_threshold"]), key=lambda c: (not c["high_impact"], c["labels"]))
    if not short:
        text = f"Every class has at least {m.coverage['threshold']} labels."
    else:
        listed = ", ".join(f"{c['label']}{' (high-impact)' if c['high_impact'] else ''}: {c['labels']}" for c in short)
        verb = "has" if len(short) == 1 else "have"
        text = f"{len(short)} of {len(classes)} classes {verb} fewer than {m.coverage['threshold']} labels: {listed}."
    missed = [c for c in classes if c["control_support"] and c["control_recall"] == 0]
    if missed:
        text += " Never recognised on control: " + ", ".join(c["label"] for c in missed) + "."
    return text


def answer_production(m: Measurement) -> str:
    versions = [v for v in m.production if v["control"]["n"] or v["feedback"]["n"]]
    if len(versions) < 2:
        return "Not known yet: fewer than two model versions have been measured on control or feedback."
    before, after = versions[-2], versions[-1]
    parts = []
    for source, words in (("control", "disagreement with annotators on control"), ("feedback", "production feedback error")):
        old, new = before[source], after[source]
        if old["n"] and new["n"]:
            trend = "lower" if new["error"] < old["error"] else ("higher" if new["error"] > old["error"] else "unchanged")
            sure = "" if new["high"] < old["low"] or new["low"] > old["high"] else " (intervals overlap: not conclusive)"
            parts.append(f"{words} {trend}: {pct(new['error'])} (n={new['n']}) vs {pct(old['error'])} (n={old['n']}){sure}")
    if not parts:
        return f"{after['model_version']} and {before['model_version']} were measured on different sources; no comparison."
    return f"{after['model_version']} vs {before['model_version']}: " + "; ".join(parts) + "."


def fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def amount(value: float | None) -> str:
    """A cost to two significant digits: a fixed number of decimals would show a small but real
    cost (a fast annotator's minutes per point) as 0.0, which reads as free."""
    if value is None or math.isnan(value) or value == 0 or abs(value) >= 10:
        return fmt(value, 0 if value else 1)
    return fmt(value, max(1, 1 - math.floor(math.log10(abs(value)))))
