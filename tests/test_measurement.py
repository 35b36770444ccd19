"""Loop measurement from recorded cycles and annotations: hand-built projects, hand-computed figures."""
from __future__ import annotations

import sqlite3

import pytest

from backend.labelstudio.errors import LabelStudioRefused
from backend.labelstudio.gateway import StoredCounts
from backend.loop.queue_record import QueueRecord
from backend.measure.control_overlap import apply_control_overlap
from backend.measure.cycles_db import CyclesDB, CyclesDBError, Feedback
from backend.measure.measurement import AnnotatedTask, CostModel, LoopConfig, annotated_task, measure_loop
from backend.model.labelconfig import TaskSpec
from selection.agreement import agreement
from selection.loop_warnings import CycleSignals, LoopThresholds, loop_warnings, lowered_mix
from selection.mix import SliceMix

LABELS = ("a", "b", "c")
SPEC = TaskSpec(from_name="intent", to_name="text", value_key="text", labels=LABELS, multilabel=False)
LIMITS = LoopThresholds(gain_per_label=0.5 / 10_000, patience=3, agreement_gap=0.15, rare_class=3,
                        high_impact=("c",))
CONFIG = LoopConfig(cost=CostModel(), limits=LIMITS, failure_classes=("b",), seed=0)


def queue(cycle: int, version: str | None, labelled: int, items: list[tuple]) -> QueueRecord:
    """A queue as ``backend/loop/cycle.py`` writes it; items are (task id, slice, predicted label),
    failure items optionally with their source: (task id, "failure", predicted, "flagged" or "override")."""
    def reason(item: tuple) -> dict:
        return {"source": item[3]} if len(item) > 3 else {}

    return QueueRecord.from_json({"cycle": cycle, "model_version": version, "labelled": labelled, "created_at": f"2025-01-0{cycle}T00:00:00",
            "size_requested": len(items), "mix": {"uncertain": 0.55, "diverse": 0.25, "failure": 0.15, "control": 0.05},
            "counts": {}, "tab_id": 1,
            "items": [{"task_id": item[0], "slice": item[1], "rank": r, "reason": reason(item),
                       **({"predicted": [item[2]], "score": 0.9} if item[2] else {})} for r, item in enumerate(items, 1)]})


def task(task_id: int, label: str, *, seconds: float = 60.0, ratings: tuple = ()) -> AnnotatedTask:
    ratings = ratings or ((1, (label,)),)
    return AnnotatedTask(task_id=task_id, labels=(label,), ratings=tuple((who, (lab,)) for who, lab in ratings),
                         completed=len(ratings), annotations=len(ratings), seconds=seconds, data={"text": "x"})


@pytest.fixture()
def db(tmp_path) -> CyclesDB:
    return CyclesDB.in_data_dir(tmp_path)


@pytest.fixture()
def two_cycles(db) -> dict:
    """Seed of four labels; cycle 1 (model v1) gets half its control items right, cycle 2 (v2) all."""
    db.record_queue(5, queue(1, "v1-x", 4, [(10, "control", "a"), (11, "control", "a"), (12, "uncertain", "b"),
                                            (13, "failure", "c", "flagged")]), trained=[1, 2, 3, 4])
    db.record_queue(5, queue(2, "v2-x", 8, [(20, "control", "b"), (21, "control", "c"), (22, "uncertain", "a")]),
                    trained=[1, 2, 3, 4, 10, 11, 12, 13])
    tasks = {t.task_id: t for t in [
        task(1, "a"), task(2, "a"), task(3, "b"), task(4, "b"),
        task(10, "a", seconds=30, ratings=((1, "a"), (2, "a"))),
        task(11, "b", seconds=30, ratings=((1, "b"), (2, "a"))),
        task(12, "b", seconds=30), task(13, "a", seconds=30),
        task(20, "b"), task(21, "c"),
    ]}
    db.add_feedback(5, Feedback("v1-x", ("a",), ("b",), text="t"))
    db.add_feedback(5, Feedback("v1-x", ("a",), ("a",), text="t"))
    db.add_feedback(5, Feedback("v2-x", ("b",), ("b",), task_id=20))
    return measure_loop(5, LABELS, db.cycles(5), tasks, db.trained_labels(5), db.feedback(5), CONFIG)


