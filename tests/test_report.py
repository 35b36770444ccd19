"""The report page, its routes, production feedback, and the mix the loop may lower by itself."""
from __future__ import annotations

import json
import logging
import re
from dataclasses import replace
from pathlib import Path

import pytest

from backend.measure.measurement_record import Measurement
from backend.measure.report import SECTIONS, render_report
from backend.settings import Settings
from backend.web.app import create_app
from selection.mix import SliceMix
from tests.test_api import install_model
from tests.test_measurement import CONFIG, LABELS, queue, task

COLD = {"uncertain": 0.5, "diverse": 0.3, "failure": 0.15, "control": 0.05}
CONFIG_XML = (Path(__file__).resolve().parents[1] / "label_config" / "text_classification.xml").read_text()


@pytest.fixture()
def app(tmp_path):
    app = create_app(Settings(data_dir=tmp_path / "data", label_studio_url="http://127.0.0.1:9",
                              label_studio_api_key="not-a-real-token", auto_adjust_mix=True))
    yield app
    app.extensions["labelqueue"].close()  # its schedulers' threads end with the test


@pytest.fixture()
def client(app):
    return app.test_client()


def measured(app, project_id: int = 4) -> Measurement:
    """Two recorded cycles measured as the background job would, without Label Studio."""
    from backend.measure.measurement import measure_loop

    loop = app.extensions["labelqueue"].loop
    loop.db.record_queue(project_id, queue(1, "v1-a", 2, [(10, "control", "a"), (11, "control", "b")]), [1, 2])
    loop.db.record_queue(project_id, queue(2, "v2-b", 4, [(20, "control", "a")]), [1, 2, 10, 11])
    tasks = {t.task_id: t for t in [task(1, "a"), task(2, "b"), task(10, "a", ratings=((1, "a"), (2, "a"))),
                                    task(11, "a", ratings=((1, "a"), (2, "b"))), task(20, "a")]}
    measurement = measure_loop(project_id, LABELS, loop.db.cycles(project_id), tasks,
                               loop.db.trained_labels(project_id), loop.db.feedback(project_id), CONFIG)
    loop.db.save_measurement(project_id, measurement, render_report(measurement))
    return measurement


def connect(client, project_id: int = 4, extra_params: object = None):
    return client.post("/setup", json={"project": f"{project_id}.1", "schema": CONFIG_XML,
                                       "extra_params": extra_params})


def test_report_has_every_section_and_no_script(app):
    page = render_report(measured(app))
    assert set(SECTIONS) <= set(re.findall(r"<section id='([^']+)'>", page))
    assert "<script" not in page.lower()
    assert page.count("src='data:image/png;base64,") >= 4


def test_report_answers_the_five_questions_in_words(app):
    page = render_report(measured(app))
    for question in ("Is the loop helping?", "What does a point of quality cost?", "Are annotators agreeing?",
                     "Which classes are still uncovered?", "Did the last retrain lower the production error rate?"):
        assert question in page
    assert "agree 50% of the time (Cohen&#x27;s kappa" in page


def test_get_report_serves_the_stored_page_as_html(app, client):
    measured(app)
    response = client.get("/projects/4/report")
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert b"Is the loop working? Project 4" in response.data


def test_a_measurement_is_one_record_in_sqlite_and_on_the_api(app, client):
    found = measured(app)
    as_json = json.loads(json.dumps(found.to_json()))
    assert app.extensions["labelqueue"].loop.db.measurement(4) == Measurement.from_json(as_json)
    assert client.get("/projects/4/measurement").get_json() == as_json
    assert set(as_json) == {"project_id", "measured_at", "labels", "cost_unit", "thresholds", "cycles", "totals",
                            "agreement", "coverage", "failure_modes", "production", "warnings", "mix_changes"}


def test_get_report_of_a_project_without_cycles_is_404_json(client):
    response = client.get("/projects/77/report")
    assert response.status_code == 404 and "no recorded cycle" in response.get_json()["error"]


def test_metrics_carry_the_loop_summary(app, client):
    connect(client)
    measured(app)
    loop = client.get("/metrics").get_json()["projects"]["4"]["loop"]
    assert loop["cycles"] == 2 and loop["control"]["cycle"] == 2
    assert loop["agreement"]["items"] == 2 and loop["cost_unit"] == "annotator minutes"


def test_feedback_is_stored_with_the_model_version_in_service(app, client):
    connect(client)
    version = install_model(app, 4, labels=LABELS)
    response = client.post("/projects/4/feedback", json={"text": "where is my card", "predicted": "a", "correct": ["b"]})
    assert response.status_code == 201
    assert response.get_json()["model_version"] == version and response.get_json()["wrong"] is True
    [stored] = app.extensions["labelqueue"].loop.db.feedback(4)
    assert (stored.predicted, stored.correct, stored.text) == (("a",), ("b",), "where is my card")


