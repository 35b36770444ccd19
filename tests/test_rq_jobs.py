"""The RQ job backend against a real redis-server: coalescing, one run at a time, recovery,
backoff, status. Jobs are run by RQ's own ``SimpleWorker`` in the test process (burst mode), so
each test decides exactly when work happens; ``tests/test_e2e_backend.py`` runs real
``labelqueue worker`` processes."""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from rq import SimpleWorker

from backend.jobs.backends import job_backend
from backend.jobs.errors import JobQueueUnavailable
from backend.jobs.rq_jobs import QUEUE_JOBS, RQJobs
from backend.outcome import JobOutcome
from backend.settings import Settings
from backend.worker import use_runtime
from tests.helpers import label_studio_down
from tests.test_job_backends import RecordingRetrain


@pytest.fixture()
def jobs(redis_url, tmp_path) -> Iterator[RQJobs]:
    backend = job_backend(Settings(data_dir=tmp_path / "data", redis_url=redis_url))
    assert isinstance(backend, RQJobs)
    use_runtime(SimpleNamespace(jobs=backend))  # what `perform` looks up in a worker
    yield backend
    backend.close()


def work(jobs: RQJobs) -> None:
    """Run every queued job, as one RQ worker would, then return."""
    SimpleWorker([jobs.queues[QUEUE_JOBS]], connection=jobs.redis).work(burst=True)


def test_one_run_per_project_at_a_time_across_workers(jobs):
    gate = threading.Event()
    retrain = RecordingRetrain(gate)
    scheduler = jobs.scheduler("retrain", retrain)
    scheduler.request(1)
    scheduler.request(2)
    # Three workers take a job each: two for project 1 (as when a lost run was re-enqueued while
    # its old job still lived), one for project 2.
    workers = [threading.Thread(target=scheduler.perform, args=(pid,)) for pid in (1, 1, 2)]
    for worker in workers:
        worker.start()
    deadline = time.monotonic() + 10
    while retrain.running < 2 and time.monotonic() < deadline:  # both projects' runs under way
        time.sleep(0.01)
    gate.set()
    for worker in workers:
        worker.join(20)
    assert retrain.max_running == 2  # projects 1 and 2 side by side ...
    assert retrain.calls == 2  # ... and project 1's second job waited, then found its work done


def test_a_run_whose_worker_died_is_run_again(jobs):
    retrain = RecordingRetrain()
    scheduler = jobs.scheduler("retrain", retrain)
    scheduler.request(1, force=True)
    jobs.queues[QUEUE_JOBS].empty()
    # a worker took the job, marked it running, then died: no lease is held any more
    scheduler._start(keys=["labelqueue:job:retrain:1"], args=[time.time(), "dead-worker", "job-1"])
    assert scheduler.snapshot()[1]["state"] == "running"
    assert jobs.sweep() == 1
    work(jobs)
    state = scheduler.snapshot()[1]
    assert retrain.forced == [True]  # run again, with the force flag it had
    assert (state["state"], state["recovered"], state["runs"]) == ("idle", 1, 1)


def test_a_live_run_is_left_alone_by_the_sweep(jobs):
    started, release = threading.Event(), threading.Event()

    def slow(project_id, force):
        started.set()
        release.wait(10)
        return JobOutcome(project_id, True, "test", version="v1")

    scheduler = jobs.scheduler("retrain", slow)
    scheduler.request(1)
    runner = threading.Thread(target=scheduler.perform, args=(1,))  # what the worker's job calls
    runner.start()
    assert started.wait(10)
    assert jobs.sweep() == 0 and scheduler.snapshot()[1]["state"] == "running"
    release.set()
    runner.join(10)
    assert scheduler.snapshot()[1]["state"] == "idle"


def test_label_studio_outage_backs_off_on_rq_scheduler_and_reports_degraded(jobs):
    def down(project_id, force):
        label_studio_down("connection refused")

    scheduler = jobs.scheduler("retrain", down)
    scheduler.request(1, force=True)
    work(jobs)
    state = scheduler.snapshot()[1]
    assert (state["state"], state["attempts"], state["retry_in"]) == ("backoff", 1, 2.0)
    assert "connection refused" in scheduler.degraded()[1]
    assert jobs.queues[QUEUE_JOBS].scheduled_job_registry.count == 1  # RQ's scheduler starts it later
    assert scheduler.request(1) == "coalesced"
    assert scheduler.redis.hget("labelqueue:job:retrain:1", "force") == b"1"  # the retry keeps force