def test_cycles_db_keeps_every_queue_with_its_predictions_across_restarts(tmp_path):
    CyclesDB.in_data_dir(tmp_path).record_queue(3, queue(1, "v1", 0, [(7, "control", "a"), (8, "diverse", None)]), [])
    reopened = CyclesDB.in_data_dir(tmp_path)
    [record] = reopened.cycles(3)
    assert (record.cycle, record.model_version) == (1, "v1")
    assert [(i.task_id, i.slice, i.rank, i.predicted) for i in record.items] == [(7, "control", 1, ("a",)),
                                                                                 (8, "diverse", 2, None)]


def test_cycles_db_counts_only_labels_no_earlier_model_was_trained_on(db):
    assert db.record_queue(1, queue(1, "v1", 2, []), trained=[1, 2]) == 2
    assert db.record_queue(1, queue(2, "v2", 3, []), trained=[1, 2, 3]) == 1
    assert db.trained_labels(1) == {1: 1, 2: 1, 3: 2}


def test_cycles_db_refuses_a_newer_schema(tmp_path):
    path = tmp_path / "labelqueue.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(CyclesDBError, match="schema version 99"):
        CyclesDB(path)


def test_labels_added_are_counted_per_slice_they_were_queued_in(two_cycles):
    first, second = two_cycles.cycles
    assert first["labels_added"] == {"total": 4, "per_slice": {"unqueued": 4}}
    assert second["labels_added"] == {"total": 4, "per_slice": {"control": 2, "uncertain": 1, "failure": 1}}


def test_label_cost_is_annotator_minutes_by_default(two_cycles):
    # cycle 1: four seed labels of 60 s; cycle 2: two control tasks with two annotations of 30 s
    # each (lead times are summed per task: 30 s here stands for both) and two single ones.
    assert [r["cost"] for r in two_cycles.cycles] == [4.0, 2.0]
    assert two_cycles.cost_unit == "annotator minutes"


def test_cost_model_converts_time_or_counts_labels():
    assert CostModel(per_hour=30.0).of(seconds=1800, annotations=4) == 15.0
    assert CostModel(per_label=0.5).of(seconds=1800, annotations=4) == 2.0


def test_control_quality_compares_predictions_made_before_labelling_with_the_labels(two_cycles):
    first, second = (r["control"] for r in two_cycles.cycles)
    assert (first["n"], first["correct"], first["accuracy"]) == (2, 1, 0.5)
    assert (second["n"], second["correct"], second["accuracy"]) == (2, 2, 1.0)
    assert first["low"] < 0.5 < first["high"] and second["high"] == 1.0


def test_gain_per_label_and_cost_per_point_span_the_labels_added_in_between(two_cycles):
    second = two_cycles.cycles[1]
    # (1.0 - 0.5) / 4 labels = 0.125 per label = 1250 points per 100 labels; 2 minutes / 50 points
    assert second["gain_per_label"] == pytest.approx(0.125)
    assert second["gain_points_per_100"] == pytest.approx(1250)
    assert second["cost_per_point"] == pytest.approx(0.04)
    assert two_cycles.cycles[0]["gain_per_label"] is None


def test_agreement_is_measured_overall_and_per_slice(two_cycles):
    control = two_cycles.agreement["per_slice"]["control"]
    # annotators 1 and 2: a/a and b/a -> agree on half; p_e = 0.5 * 1 + 0.5 * 0 -> Cohen's kappa 0
    assert (control["items"], control["percent"], control["kappa"], control["kappa_kind"]) == (2, 0.5, 0.0, "cohen")
    assert two_cycles.agreement["overall"] == control


def test_coverage_lists_labels_per_class_and_recall_on_control(two_cycles):
    classes = {c["label"]: c for c in two_cycles.coverage["classes"]}
    assert {k: c["labels"] for k, c in classes.items()} == {"a": 4, "b": 5, "c": 1}
    assert classes["c"]["below_threshold"] and classes["c"]["high_impact"]
    # control items pooled: (a,a) (b,a) (b,b) (c,c) -> recall a 1, b 1/2, c 1
    assert [classes[k]["control_recall"] for k in LABELS] == [1.0, 0.5, 1.0]