@pytest.mark.parametrize("body, field", [
    ({"predicted": "a", "correct": "b"}, "task_id"),
    ({"task_id": 0, "predicted": "a", "correct": "b"}, "task_id"),
    ({"task_id": 3, "predicted": [], "correct": "b"}, "predicted"),
    ({"task_id": 3, "predicted": "a", "correct": "zzz"}, "correct"),
    ({"task_id": 3, "predicted": "a", "correct": "b", "model_version": 7}, "model_version"),
])
def test_feedback_refuses_bad_input_naming_the_field(app, client, body, field):
    connect(client)
    install_model(app, 4, labels=LABELS)
    response = client.post("/projects/4/feedback", json=body)
    assert response.status_code == 400 and response.get_json()["field"] == field


def test_feedback_for_an_unknown_project_is_404(client):
    response = client.post("/projects/999/feedback", json={"task_id": 1, "predicted": "a", "correct": "a"})
    assert response.status_code == 404


def test_control_overlap_is_a_validated_extra_param(app, client):
    assert connect(client, extra_params={"control_overlap": 2}).status_code == 200
    assert app.extensions["labelqueue"].options.get(4).control_overlap == 2
    response = connect(client, project_id=5, extra_params={"control_overlap": 0})
    assert response.status_code == 400 and response.get_json()["field"] == "extra_params.control_overlap"


def test_noisy_uncertain_labels_lower_the_uncertain_share_once_and_record_it(app, client):
    connect(client, extra_params={"mix": {"uncertain": 0.55, "diverse": 0.25, "failure": 0.15, "control": 0.05}})
    loop, options = app.extensions["labelqueue"].loop, app.extensions["labelqueue"].options
    noisy = replace(measured(app), warnings=({"code": "noisy_uncertain_labels", "message": "noisy"},), mix_changes=())
    assert loop.adjust_mix(4, 3, noisy)
    assert options.get(4).mix == SliceMix(uncertain=0.5, diverse=0.3, failure=0.15, control=0.05)
    [change] = loop.db.mix_changes(4)
    assert (change["cycle"], change["old_mix"]["uncertain"], change["new_mix"]["uncertain"]) == (3, 0.55, 0.5)
    assert not loop.adjust_mix(4, 4, replace(noisy, mix_changes=(change,)))


def test_under_the_schedule_the_step_is_taken_from_the_latest_batchs_mix(app, client):
    connect(client)
    loop, options = app.extensions["labelqueue"].loop, app.extensions["labelqueue"].options
    assert options.get(4).mix is None
    latest = {"uncertain": 0.6, "diverse": 0.2, "failure": 0.15, "control": 0.05}
    noisy = replace(measured(app), warnings=({"code": "noisy_uncertain_labels", "message": "noisy"},),
                    mix_changes=(), cycles=({"mix": COLD}, {"mix": latest}))
    assert loop.adjust_mix(4, 3, noisy)
    assert options.get(4).mix == SliceMix(uncertain=0.55, diverse=0.25, failure=0.15, control=0.05)
    [change] = loop.db.mix_changes(4)
    assert (change["old_mix"]["uncertain"], change["new_mix"]["uncertain"]) == (0.6, 0.55)


def test_the_admins_new_mix_wins_over_an_automatic_change(app, client):
    connect(client)
    loop, options = app.extensions["labelqueue"].loop, app.extensions["labelqueue"].options
    loop.adjust_mix(4, 3, replace(measured(app), warnings=({"code": "noisy_uncertain_labels", "message": "m"},),
                                  mix_changes=(), cycles=({"mix": COLD},)))
    admin = {"uncertain": 0.6, "diverse": 0.2, "failure": 0.15, "control": 0.05}
    connect(client, extra_params={"mix": admin})
    assert options.get(4).mix == SliceMix.from_mapping(admin)


class BrokenDB:
    def record_queue(self, *args):
        raise OSError("disk full")


def test_a_failing_recorder_never_fails_the_cycle(app, monkeypatch, caplog):
    loop = app.extensions["labelqueue"].loop
    monkeypatch.setattr(loop, "db", BrokenDB())
    with caplog.at_level(logging.ERROR):
        assert loop.record_queue(4, queue(1, None, 0, []), trained=()) is None  # returns, does not raise
    assert any("could not record cycle 1" in r.getMessage() and r.exc_info for r in caplog.records)


def test_cost_settings_are_exclusive_and_parsed_as_numbers():
    from backend.settings import SettingsError

    assert Settings.from_env({"LABELQUEUE_COST_PER_HOUR": "42.5"}).cost_per_hour == 42.5
    with pytest.raises(SettingsError, match="not both"):
        Settings.from_env({"LABELQUEUE_COST_PER_HOUR": "1", "LABELQUEUE_COST_PER_LABEL": "1"})
