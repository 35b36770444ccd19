"""Loop measurement of a span project: entity scores on control, span agreement, coverage per type."""
from __future__ import annotations

import html

from backend.loop.queue_record import QueueRecord
from backend.measure.measurement import AnnotatedTask, CostModel, LoopConfig, annotated_task, measure_loop
from backend.measure.report import render_report
from backend.model.classification import Classification
from backend.model.labelconfig import TaskSpec
from backend.model.spans import Spans
from selection.loop_warnings import LoopThresholds

TYPES = ("city", "cuisine")
CONFIG = LoopConfig(cost=CostModel(), limits=LoopThresholds(gain_per_label=0.5 / 10_000, patience=3,
                                                            agreement_gap=0.15, rare_class=2, high_impact=()),
                    failure_classes=(), seed=0)
THAI_OSLO = ((5, 9, "cuisine"), (15, 19, "city"))


def queue(items) -> QueueRecord:
    return QueueRecord.from_json({"cycle": 1, "model_version": "v1", "labelled": 2, "created_at": "2025-01-01T00:00:00",
                                  "size_requested": len(items), "mix": {}, "counts": {}, "tab_id": 1,
                                  "items": [{"task_id": t, "slice": s, "rank": r, "reason": {},
                                             "predicted": [list(x) for x in p], "score": 0.5}
                                            for r, (t, s, p) in enumerate(items, 1)]})


def task(task_id, spans, ratings=None) -> AnnotatedTask:
    ratings = ratings or ((1, spans),)
    return AnnotatedTask(task_id, spans, tuple(ratings), len(ratings), len(ratings), 20.0, {"text": "find thai near Oslo"})


def test_span_project_measures_entities_agreement_and_coverage():
    record = queue([(10, "control", THAI_OSLO), (11, "control", ((5, 9, "city"),)), (12, "uncertain", ())])
    tasks = {1: task(1, THAI_OSLO), 2: task(2, ((5, 9, "cuisine"),)),
             10: task(10, THAI_OSLO, ratings=((1, THAI_OSLO), (2, THAI_OSLO[:1]))),
             11: task(11, ((5, 9, "cuisine"),)), 12: task(12, THAI_OSLO)}
    found = measure_loop(1, TYPES, [record], tasks, {1: 0, 2: 0}, [], CONFIG, kind=Spans()).to_json()
    control = found["cycles"][0]["control"]
    assert control["n"] == 2 and control["correct"] == 1
    # 2 of 3 predicted spans right, 2 of 3 annotated found
    assert control["entity_precision"] == control["entity_recall"] == round(2 / 3, 6)
    assert control["per_type"]["city"]["support"] == 1
    assert found["agreement"]["overall"]["span_f1"] == round(2 * 1 / 3, 6)
    counts = {c["label"]: c["labels"] for c in found["coverage"]["classes"]}
    assert counts == {"city": 3, "cuisine": 5}


def test_spans_read_back_from_sqlite_are_measured_not_a_type_error(tmp_path):
    """SQLite gives the recorded predictions back as JSON; spans came back as [start, end, type]
    lists, and the per-slice exact match put them in a set and raised TypeError (an e2e run's
    measure job)."""
    from backend.measure.cycles_db import CyclesDB

    db = CyclesDB(tmp_path / "cycles.sqlite3")
    db.record_queue(1, queue([(10, "control", THAI_OSLO), (12, "uncertain", THAI_OSLO)]), trained=[1])
    tasks = {1: task(1, THAI_OSLO), 10: task(10, THAI_OSLO), 12: task(12, THAI_OSLO[:1])}
    found = measure_loop(1, TYPES, db.cycles(1), tasks, {1: 0}, [], CONFIG, kind=Spans()).to_json()
    assert found["cycles"][0]["slices"]["uncertain"]["accuracy"] == 0.0
    assert found["cycles"][0]["slices"]["control"]["accuracy"] == 1.0


def test_a_span_queue_is_a_valid_queue_answer():
    """``GET /projects/<id>/queue`` of a span project: its predictions are spans, not class names
    (the answer's model refused them, a 500 the e2e NER test met)."""
    from backend.web.response_bodies import QueueReply

    QueueReply.model_validate(queue([(10, "control", THAI_OSLO), (11, "uncertain", ())]).to_api())


def ls_task(task_id, text, spans, lead_time):
    """A task as Label Studio exports it, one annotation of ``spans``."""
    result = [{"from_name": "label", "to_name": "text", "type": "labels",
               "value": {"start": a, "end": b, "labels": [t]}} for a, b, t in spans]
    return {"id": task_id, "data": {"text": text},
            "annotations": [{"id": task_id, "result": result, "lead_time": lead_time, "completed_by": 1}]}


SPEC = TaskSpec("label", "text", "text", TYPES, multilabel=False, kind="spans")


def test_cost_is_given_per_token_and_per_entity_of_the_labelled_sentences():
    tasks = {t.task_id: t for t in (annotated_task(raw, SPEC) for raw in (
        ls_task(1, "find thai near Oslo", THAI_OSLO, 30.0),  # 4 tokens, 2 entities
        ls_task(2, "nothing here at all today", (), 30.0)))}  # 5 tokens, no entity: still effort
    found = measure_loop(1, TYPES, [], tasks, {}, [], CONFIG, kind=Spans()).to_json()
    units = found["totals"]["cost_per_unit"]  # the default cost unit: annotator minutes
    assert units["token"] == {"n": 9, "tasks": 2, "cost": round(1.0 / 9, 4)}
    assert units["entity"] == {"n": 2, "tasks": 2, "cost": 0.5}
    page = html.unescape(render_report(measure_loop(1, TYPES, [], tasks, {}, [], CONFIG, kind=Spans())))
    assert "0.50 per entity (2 entities); 0.11 per token (9 tokens)" in page