def test_failure_modes_report_precision_recall_of_chosen_classes_and_flagged_items(two_cycles):
    modes = two_cycles.failure_modes
    assert modes["classes"] == [{"label": "b", "precision": 1.0, "recall": 0.5, "support": 2}]
    assert modes["flagged"]["n"] == 1 and modes["flagged"]["accuracy"] == 0.0  # predicted c, labelled a


def test_production_error_per_model_version_uses_control_and_feedback(two_cycles):
    by_version = {v["model_version"]: v for v in two_cycles.production}
    assert by_version["v1-x"]["control"]["error"] == 0.5 and by_version["v2-x"]["control"]["error"] == 0.0
    assert by_version["v1-x"]["feedback"]["error"] == 0.5 and by_version["v2-x"]["feedback"]["n"] == 1


def test_high_impact_class_below_threshold_is_a_warning(two_cycles):
    assert [w["code"] for w in two_cycles.warnings] == ["uncovered_high_impact"]


def test_a_task_queued_twice_counts_in_the_cycle_it_was_labelled_from(db):
    db.record_queue(1, queue(1, "v1", 0, [(7, "control", "a")]), trained=[])
    db.record_queue(1, queue(2, "v2", 0, [(7, "control", "b")]), trained=[7])
    found = measure_loop(1, LABELS, db.cycles(1), {7: task(7, "b")}, db.trained_labels(1), [], CONFIG)
    assert [r["control"] and r["control"]["accuracy"] for r in found.cycles] == [None, 1.0]


def test_annotated_task_keeps_one_rating_per_annotator_and_counts_skips_as_cost():
    def annotation(who, label, when, cancelled=False, lead=10.0):
        return {"id": when, "completed_by": who, "was_cancelled": cancelled, "lead_time": lead,
                "updated_at": f"2025-01-01T00:00:0{when}",
                "result": [{"from_name": "intent", "to_name": "text", "type": "choices", "value": {"choices": [label]}}]}
    raw = {"id": 9, "data": {"text": "x"}, "annotations": [
        annotation({"id": 1, "email": "a@x"}, "a", 1), annotation(1, "b", 2), annotation(2, "b", 3),
        annotation(3, "c", 4, cancelled=True, lead=None)]}
    found = annotated_task(raw, SPEC)
    assert found.ratings == ((1, ("b",)), (2, ("b",)))
    # completed: annotators 1 and 2 (annotator 1 twice, 3 skipped), as Label Studio counts completion
    assert (found.labels, found.completed, found.annotations, found.seconds) == (("b",), 2, 4, 30.0)


def test_agreement_uses_fleiss_when_annotators_differ_between_items():
    found = agreement([[(1, "a"), (2, "a")], [(2, "b"), (3, "a")], [(1, "c")]])
    assert (found.items, found.annotators, found.kappa_kind, found.percent) == (2, 3, "fleiss", 0.5)


def signals(control=(), edge=(), agree=(), per_cycle: int = 100, n: int = 5) -> list[CycleSignals]:
    """Cycles 1.. with ``per_cycle`` more training labels each and ``n`` items behind every accuracy."""
    length = max(len(control), len(edge), len(agree))
    pick = lambda seq, i: seq[i] if i < len(seq) else None  # noqa: E731
    return [CycleSignals(i + 1, labels=per_cycle * (i + 1), control_accuracy=pick(control, i), control_n=n,
                         edge_accuracy=pick(edge, i), edge_n=n, uncertain_agreement=pick(agree, i))
            for i in range(length)]


def no_agreement() -> dict:
    return {"uncertain_agreement": (float("nan"), 0), "control_agreement": (float("nan"), 0), "labels_per_class": {"c": 9}}


def test_low_gain_warns_when_the_trend_over_patience_cycles_is_below_threshold():
    # threshold 0.5 points per 100 labels; +0.3 points per 100 labels over cycles 2-5
    flat = [0.2, 0.700, 0.703, 0.706, 0.709]
    [warning] = loop_warnings(signals(control=flat), limits=LIMITS, **no_agreement())
    assert warning.code == "low_gain" and warning.cycles == [2, 3, 4, 5]
    assert "+0.30 points per 100 labels" in warning.message


