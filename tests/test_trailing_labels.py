"""Trailing labels: once no annotation has come for the quiet period, labels still below
``LABELQUEUE_MIN_NEW_ANNOTATIONS`` are trained on, so the last labels of a batch reach a model.

The runtime's clock is replaced, and the retrain scheduler by one that records delayed
requests; each retrain is run by calling ``retrain_locked`` as the scheduler would. The
delayed request itself, in both job backends, is in ``tests/test_job_backends.py``.
"""
from __future__ import annotations

from dataclasses import replace

import pytest

import backend.runtime as runtime_module
from backend.outcome import JobOutcome
from backend.runtime import Runtime
from backend.settings import Settings, SettingsError

QUIET = 30.0


class FakeRetrain:
    """Stands in for ``backend.loop.training.retrain``: Label Studio holds ``changed`` labels not
    yet trained on (three, under the threshold of ten, to begin with); it trains when there are
    ten, when told the quiet period is over (or forced), and then none are left."""

    def __init__(self):
        self.calls: list[bool] = []
        self.changed = 3

    def __call__(self, project_id, *, force, trailing, **kwargs):
        self.calls.append(trailing)
        if force or self.changed >= 10 or (trailing and self.changed):
            self.changed = 0
            return JobOutcome(project_id, True, "trained", version=f"v{len(self.calls)}")
        return JobOutcome(project_id, False, f"{self.changed} changed label(s) < 10",
                          figures={"changed": self.changed, "waiting": self.changed})


class DelayedRequests:
    """The retrain scheduler's side the runtime uses, recording ``request_later``."""

    def __init__(self):
        self.later: list[tuple[int, float]] = []

    def request(self, project_id, *, force=False):
        return "scheduled"

    def request_later(self, project_id, delay):
        self.later.append((project_id, delay))

    def snapshot(self):
        return {}

    def close(self):
        pass


@pytest.fixture()
def rt(tmp_path, monkeypatch):
    runtime = Runtime.build(Settings(data_dir=tmp_path, retrain_settle_seconds=0, trailing_quiet_seconds=QUIET,
                                     label_studio_url="http://127.0.0.1:9", label_studio_api_key="x"))
    runtime.retrains.close()
    runtime.retrains = DelayedRequests()
    runtime.now = 1000.0
    runtime.clock = lambda: runtime.now
    runtime.store.create_project(7)
    monkeypatch.setattr(runtime_module, "retrain", FakeRetrain())
    yield runtime
    runtime.close()


def at(rt: Runtime, when: float) -> Runtime:
    rt.now = when
    return rt


def test_labels_below_the_threshold_are_trained_on_after_the_quiet_period(rt):
    at(rt, 1000).request_retrain(7)
    first = at(rt, 1001).retrain_locked(7, False)
    assert not first.done and rt.retrains.later == [(7, QUIET)]
    assert rt.store.layout.retrain_pending(7).exists()  # still owed, across a restart too
    due = at(rt, 1001 + QUIET).retrain_locked(7, False)
    assert due.done and runtime_module.retrain.calls == [False, True]


def test_after_a_training_label_studio_is_read_once_more_when_quiet_and_then_not_again(rt):
    runtime_module.retrain.changed = 10
    at(rt, 1000).request_retrain(7)
    assert at(rt, 1001).retrain_locked(7, False).done
    assert rt.retrains.later == [(7, QUIET)] and rt.store.layout.retrain_pending(7).exists()
    check = at(rt, 1001 + QUIET).retrain_locked(7, False)
    assert not check.done and runtime_module.retrain.calls == [False, True]
    assert not rt.store.layout.retrain_pending(7).exists() and rt.retrains.later == [(7, QUIET)]


def test_an_annotation_whose_webhook_never_came_is_trained_on_after_the_quiet_period(rt):
    runtime_module.retrain.changed = 10
    at(rt, 1000).request_retrain(7)
    assert at(rt, 1001).retrain_locked(7, False).done
    runtime_module.retrain.changed = 1  # annotated in Label Studio; its webhook timed out
    assert at(rt, 1001 + QUIET).retrain_locked(7, False).done


def test_a_new_annotation_during_the_quiet_period_starts_it_again(rt):
    at(rt, 1000).request_retrain(7)
    at(rt, 1001).retrain_locked(7, False)
    at(rt, 1020).request_retrain(7)  # another label, still below the threshold
    at(rt, 1021).retrain_locked(7, False)
    early = at(rt, 1001 + QUIET).retrain_locked(7, False)  # the first delayed request fires
    assert not early.done and "wait 20 s more" in early.reason
    assert runtime_module.retrain.calls == [False, False]  # no Label Studio read for it
    assert at(rt, 1021 + QUIET).retrain_locked(7, False).done
    assert rt.retrains.later[:3] == [(7, QUIET), (7, QUIET), (7, 20)]


