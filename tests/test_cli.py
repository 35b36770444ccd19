"""The ``labelqueue`` command line (commands that need no Label Studio)."""
from __future__ import annotations

import pytest

from backend.cli import main
from backend.loop.failures import FailureLog
from backend.store import ModelStore


def test_failures_add_flags_tasks_in_the_data_dir(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LABELQUEUE_DATA_DIR", str(tmp_path))
    assert main(["failures", "add", "--project", "4", "--task-ids", "10", "11"]) == 0
    assert sorted(FailureLog(ModelStore(tmp_path)).read(4)) == [10, 11]
    assert "2 task(s) newly flagged" in capsys.readouterr().out


def test_invalid_setting_exits_with_a_message_not_a_traceback(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LABELQUEUE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LABELQUEUE_UNCERTAINTY_MEASURE", "vibes")
    with pytest.raises(SystemExit) as exit_info:
        main(["failures", "add", "--project", "4", "--task-ids", "1"])
    assert exit_info.value.code == 2
    assert "LABELQUEUE_UNCERTAINTY_MEASURE" in capsys.readouterr().err