def test_the_report_of_a_span_project_gives_span_f1_between_annotators_overall_and_per_slice():
    """Whole-sentence agreement calls one differing span of five as far apart as none shared; the
    report used to show only that and a kappa, with the span F1 it had measured left out."""
    record = queue([(10, "control", THAI_OSLO), (11, "uncertain", THAI_OSLO), (12, "uncertain", THAI_OSLO)])
    # overall: 3 spans shared of 4 + 3 + 3 marked, F1 2 * 3 / 10
    tasks = {10: task(10, THAI_OSLO, ratings=((1, THAI_OSLO), (2, THAI_OSLO))),  # 2 of 2 spans shared
             11: task(11, THAI_OSLO, ratings=((1, THAI_OSLO), (2, THAI_OSLO[:1]))),  # 1 of 3: F1 2/3
             12: task(12, THAI_OSLO, ratings=((1, THAI_OSLO), (2, ((5, 9, "city"),))))}  # 0 of 3
    found = measure_loop(1, TYPES, [record], tasks, {}, [], CONFIG, kind=Spans())
    assert found.agreement["per_slice"]["uncertain"]["span_f1"] == round(2 * 1 / 6, 6)
    assert found.agreement["per_slice"]["control"]["span_f1"] == 1.0
    page = html.unescape(render_report(found))
    agreement = page[page.index("id='agreement'"):page.index("id='coverage'")]
    assert "<th>span F1</th><th>whole sentence agreed</th>" in agreement
    assert "<td>uncertain</td><td>2</td><td>2</td><td>33%</td><td>0%</td>" in agreement
    assert ("On 3 sentences labelled by two or more annotators, 60% of their spans match (exact-match span F1); "
            "they agree on every span of 33% of the sentences. Control: 100%, uncertain: 33%.") in page
    cycles = page[page.index("id='cycles'"):]
    assert "span F1 among annotators" in cycles and "control 100% (1); uncertain 33% (2)" in cycles


def test_a_small_cost_is_shown_to_two_significant_digits_not_as_zero():
    from backend.measure.report_answers import amount

    assert [amount(v) for v in (0.0042, 0.25, 1.234, 12.6, 0.0, None)] == ["0.0042", "0.25", "1.2", "13", "0.0", "n/a"]


def test_without_lead_times_or_for_a_classification_no_unit_cost_is_claimed():
    untimed = {1: annotated_task(ls_task(1, "find thai near Oslo", THAI_OSLO, 0.0), SPEC)}
    found = measure_loop(1, TYPES, [], untimed, {}, [], CONFIG, kind=Spans())
    assert found.totals["cost_per_unit"] == {}
    assert "per token" not in render_report(found)
    assert Classification().effort_units("find thai near Oslo", ("city",)) == {}


def test_a_control_sentence_annotated_with_no_entities_is_measured():
    record = queue([(10, "control", ()), (11, "control", ((5, 9, "city"),))])
    tasks = {10: task(10, ()), 11: task(11, ())}
    control = measure_loop(1, TYPES, [record], tasks, {}, [], CONFIG, kind=Spans()).to_json()["cycles"][0]["control"]
    assert control["n"] == 2 and control["correct"] == 1  # "none" predicted right once, a false city once


def test_the_report_of_a_span_project_names_exact_match_and_shows_entity_scores_per_type():
    record = queue([(10, "control", THAI_OSLO), (11, "control", ((5, 9, "city"),)), (12, "uncertain", ())])
    tasks = {1: task(1, THAI_OSLO), 10: task(10, THAI_OSLO), 11: task(11, ((5, 9, "cuisine"),)), 12: task(12, ())}
    page = html.unescape(render_report(measure_loop(1, TYPES, [record], tasks, {1: 0}, [], CONFIG, kind=Spans())))
    learning = page[page.index("id='learning-curve'"):page.index("id='cost'")]
    assert "<td>1</td><td>2</td><td>50%</td><td>67%</td><td>67%</td><td>67%</td>" in learning
    assert "<td>city</td><td>50%</td><td>100%</td><td>67%</td><td>1</td><td>2</td>" in learning
    cycles = page[page.index("id='cycles'"):]
    assert "control sentence exact match (n)" in cycles and "control entity F1" in cycles
    assert "control accuracy" not in page and "macro-F1" not in page


def test_the_report_of_a_classification_project_keeps_accuracy_and_macro_f1():
    spec = TaskSpec("intent", "text", "text", ("a", "b"), False)
    record = QueueRecord.from_json({"cycle": 1, "model_version": "v1", "labelled": 1, "created_at": "2025-01-01T00:00:00",
                                    "size_requested": 1, "mix": {}, "counts": {}, "tab_id": 1,
                                    "items": [{"task_id": 10, "slice": "control", "rank": 1, "reason": {},
                                               "predicted": ["a"], "score": 0.9}]})
    rated = AnnotatedTask(10, ("a",), ((1, ("a",)),), 1, 1, 20.0, {"text": "x"})
    page = html.unescape(render_report(measure_loop(1, spec.labels, [record], {10: rated}, {}, [], CONFIG,
                                                    kind=Classification())))
    assert "control accuracy (n)" in page and "control macro-F1" in page and "entity precision" not in page
