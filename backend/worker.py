"""``labelqueue worker``: RQ's worker on labelqueue's queues, plus the sweep that re-runs lost jobs.

It is ``rq worker`` with labelqueue's settings: the same ``Settings`` as the server (the shared
data dir, Label Studio's address, ``LABELQUEUE_REDIS_URL``), the Runtime built before RQ forks a
work horse per job (so each horse starts with scikit-learn imported), job heartbeats every
``HEARTBEAT_SECONDS`` (so a lost scoring chunk is noticed within ``CHUNK_STALE_AFTER``), RQ's
scheduler on (it starts the delayed retries of jobs backing off), and one extra thread: every
``SWEEP_SECONDS`` it re-enqueues runs that died with their worker (``RQJobs.sweep``) and
requests retrains whose pending marker has no job. Start as
many as you like, on any machine that sees the data dir and Redis.
"""
from __future__ import annotations

import logging
import threading
from typing import Any

from redis.exceptions import RedisError
from rq import Worker

from backend.jobs import pool_scoring
from backend.jobs.errors import JobQueueUnavailable
from backend.jobs.rq_jobs import QUEUE_JOBS, QUEUE_MEASURE, QUEUE_SCORE, RQJobs
from backend.runtime import Runtime
from backend.settings import Settings, SettingsError

logger = logging.getLogger(__name__)

#: ``--queues`` names -> RQ queue names. Listening order is priority order.
QUEUE_NAMES = {"score": QUEUE_SCORE, "jobs": QUEUE_JOBS, "measure": QUEUE_MEASURE}
HEARTBEAT_SECONDS = 5
SWEEP_SECONDS = 5.0
#: RQ forgets a worker that sends no heartbeat for this long; it also bounds the idle dequeue wait.
WORKER_TTL = 60


def run_worker(settings: Settings, *, queues: list[str], burst: bool = False, name: str | None = None,
               log_level: str = "INFO") -> int:
    """Work until stopped (SIGINT/SIGTERM: RQ's warm shutdown finishes the current job first)."""
    if not settings.redis_url:
        raise SettingsError("labelqueue worker needs LABELQUEUE_REDIS_URL (the Redis that `labelqueue serve` "
                            "enqueues jobs on); without it the server runs its jobs itself")
    runtime = Runtime.build(settings)
    jobs = runtime.jobs
    assert isinstance(jobs, RQJobs)
    use_runtime(runtime)
    stop = threading.Event()
    sweeper = threading.Thread(target=sweep_until, args=(runtime, stop), daemon=True, name="labelqueue-sweep")
    sweeper.start()
    worker = Worker([jobs.queues[QUEUE_NAMES[q]] for q in queues], connection=jobs.redis, name=name,
                    job_monitoring_interval=HEARTBEAT_SECONDS, worker_ttl=WORKER_TTL, maintenance_interval=60)
    logger.info("worker %s on %s; data dir %s", worker.name, ", ".join(worker.queue_names()), settings.data_dir)
    try:
        worker.work(burst=burst, with_scheduler=True, logging_level=log_level)
    finally:
        stop.set()
    return 0


def sweep_until(runtime: Runtime, stop: threading.Event) -> None:
    """Every ``SWEEP_SECONDS`` (the first pass at start-up): re-enqueue runs lost with their
    worker, and request retrains whose on-disk pending marker has no job (one requested while
    Redis was down, whose webhook got a 503)."""
    while True:
        try:
            recovered = runtime.jobs.sweep()
            if recovered:
                logger.warning("re-enqueued %d job(s) lost with their worker", recovered)
            runtime.resume_interrupted(idle_only=True)
        except (RedisError, JobQueueUnavailable) as exc:
            logger.error("sweep skipped, Redis unreachable: %s", exc)
        if stop.wait(SWEEP_SECONDS):
            return


#: Documented cache: this worker process's Runtime. The job layer enqueues the functions
#: below by import path and never imports the runtime it runs in; this module, the worker
#: process's root, owns it. ``labelqueue worker`` builds it before RQ forks a work horse per job
#: (so each horse starts with scikit-learn imported); a plain ``rq worker`` builds it on the
#: first job, from the environment.
_runtime: Any = None


def use_runtime(runtime: Any) -> None:
    """Set (or, with ``None``, forget) this process's runtime; tests pass a stand-in."""
    global _runtime
    _runtime = runtime


def _current() -> Runtime:
    if _runtime is None:
        use_runtime(Runtime.build(Settings.from_env()))
    return _runtime


def perform(name: str, project_id: int) -> dict[str, Any] | None:
    """The RQ job: run one scheduler's job for one project in this worker."""
    return _current().jobs.schedulers[name].perform(project_id)


def request(name: str, project_id: int) -> str:
    """The RQ job behind ``request_later``: request one scheduler's job for one project now."""
    return _current().jobs.schedulers[name].request(project_id)


def score_chunk(project_id: int, manifest: dict, run: str, index: int) -> dict:
    """The RQ job: score one chunk of a selection's pool (``backend/jobs/pool_scoring.py``)."""
    return pool_scoring.score_chunk(_current().store, project_id, manifest, run, index)
