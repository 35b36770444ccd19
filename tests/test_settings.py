"""Settings: parsed once into typed values, and a bad value stops start-up naming its variable."""
from __future__ import annotations

import logging

import pytest

from backend import cli
from backend.settings import FailureField, Settings, SettingsError
from backend.web.app import create_app
from selection.mix import SliceMix


def test_batch_size_above_the_per_project_bound_stops_start_up_naming_the_variable(tmp_path, monkeypatch):
    """It used to pass start-up; then every /setup got a 400 blaming extra_params.batch_size."""
    monkeypatch.setenv("LABELQUEUE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LABELQUEUE_BATCH_SIZE", "20000")
    with pytest.raises(SettingsError, match="LABELQUEUE_BATCH_SIZE"):
        create_app()


def test_labelqueue_serve_refuses_a_bad_setting_before_starting(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LABELQUEUE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LABELQUEUE_BATCH_SIZE", "20000")
    with pytest.raises(SystemExit) as stopped:
        cli.main(["serve"])
    assert stopped.value.code == 2 and "LABELQUEUE_BATCH_SIZE" in capsys.readouterr().err


@pytest.mark.parametrize("name, value", [("LABELQUEUE_MIX", "uncertain=0.9"), ("LABELQUEUE_MIX", "nonsense"),
                                         ("LABELQUEUE_FAILURE_FIELD", "source"), ("LABELQUEUE_MAX_PROJECTS", "0"),
                                         ("LABELQUEUE_TRAIN_THREADS", "many"), ("LABEL_STUDIO_URL", "ftp://x"),
                                         ("LABELQUEUE_UNCERTAINTY_MEASURE", "mnlp"),
                                         ("LABELQUEUE_SPAN_UNCERTAINTY_MEASURE", "margin")])
def test_each_bad_value_names_its_variable(name, value):
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_structured_values_are_parsed_once_into_types():
    settings = Settings.from_env({"LABELQUEUE_MIX": "uncertain=0.7,diverse=0.3",
                                  "LABELQUEUE_HIGH_IMPACT_CLASSES": "fraud, refund,,",
                                  "LABELQUEUE_FAILURE_FIELD": "data.source=prod"})
    assert settings.mix == SliceMix(0.7, 0.3, 0.0, 0.0)
    assert settings.high_impact_classes == ("fraud", "refund") and settings.failure_mode_classes == ()
    assert settings.failure_field == FailureField("data", "source", "prod")
    assert settings.public()["mix"] == "uncertain=0.7,diverse=0.3,failure=0,control=0"


def test_label_studio_url_credentials_are_masked_in_metrics_and_the_start_up_log(tmp_path, monkeypatch, caplog):
    url = "http://admin:hunter2@127.0.0.1:9/"
    app = create_app(Settings(data_dir=tmp_path, label_studio_url=url, label_studio_api_key="x"))
    shown = app.test_client().get("/metrics").get_json()["settings"]["label_studio_url"]
    assert "hunter2" not in shown and "admin" not in shown and shown.endswith("@127.0.0.1:9/")
    monkeypatch.setenv("LABELQUEUE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LABEL_STUDIO_URL", url)
    monkeypatch.setattr("backend.web.app.create_app", lambda settings: _NotServed())
    with caplog.at_level(logging.INFO):
        assert cli.main(["serve", "--dev"]) == 0
    assert "127.0.0.1:9" in caplog.text and "hunter2" not in caplog.text


class _NotServed:
    def run(self, **kwargs) -> None:
        """The server is not started: only the start-up log is under test."""
