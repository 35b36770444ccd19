"""The report says only what it measured: each answer and plot in every early data state.

States: no control item labelled yet, no flagged failure, override neighbours only, a single
cycle, and an empty production series. Every plot is rendered with warnings turned into errors,
since an empty matplotlib plot with a legend logs a warning on every measurement.
"""
from __future__ import annotations

import html
import sqlite3
import warnings

import pytest

from backend.measure import report_figures
from backend.measure.cycles_db import CyclesDB
from backend.measure.measurement import measure_loop
from backend.measure.report import render_report
from backend.measure.report_answers import answer_coverage
from tests.test_measurement import CONFIG, LABELS, queue, task

PLOTS = (report_figures.learning_curve, report_figures.gain_and_cost, report_figures.agreement_by_slice,
         report_figures.class_coverage, report_figures.production_error)


@pytest.fixture()
def db(tmp_path) -> CyclesDB:
    return CyclesDB.in_data_dir(tmp_path)


def measure(db: CyclesDB, tasks: list, project_id: int = 1):
    return measure_loop(project_id, LABELS, db.cycles(project_id), {t.task_id: t for t in tasks},
                        db.trained_labels(project_id), db.feedback(project_id), CONFIG)


def page_of(measurement) -> str:
    """The rendered page as text a reader sees (entities decoded), with no warning raised."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return html.unescape(render_report(measurement))


@pytest.fixture()
def no_control_labelled(db):
    """Two cycles whose control items nobody has labelled; only uncertain items are."""
    db.record_queue(1, queue(1, "v1-a", 4, [(10, "control", "a"), (11, "uncertain", "b")]), trained=[1, 2, 3, 4])
    db.record_queue(1, queue(2, "v2-b", 5, [(20, "control", "a"), (21, "uncertain", "a")]), trained=[1, 2, 3, 4, 11])
    return measure(db, [task(1, "a"), task(2, "b"), task(3, "a"), task(4, "b"), task(11, "b"), task(21, "c")])


def test_no_control_labelled_the_cost_answer_says_not_known_instead_of_not_rising(no_control_labelled):
    page = page_of(no_control_labelled)
    assert "not rising" not in page
    assert "What does a point of quality cost?</dt><dd>Not known yet" in page
    assert "Is the loop helping?</dt><dd>Not known yet" in page
    assert "No control item has been labelled yet." in page


def test_no_control_labelled_the_warnings_say_how_little_there_is_to_go_on(no_control_labelled):
    page = page_of(no_control_labelled)
    assert "nothing suggests" not in page
    assert "need 3 cycles with labelled control items (0 so far)" in page


def test_control_rising_over_two_cycles_is_priced_and_falling_is_not_rising(db):
    db.record_queue(1, queue(1, "v1-a", 4, [(10, "control", "a"), (11, "control", "a")]), trained=[1, 2, 3, 4])
    db.record_queue(1, queue(2, "v2-b", 6, [(20, "control", "a"), (21, "control", "c")]),
                    trained=[1, 2, 3, 4, 10, 11])
    seed = [task(1, "a"), task(2, "b"), task(3, "a"), task(4, "b")]
    rising = page_of(measure(db, [*seed, task(10, "a"), task(11, "b"), task(20, "a"), task(21, "c")]))
    assert "One point of control accuracy costs" in rising
    assert "<td>1-2</td><td>2 / 2</td>" in rising  # the gain names the control items it rests on
    falling = page_of(measure(db, [*seed, task(10, "a"), task(11, "a"), task(20, "b"), task(21, "b")]))
    assert "control accuracy is not rising as labels are added (over 2 measured cycles)" in falling


def test_no_flags_the_failure_section_says_none_labelled(db):
    db.record_queue(1, queue(1, "v1-a", 2, [(10, "control", "a"), (11, "uncertain", "b")]), trained=[1, 2])
    found = measure(db, [task(1, "a"), task(2, "b"), task(10, "a"), task(11, "b")])
    assert found.failure_modes["flagged"] == {"n": 0, "accuracy": None, "per_cycle": []}
    assert "No flagged failure item has been labelled yet." in page_of(found)


def test_override_neighbours_are_not_counted_as_flagged_production_failures(db):
    db.record_queue(1, queue(1, "v1-a", 2, [(10, "failure", "a", "override"), (11, "failure", "b", "override"),
                                            (12, "control", "a")]), trained=[1, 2])
    found = measure(db, [task(1, "a"), task(2, "b"), task(10, "a"), task(11, "b"), task(12, "a")])
    assert found.failure_modes["flagged"]["n"] == 0
    assert found.cycles[0]["slices"]["failure"]["n"] == 2  # still measured as a slice
    page = page_of(found)
    assert "Flagged production failures labelled so far" not in page
    assert "No flagged failure item has been labelled yet." in page


def test_flagged_items_are_counted_apart_from_override_neighbours_in_one_cycle(db):
    db.record_queue(1, queue(1, "v1-a", 2, [(10, "failure", "a", "flagged"), (11, "failure", "b", "override")]),
                    trained=[1, 2])
    found = measure(db, [task(1, "a"), task(2, "b"), task(10, "b"), task(11, "b")])
    assert found.failure_modes["flagged"] == {"n": 1, "accuracy": 0.0,
                                                 "per_cycle": [{"cycle": 1, "n": 1, "accuracy": 0.0}]}
    assert "Flagged production failures labelled so far: 1;" in page_of(found)


def test_one_cycle_every_comparison_is_not_known_yet_and_no_plot_warns(db):
    db.record_queue(1, queue(1, "v1-a", 2, [(10, "control", "a")]), trained=[1, 2])
    found = measure(db, [task(1, "a"), task(2, "b"), task(10, "a")])
    page = page_of(found)
    for question in ("Is the loop helping?", "What does a point of quality cost?",
                     "Did the last retrain lower the production error rate?"):
        assert f"{question}</dt><dd>Not known yet" in page
    assert "Needs two cycles with labelled control items." in page
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert report_figures.gain_and_cost(found) is None
        assert report_figures.learning_curve(found) is not None


def test_an_empty_production_series_is_not_drawn(db):
    """Model versions with neither control labels nor feedback: no empty plot (which made
    matplotlib warn about a legend without entries), and the section says why."""
    db.record_queue(1, queue(1, "v1-a", 2, [(10, "control", "a")]), trained=[1, 2])
    db.record_queue(1, queue(2, "v2-b", 2, [(20, "control", "a")]), trained=[1, 2])
    found = measure(db, [task(1, "a"), task(2, "b")])
    assert [v["model_version"] for v in found.production] == ["v1-a", "v2-b"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert report_figures.production_error(found) is None
    assert "No data yet: no model version has labelled control items or production feedback." in page_of(found)


def test_no_label_at_all_leaves_every_plot_out_and_coverage_not_known(db):
    db.record_queue(1, queue(1, None, 0, [(10, "control", None), (11, "diverse", None)]), trained=[])
    found = measure(db, [])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert [plot(found) for plot in PLOTS] == [None] * len(PLOTS)
    assert answer_coverage(found).startswith("Not known yet: no task is labelled")
    assert "src='data:image/png" not in page_of(found)


def test_labels_added_add_up_to_the_training_set_size_of_each_cycle(db):
    """"labels added" and "trained on" come from one snapshot per cycle (see the cycle's test
    of a retrain finishing during the queue write)."""
    sizes = [(1, [1, 2]), (2, [1, 2, 3]), (3, [1, 2, 3, 4, 5])]
    for cycle, trained in sizes:
        db.record_queue(1, queue(cycle, f"v{cycle}-a", len(trained), []), trained=trained)
    rows = measure(db, [task(t, "a") for t in range(1, 6)]).cycles
    assert [r["labels_added"]["total"] for r in rows] == [2, 1, 2]
    assert [r["training_labels"] for r in rows] == [2, 3, 5]


def test_a_version_1_database_keeps_its_cycles_and_gains_reasons(tmp_path):
    path = tmp_path / "labelqueue.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.executescript("""
            CREATE TABLE queue_items (project_id INTEGER NOT NULL, cycle INTEGER NOT NULL, task_id INTEGER NOT NULL,
                slice TEXT NOT NULL, rank INTEGER NOT NULL, predicted TEXT, score REAL,
                PRIMARY KEY (project_id, cycle, task_id));
            CREATE TABLE cycles (project_id INTEGER NOT NULL, cycle INTEGER NOT NULL, model_version TEXT,
                created_at TEXT NOT NULL, labelled INTEGER NOT NULL, size_requested INTEGER, mix TEXT NOT NULL,
                counts TEXT NOT NULL, PRIMARY KEY (project_id, cycle));
            INSERT INTO cycles VALUES (1, 1, 'v1', '2025-01-01T00:00:00', 2, 2, '{}', '{}');
            INSERT INTO queue_items VALUES (1, 1, 10, 'failure', 1, '["a"]', 0.9);
            PRAGMA user_version = 1;""")
    db = CyclesDB(path)
    [old] = db.cycles(1)
    assert [(i.task_id, i.reason) for i in old.items] == [(10, {})]
    db.record_queue(1, queue(2, "v2", 2, [(20, "failure", "a", "flagged")]), trained=[])
    assert db.cycles(1)[1].items[0].reason == {"source": "flagged"}
