"""What only the in-process scheduler does: requests return at once, backoff on its own timers.
The behaviour both job backends share is in ``tests/test_job_backends.py``."""
from __future__ import annotations

import threading
import time

import pytest

from backend.jobs.scheduler import CoalescingScheduler
from backend.outcome import JobOutcome
from tests.helpers import label_studio_down


@pytest.fixture()
def schedulers():
    """Builds schedulers and closes them after the test, so no thread outlives it."""
    made: list[CoalescingScheduler] = []

    def make(*args, **options) -> CoalescingScheduler:
        made.append(CoalescingScheduler(*args, **options))
        return made[-1]

    yield make
    for scheduler in made:
        scheduler.close()


def test_request_returns_while_the_training_it_asked_for_is_still_running(schedulers):
    release = threading.Event()
    started = threading.Event()

    def blocked(project_id, force):
        started.set()
        release.wait(10)  # a synchronous request() would sit here for 10 s and find the job idle
        return JobOutcome(project_id, True, "test")

    scheduler = schedulers("retrain", blocked, threads=1)
    assert scheduler.request(1) == "scheduled"
    assert started.wait(5)
    assert scheduler.snapshot()[1]["state"] == "running"
    assert scheduler.request(1) == "coalesced"
    release.set()
    assert scheduler.wait_idle(10)


def test_label_studio_outage_is_retried_with_backoff_until_it_returns(schedulers):
    calls = []

    def flaky(project_id, force):
        calls.append(time.monotonic())
        if len(calls) < 3:
            label_studio_down("Label Studio is down")
        return JobOutcome(project_id, True, "back", version="v1")

    scheduler = schedulers("retrain", flaky, threads=1, retry_delays=(0.05, 0.1))
    scheduler.request(1)
    deadline = time.monotonic() + 5
    while len(calls) < 3 and time.monotonic() < deadline:
        assert scheduler.snapshot()[1]["state"] in {"queued", "running", "backoff"}
        time.sleep(0.01)
    assert scheduler.wait_idle(5)
    assert len(calls) == 3 and scheduler.snapshot()[1]["versions"] == ["v1"]
    assert scheduler.degraded() == {}