def test_low_gain_needs_patience_cycles_and_ignores_a_rising_trend():
    assert not loop_warnings(signals(control=[0.70, 0.70, 0.70]), limits=LIMITS, **no_agreement())
    assert not loop_warnings(signals(control=[0.60, 0.62, 0.61, 0.65]), limits=LIMITS, **no_agreement())


def test_uncertain_agreement_far_below_control_warns_of_noisy_labels():
    found = loop_warnings(signals(), uncertain_agreement=(0.6, 8), control_agreement=(0.9, 10),
                          labels_per_class={"c": 9}, limits=LIMITS)
    assert [w.code for w in found] == ["noisy_uncertain_labels"]
    assert not loop_warnings(signals(), uncertain_agreement=(0.6, 3), control_agreement=(0.9, 10),
                             labels_per_class={"c": 9}, limits=LIMITS)


def test_uncertain_agreement_falling_for_patience_cycles_warns():
    [warning] = loop_warnings(signals(agree=[0.9, 0.8, 0.7, 0.6]), limits=LIMITS, **no_agreement())
    assert warning.code == "noisy_uncertain_labels" and warning.cycles == [1, 2, 3, 4]


def test_rising_edge_accuracy_with_flat_control_warns_of_overfitting_to_edge_cases():
    found = loop_warnings(signals(control=[0.7, 0.72, 0.68, 0.69], edge=[0.2, 0.3, 0.4, 0.5]),
                          limits=LIMITS, **no_agreement())
    assert "edge_case_overfit" in [w.code for w in found]
    assert not loop_warnings(signals(control=[0.7, 0.71, 0.72, 0.75], edge=[0.2, 0.3, 0.4, 0.5]),
                             limits=LIMITS, **no_agreement())


def test_lowered_mix_moves_uncertain_share_to_diverse_within_fifty_to_sixty_percent():
    assert lowered_mix(SliceMix()) == SliceMix(uncertain=0.5, diverse=0.3, failure=0.15, control=0.05)
    assert lowered_mix(SliceMix(uncertain=0.5, diverse=0.3, failure=0.15, control=0.05)) is None
    assert lowered_mix(SliceMix(uncertain=0.8, diverse=0.1, failure=0.05, control=0.05)).uncertain == 0.6


class RecordingGateway:
    """Stands in for project 2's Label Studio gateway: records task updates."""

    project_id = 2

    def __init__(self, deleted: tuple[int, ...] = (), data: dict[int, dict] | None = None,
                 annotations: dict[int, list[dict]] | None = None):
        self.deleted = deleted
        self.data = dict(data or {})
        self.annotations = dict(annotations or {})
        self.updates: list[tuple[int, dict]] = []

    def _update(self, task_id: int, fields: dict) -> None:
        if task_id in self.deleted:
            raise LabelStudioRefused(f"updating task {task_id} failed: Label Studio answered HTTP 404", status=404)
        self.updates.append((task_id, fields))

    def set_overlap(self, task_id: int, overlap: int, is_labeled: bool) -> None:
        self._update(task_id, {"overlap": overlap, "is_labeled": is_labeled})

    def update_data(self, task_id: int, data: dict) -> None:
        self._update(task_id, {"data": data})
        self.data[task_id] = data

    def tasks_data(self, task_ids: list[int], chunk: int) -> dict[int, dict]:
        return {i: dict(self.data[i]) for i in task_ids if i in self.data and i not in self.deleted}

    def tasks_with_annotations(self, task_ids: list[int], chunk: int) -> list[dict]:
        return [{"id": i, "annotations": self.annotations.get(i, [])} for i in task_ids if i not in self.deleted]

    def ignores_skipped(self) -> bool:
        return False

    def annotation_counts(self, task_ids: list[int], chunk: int, outage=None) -> dict[int, StoredCounts]:
        return {i: StoredCounts(total=0, cancelled=0, annotations=0) for i in task_ids}