def test_a_bug_shows_as_failed_with_timings_and_the_next_request_runs(jobs):
    def broken(project_id, force):
        raise RuntimeError("boom")

    scheduler = jobs.scheduler("retrain", broken)
    scheduler.request(1)
    work(jobs)
    state = scheduler.snapshot()[1]
    assert state["state"] == "failed" and "boom" in state["last_error"] and state["failures"] == 1
    assert state["queued_at"] <= state["started_at"] <= state["finished_at"]
    assert state["last_wait_seconds"] >= 0 and state["last_run_seconds"] >= 0 and state["worker"]
    assert jobs.queues[QUEUE_JOBS].failed_job_registry.count == 1  # visible to RQ's tools too
    assert scheduler.request(1) == "scheduled"


def test_after_callbacks_run_on_the_worker_and_enqueue_the_next_job(jobs):
    selections = jobs.scheduler("select", RecordingRetrain())
    jobs.scheduler("retrain", RecordingRetrain(), after=[lambda o: selections.request(o.project_id)])
    jobs.schedulers["retrain"].request(4)
    work(jobs)
    assert selections.snapshot()[4]["runs"] == 1


def test_describe_lists_queues_and_workers_and_health_says_when_none_runs(jobs):
    described = jobs.describe()
    assert described["mode"] == "rq" and set(described["queues"]) >= {QUEUE_JOBS} and described["workers"] == []
    assert "no labelqueue worker" in jobs.problem()


def test_unreachable_redis_is_a_503_not_a_lost_retrain(tmp_path):
    from backend.local.label_studio_server import free_port
    from backend.web.app import create_app

    settings = Settings(data_dir=tmp_path / "data", redis_url=f"redis://127.0.0.1:{free_port()}/0",
                        label_studio_url="http://127.0.0.1:9", label_studio_api_key="x")
    client = create_app(settings).test_client()
    client.application.extensions["labelqueue"].store.create_project(5)  # as /setup does
    response = client.post("/webhook", json={"action": "ANNOTATION_CREATED", "project": {"id": 5}})
    assert response.status_code == 503 and "Redis" in response.get_json()["error"]
    health = client.get("/health")
    assert health.status_code == 200 and health.get_json()["degraded"] == "job_queue_unavailable"
    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and "Redis unreachable" in metrics.get_json()["degraded"]["detail"]
    assert (tmp_path / "data" / "projects" / "5" / "retrain.pending").exists()
    with pytest.raises(JobQueueUnavailable):
        client.application.extensions["labelqueue"].selections.request(5)


def test_workers_request_retrains_whose_marker_has_no_job(redis_url, tmp_path):
    """A webhook refused with 503 while Redis was down left only its marker on disk."""
    from backend.runtime import Runtime

    runtime = Runtime.build(Settings(data_dir=tmp_path / "data", redis_url=redis_url))
    runtime.store.create_project(9)
    runtime.store.layout.retrain_pending(9).write_text('{"force": true}')
    runtime.store.create_project(10)  # a project with nothing pending
    assert runtime.resume_interrupted(idle_only=True) == [9]
    assert runtime.retrains.snapshot()[9]["state"] == "queued"
    assert runtime.resume_interrupted(idle_only=True) == []  # already queued: not requested again
    runtime.jobs.redis.hset("labelqueue:job:retrain:9", "state", "failed")  # the retrain raised a bug
    assert runtime.resume_interrupted(idle_only=True) == []  # not rerun every sweep


def test_a_job_whose_worker_died_before_the_run_began_is_queued_again(jobs):
    from datetime import datetime, timedelta, timezone

    from rq.job import JobStatus

    retrain = RecordingRetrain()
    scheduler = jobs.scheduler("retrain", retrain)
    scheduler.request(1)
    queue = jobs.queues[QUEUE_JOBS]
    [job] = queue.jobs
    queue.remove(job)  # a worker dequeued it, started it, and died before taking the lease
    job.set_status(JobStatus.STARTED)
    job.heartbeat(datetime.now(timezone.utc) - timedelta(minutes=5), ttl=600)
    assert jobs.sweep() == 0  # too recent to judge: a request may be between its two steps
    jobs.redis.hset("labelqueue:job:retrain:1", "queued_at", time.time() - 60)
    assert jobs.sweep() == 1
    work(jobs)
    assert retrain.calls == 1 and scheduler.snapshot()[1]["state"] == "idle"
