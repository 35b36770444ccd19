"""The job-backend contract: the same behaviour from the in-process ``CoalescingScheduler``
and from the RQ scheduler against a real redis-server.

Each test runs once per backend (the ``jobs`` fixture). Work happens when the test says so
(:meth:`Backend.drain`): in-process, the scheduler's threads run it and ``drain`` waits for them
to settle; with RQ, ``drain`` runs RQ's own ``SimpleWorker`` in burst mode in the test process.
Jobs block on a gate where a test needs requests to arrive while a run is under way, so no test
depends on timing. What only one backend does (backoff timers in-process; leases, the sweep and
RQ's registries) is tested in ``tests/test_scheduler.py`` and ``tests/test_rq_jobs.py``.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from backend.jobs.backends import JobBackend, JobScheduler, job_backend
from backend.jobs.scheduler import JobState
from backend.outcome import JobOutcome
from backend.settings import Settings
from tests.helpers import label_studio_down, wait_for


class RecordingRetrain:
    """Stands in for the training function (not for Label Studio): records calls, force flags
    and concurrency; with a ``gate``, each run waits for it to open (at most 10 s)."""

    def __init__(self, gate: threading.Event | None = None):
        self.gate, self.calls, self.forced = gate, 0, []
        self.running, self.max_running = 0, 0
        self.lock = threading.Lock()

    def __call__(self, project_id: int, force: bool) -> JobOutcome:
        with self.lock:
            self.calls += 1
            self.forced.append(force)
            self.running += 1
            self.max_running = max(self.max_running, self.running)
        if self.gate is not None:
            self.gate.wait(10)
        with self.lock:
            self.running -= 1
        return JobOutcome(project_id, True, "test", version=f"v{self.calls}")


class Backend:
    """One job backend under test, with the schedulers a test made from it."""

    def __init__(self, jobs: JobBackend, drain):
        self.jobs, self._drain, self.made = jobs, drain, []

    def scheduler(self, name: str, run, **options) -> JobScheduler:
        scheduler = self.jobs.scheduler(name, run, **options)
        self.made.append(scheduler)
        return scheduler

    def drain(self) -> None:
        """Run everything requested so far, follow-ups included, then return."""
        self._drain(self)

    def close(self) -> None:
        for scheduler in self.made:
            scheduler.close()
        self.jobs.close()


def _wait_in_process(backend: Backend) -> None:
    assert all(s.wait_idle(10) for s in backend.made)


def _work_rq(backend: Backend) -> None:
    from rq import SimpleWorker

    from backend.jobs.rq_jobs import QUEUE_JOBS

    # with RQ's scheduler, as ``labelqueue worker`` runs it: delayed requests that are due are
    # enqueued first
    SimpleWorker([backend.jobs.queues[QUEUE_JOBS]], connection=backend.jobs.redis).work(burst=True,
                                                                                       with_scheduler=True)


@pytest.fixture(params=["in-process", "rq"])
def jobs(request: pytest.FixtureRequest, tmp_path) -> Iterator[Backend]:
    if request.param == "rq":
        from backend.worker import use_runtime

        redis_url = request.getfixturevalue("redis_url")
        backend = Backend(job_backend(Settings(data_dir=tmp_path, redis_url=redis_url)), _work_rq)
        use_runtime(SimpleNamespace(jobs=backend.jobs))  # what `perform` looks up in a worker
    else:
        backend = Backend(job_backend(Settings(data_dir=tmp_path)), _wait_in_process)
    assert backend.jobs.mode == request.param
    yield backend
    backend.close()


def test_a_delayed_request_queues_nothing_until_it_is_due(jobs):
    retrain = RecordingRetrain()
    scheduler = jobs.scheduler("retrain", retrain)
    scheduler.request_later(1, 3600)
    jobs.drain()
    assert retrain.calls == 0
    assert scheduler.request(1) == "scheduled"  # a request meanwhile is not folded into it
    jobs.drain()
    assert retrain.calls == 1


def test_a_delayed_request_runs_the_job_once_it_is_due(jobs):
    retrain = RecordingRetrain()
    scheduler = jobs.scheduler("retrain", retrain)
    scheduler.request_later(1, 0)
    wait_for(lambda: jobs.drain() or retrain.calls == 1, timeout=15, what="the delayed request's run")
    assert retrain.forced == [False]


def test_a_flood_of_requests_costs_at_most_one_extra_run(jobs):
    gate = threading.Event()
    retrain = RecordingRetrain(gate)
    scheduler = jobs.scheduler("retrain", retrain)
    answers = [scheduler.request(1) for _ in range(50)]
    gate.set()
    jobs.drain()
    assert answers[0] == "scheduled" and set(answers[1:]) == {"coalesced"}
    assert 1 <= retrain.calls <= 2 and retrain.max_running == 1
    state = scheduler.snapshot()[1]
    assert (state["state"], state["requests"], state["coalesced"]) == (JobState.IDLE, 50, 49)


def test_requests_during_a_run_cost_exactly_one_follow_up(jobs):
    answers: list[str] = []

    def retrain(project_id, force):
        if not answers:  # webhooks while the first run trains
            answers.extend(scheduler.request(project_id) for _ in range(20))
        return JobOutcome(project_id, True, "test")

    scheduler = jobs.scheduler("retrain", retrain)
    scheduler.request(1)
    jobs.drain()
    assert set(answers) == {"coalesced"}
    assert scheduler.snapshot()[1]["runs"] == 2  # the run, and one follow-up for 20 requests


def test_force_survives_coalescing(jobs):
    gate = threading.Event()
    retrain = RecordingRetrain(gate)
    scheduler = jobs.scheduler("retrain", retrain)
    scheduler.request(1)
    scheduler.request(1, force=True)
    scheduler.request(1)
    gate.set()
    jobs.drain()
    assert retrain.forced[-1] is True  # the run after the forced request is forced


def test_projects_run_independently(jobs):
    retrain = RecordingRetrain()
    scheduler = jobs.scheduler("retrain", retrain)
    assert scheduler.request(1) == scheduler.request(2) == "scheduled"
    jobs.drain()
    snapshot = scheduler.snapshot()
    assert retrain.calls == 2 and snapshot[1]["runs"] == snapshot[2]["runs"] == 1


def test_a_bug_shows_as_failed_and_the_next_request_runs(jobs):
    def broken(project_id, force):
        raise RuntimeError("boom")

    scheduler = jobs.scheduler("retrain", broken)
    scheduler.request(1)
    jobs.drain()
    state = scheduler.snapshot()[1]
    assert state["state"] == JobState.FAILED and "boom" in state["last_error"]
    assert scheduler.degraded() == {}  # a bug is not Label Studio being down
    assert scheduler.request(1) == "scheduled"


def test_label_studio_outage_backs_off_and_is_reported_as_degraded(jobs):
    def down(project_id, force):
        label_studio_down("connection refused")

    scheduler = jobs.scheduler("retrain", down, retry_delays=(60.0,))
    scheduler.request(1)
    jobs.drain()
    state = scheduler.snapshot()[1]
    assert (state["state"], state["attempts"], state["retry_in"]) == (JobState.BACKOFF, 1, 60.0)
    assert "connection refused" in scheduler.degraded()[1]
    assert scheduler.request(1) == "coalesced"  # folded into the pending retry


def test_queue_write_cut_short_backs_off_and_reports_degraded(jobs):
    from backend.labelstudio.errors import QueueWriteError

    def dropped(project_id, force):
        raise QueueWriteError("updating the data of task 7 failed: could not reach Label Studio")

    scheduler = jobs.scheduler("select", dropped, retry_delays=(60.0,))
    scheduler.request(1)
    jobs.drain()
    assert scheduler.snapshot()[1]["state"] == JobState.BACKOFF
    assert "could not reach Label Studio" in scheduler.degraded()[1]


def test_a_refused_request_in_a_job_is_a_failure_not_an_outage(jobs):
    from backend.errors import UnsupportedConfigError

    def refused(project_id, force):
        raise UnsupportedConfigError("label config has no <Choices>", field="label_config")

    scheduler = jobs.scheduler("retrain", refused, retry_delays=(60.0,))
    scheduler.request(1)
    jobs.drain()
    assert scheduler.snapshot()[1]["state"] == JobState.FAILED and scheduler.degraded() == {}


def test_label_studio_refusing_a_request_is_a_failure_not_an_outage(jobs):
    from label_studio_sdk.core.api_error import ApiError as SdkApiError

    from backend.labelstudio.errors import translated

    def refused(project_id, force):
        with translated("reading the annotated tasks of project 1"):
            raise SdkApiError(status_code=401, body={"detail": "Invalid token."})

    scheduler = jobs.scheduler("retrain", refused, retry_delays=(60.0,))
    scheduler.request(1)
    jobs.drain()
    state = scheduler.snapshot()[1]
    assert state["state"] == JobState.FAILED and scheduler.degraded() == {}
    assert "HTTP 401" in state["last_error"] and "LABEL_STUDIO_API_KEY" in state["last_error"]


def test_after_callbacks_get_done_outcomes_only(jobs):
    seen: list[JobOutcome] = []

    def run(project_id, force):
        return JobOutcome(project_id, project_id == 1, "produced" if project_id == 1 else "skipped", version="v1")

    scheduler = jobs.scheduler("retrain", run, after=[seen.append])
    scheduler.request(1), scheduler.request(2)
    jobs.drain()
    assert [o.project_id for o in seen] == [1]
    assert scheduler.snapshot()[2]["last_outcome"] == {"project_id": 2, "done": False, "reason": "skipped",
                                                       "version": "v1"}


def test_closing_leaves_no_thread_of_the_scheduler_behind(jobs):
    gate = threading.Event()
    scheduler = jobs.scheduler("leak-check", RecordingRetrain(gate))
    scheduler.request(1)
    gate.set()
    jobs.drain()
    scheduler.close()
    assert not [t.name for t in threading.enumerate() if t.name.startswith("labelqueue-leak-check")]