def test_control_overlap_is_asked_on_new_control_tasks_and_unfinished_ones_are_carried_over(db):
    gateway = RecordingGateway()
    db.record_queue(2, queue(1, "v1", 0, [(10, "control", "a"), (11, "uncertain", "a")]), trained=[])
    apply_control_overlap(gateway, db, db.cycles(2), {}, overlap=2)
    assert [(tid, f["overlap"]) for tid, f in gateway.updates] == [(10, 2)]

    gateway.updates.clear()
    db.record_queue(2, queue(2, "v1", 1, [(20, "control", "a")]), trained=[10])
    gateway.data[10] = TAGGED_IN_CYCLE_1
    result = apply_control_overlap(gateway, db, db.cycles(2), {10: labelled_once(TAGGED_IN_CYCLE_1)}, overlap=2)
    assert result.requested == [20] and result.carried == [10]
    carried = dict(gateway.updates)[10]["data"]
    assert (carried["labelqueue_cycle"], carried["labelqueue_rank"], carried["text"]) == (2, "000000", "x")


TAGGED_IN_CYCLE_1 = {"text": "x", "labelqueue_cycle": 1, "labelqueue_rank": "000001", "labelqueue_slice": "control"}


def labelled_once(data: dict) -> AnnotatedTask:
    """Task 10 as the measurement read it: one of the two annotations it needs."""
    return AnnotatedTask(10, ("a",), ((1, ("a",)),), 1, 1, 5.0, data)


def test_a_carried_task_is_tagged_over_what_it_holds_now_not_what_the_measurement_read(db):
    """The queue writer may have updated the task since the measurement read it: what it wrote stays."""
    db.record_queue(2, queue(1, "v1", 0, [(10, "control", "a")]), trained=[])
    db.request_overlap(2, 1, [10], 2)
    db.record_queue(2, queue(2, "v1", 1, [(20, "uncertain", "a")]), trained=[10])
    gateway = RecordingGateway(data={10: {**TAGGED_IN_CYCLE_1, "note": "added by a reviewer"}})
    result = apply_control_overlap(gateway, db, db.cycles(2), {10: labelled_once(TAGGED_IN_CYCLE_1)}, overlap=2)
    assert result.carried == [10] and gateway.data[10]["note"] == "added by a reviewer"

    gateway = RecordingGateway(data={10: {**TAGGED_IN_CYCLE_1, "labelqueue_cycle": 2, "labelqueue_rank": "000003"}})
    result = apply_control_overlap(gateway, db, db.cycles(2), {10: labelled_once(TAGGED_IN_CYCLE_1)}, overlap=2)
    assert result.carried == [] and gateway.updates == []  # already in the newest cycle: left as written


def test_one_annotators_two_annotations_do_not_complete_a_control_task_that_needs_two_annotators(db):
    """Label Studio counts distinct annotators (as the counter repair does); the overlap step
    counted annotations, so it marked such a task labelled and stopped carrying it."""
    chose_a = [{"from_name": "intent", "to_name": "text", "type": "choices", "value": {"choices": ["a"]}}]
    twice = [{"id": 1, "completed_by": 7, "result": chose_a, "was_cancelled": False},
             {"id": 2, "completed_by": 7, "result": chose_a, "was_cancelled": False}]
    db.record_queue(2, queue(1, "v1", 0, [(10, "control", "a"), (11, "control", "a")]), trained=[])
    gateway = RecordingGateway(annotations={10: twice, 11: [twice[0], {**twice[1], "completed_by": 8}]})
    apply_control_overlap(gateway, db, db.cycles(2), {}, overlap=2)
    assert [(tid, f["is_labeled"]) for tid, f in gateway.updates] == [(10, False), (11, True)]

    db.record_queue(2, queue(2, "v1", 1, [(20, "uncertain", "a")]), trained=[10])
    gateway = RecordingGateway(data={10: TAGGED_IN_CYCLE_1})
    read = annotated_task({"id": 10, "data": TAGGED_IN_CYCLE_1, "annotations": twice}, SPEC)
    assert apply_control_overlap(gateway, db, db.cycles(2), {10: read}, overlap=2).carried == [10]


def test_control_overlap_skips_a_task_deleted_since_it_was_queued(db):
    gateway = RecordingGateway(deleted=(10,))
    db.record_queue(2, queue(1, "v1", 0, [(10, "control", "a"), (11, "control", "b")]), trained=[])
    result = apply_control_overlap(gateway, db, db.cycles(2), {}, overlap=2)
    assert result.requested == [10, 11] and [tid for tid, _ in gateway.updates] == [11]