def test_a_delayed_request_that_fires_a_moment_early_asks_again(rt):
    at(rt, 1000).request_retrain(7)
    at(rt, 1001).retrain_locked(7, False)
    assert not at(rt, 1001 + QUIET - 0.5).retrain_locked(7, False).done  # RQ schedules to the second
    assert rt.retrains.later[-1] == (7, 0.5)
    assert at(rt, 1001 + QUIET).retrain_locked(7, False).done


def test_a_forced_request_does_not_wait_for_quiet(rt):
    at(rt, 1000).request_retrain(7)
    at(rt, 1001).retrain_locked(7, False)
    at(rt, 1002).request_retrain(7, force=True)
    assert at(rt, 1003).retrain_locked(7, True).done


def test_a_restart_during_the_quiet_period_asks_again_when_it_is_due(rt):
    at(rt, 1000).request_retrain(7)
    at(rt, 1001).retrain_locked(7, False)
    rt.retrains.later.clear()
    assert at(rt, 1010).resume_interrupted() == []
    assert rt.retrains.later == [(7, QUIET - 9)]
    assert at(rt, 1001 + QUIET).resume_interrupted() == [7]


def test_the_workers_periodic_check_leaves_labels_that_are_not_due_alone(rt):
    at(rt, 1000).request_retrain(7)
    at(rt, 1001).retrain_locked(7, False)
    rt.retrains.later.clear()
    assert at(rt, 1010).resume_interrupted(idle_only=True) == [] and rt.retrains.later == []


def test_a_quiet_period_of_zero_turns_trailing_labels_off(rt):
    rt.settings = Settings(data_dir=rt.settings.data_dir, retrain_settle_seconds=0, trailing_quiet_seconds=0)
    at(rt, 1000).request_retrain(7)
    assert not at(rt, 5000).retrain_locked(7, False).done
    assert runtime_module.retrain.calls == [False] and rt.retrains.later == []


def test_the_quiet_period_is_a_setting_from_the_environment():
    assert Settings.from_env({"LABELQUEUE_TRAILING_QUIET_SECONDS": "5"}).trailing_quiet_seconds == 5.0
    assert Settings().trailing_quiet_seconds == 30.0
    with pytest.raises(SettingsError, match="LABELQUEUE_TRAILING_QUIET_SECONDS"):
        Settings.from_env({"LABELQUEUE_TRAILING_QUIET_SECONDS": "-1"})


def test_retrain_holds_labels_below_the_threshold_back_until_told_it_is_quiet(tmp_path):
    from pathlib import Path
    from types import SimpleNamespace

    from backend.labelstudio.gateway import LabelledTask
    from backend.labelstudio.label_config import parse_label_config
    from backend.loop import training
    from backend.store import ModelStore

    config = (Path(__file__).resolve().parents[1] / "label_config" / "text_classification.xml").read_text()
    first, second = parse_label_config(config).labels[:2]
    labelled = [LabelledTask(1, "my card is late", (first,), False), LabelledTask(2, "refund me", (second,), False),
                LabelledTask(3, "card not here", (first,), False)]
    gateway = SimpleNamespace(spec=lambda: parse_label_config(config), labelled=lambda spec: labelled)
    connections = SimpleNamespace(gateway=lambda project_id: gateway)
    store = ModelStore(tmp_path)
    store.create_project(1)
    settings = Settings(data_dir=tmp_path, min_new_annotations=10)

    held = training.retrain(1, settings=settings, store=store, connections=connections)
    assert not held.done and held.figures["waiting"] == 3 and store.manifest(1) is None
    trained = training.retrain(1, settings=settings, store=store, connections=connections, trailing=True)
    assert trained.done and trained.reason == "trailing labels after a quiet period"
    assert trained.figures["n_examples"] == 3


def test_a_run_settles_from_the_newest_request_it_takes_over(rt, monkeypatch):
    """A run started for an earlier label that takes over a webhook from a moment ago waits until
    that annotation can be committed before reading labels; it used to settle only from its own
    start, so it read Label Studio too early, and the other worker's retrain for the new label
    then found nothing owed (a label lost until the next one, seen with two gunicorn workers)."""
    rt.settings = replace(rt.settings, retrain_settle_seconds=1.0)
    slept: list[float] = []
    monkeypatch.setattr(runtime_module.time, "sleep", slept.append)
    at(rt, 1000).request_retrain(7)
    at(rt, 1000.75).retrain_locked(7, True)
    assert slept == [pytest.approx(0.25)]
    at(rt, 1010).request_retrain(7)
    at(rt, 1020).retrain_locked(7, True)
    assert slept == [pytest.approx(0.25)]  # long settled: no wait


def test_a_forced_job_whose_request_was_already_served_does_not_force_the_quiet_check(rt):
    at(rt, 1000).request_retrain(7, force=True)
    assert at(rt, 1001).retrain_locked(7, True).done  # the forced retrain, on any worker
    # another worker's job for the same forced webhook runs afterwards: only the check is owed
    late = at(rt, 1002).retrain_locked(7, True)
    assert not late.done and "wait" in late.reason and runtime_module.retrain.calls == [False]
