"""Background retraining: coalescing and one run at a time per project."""
from __future__ import annotations

import threading
import time

from backend.jobs.scheduler import CoalescingScheduler
from backend.loop.training import TrainOutcome


class RecordingRetrain:
    """Stands in for the training function (not for Label Studio): records concurrency."""

    def __init__(self, seconds: float = 0.2):
        self.seconds, self.calls, self.forced = seconds, 0, []
        self.running, self.max_running = 0, 0
        self.lock = threading.Lock()

    def __call__(self, project_id: int, force: bool) -> TrainOutcome:
        with self.lock:
            self.calls += 1
            self.forced.append(force)
            self.running += 1
            self.max_running = max(self.max_running, self.running)
        time.sleep(self.seconds)
        with self.lock:
            self.running -= 1
        return TrainOutcome(project_id, True, "test", version=f"v{self.calls}")


def test_a_flood_of_events_costs_at_most_one_extra_retrain():
    retrain = RecordingRetrain()
    scheduler = CoalescingScheduler("retrain", retrain, threads=4)
    answers = [scheduler.request(1) for _ in range(50)]
    assert scheduler.wait_idle(10)
    assert answers[0] == "scheduled" and set(answers[1:]) == {"coalesced"}
    assert retrain.calls == 2 and retrain.max_running == 1


def test_projects_retrain_independently():
    retrain = RecordingRetrain()
    scheduler = CoalescingScheduler("retrain", retrain, threads=4)
    scheduler.request(1), scheduler.request(2)
    assert scheduler.wait_idle(10)
    assert retrain.calls == 2 and retrain.max_running == 2


def test_force_survives_coalescing():
    retrain = RecordingRetrain()
    scheduler = CoalescingScheduler("retrain", retrain, threads=1)
    scheduler.request(1)
    scheduler.request(1, force=True)
    scheduler.request(1)
    assert scheduler.wait_idle(10)
    assert retrain.forced == [False, True]


def test_request_returns_while_the_training_it_asked_for_is_still_running():
    release = threading.Event()
    started = threading.Event()

    def blocked(project_id, force):
        started.set()
        release.wait(10)  # a synchronous request() would sit here for 10 s and find the job idle
        return TrainOutcome(project_id, True, "test")

    scheduler = CoalescingScheduler("retrain", blocked, threads=1)
    assert scheduler.request(1) == "scheduled"
    assert started.wait(5)
    assert scheduler.snapshot()[1]["state"] == "running"
    assert scheduler.request(1) == "coalesced"
    release.set()
    assert scheduler.wait_idle(10)


def test_failed_retrain_is_reported_and_next_request_runs():
    def failing(project_id, force):
        raise RuntimeError("boom")

    scheduler = CoalescingScheduler("retrain", failing, threads=1)
    scheduler.request(1)
    assert scheduler.wait_idle(5)
    assert "boom" in scheduler.snapshot()[1]["last_error"]
    assert scheduler.snapshot()[1]["state"] == "failed"
    assert scheduler.request(1) == "scheduled"


def test_after_retrain_callbacks_run_on_new_versions():
    seen = []
    scheduler = CoalescingScheduler("retrain", RecordingRetrain(seconds=0), threads=1, after=[lambda o: seen.append(o.version)])
    scheduler.request(1)
    assert scheduler.wait_idle(5)
    assert seen == ["v1"]


def test_label_studio_outage_is_retried_with_backoff_until_it_returns():
    import httpx

    calls = []

    def flaky(project_id, force):
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise httpx.ConnectError("Label Studio is down")
        return TrainOutcome(project_id, True, "back", version="v1")

    scheduler = CoalescingScheduler("retrain", flaky, threads=1, retry_delays=(0.05, 0.1))
    scheduler.request(1)
    deadline = time.monotonic() + 5
    while len(calls) < 3 and time.monotonic() < deadline:
        assert scheduler.snapshot()[1]["state"] in {"queued", "running", "backoff"}
        time.sleep(0.01)
    assert scheduler.wait_idle(5)
    assert len(calls) == 3 and scheduler.snapshot()[1]["versions"] == ["v1"]
    assert scheduler.degraded() == {}


def test_outage_is_reported_as_degraded_while_backing_off():
    import httpx

    def down(project_id, force):
        raise httpx.ConnectError("connection refused")

    scheduler = CoalescingScheduler("retrain", down, threads=1, retry_delays=(60.0,))
    scheduler.request(1)
    assert scheduler.wait_idle(5)
    assert "connection refused" in scheduler.degraded()[1]
    assert scheduler.request(1) == "coalesced"  # folded into the pending retry
