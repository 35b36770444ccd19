"""Background jobs on Redis Queue (RQ): the scale-out mode, on when ``LABELQUEUE_REDIS_URL`` is set.

Label Studio itself runs its background work on RQ, so admins already operate it. Here the web
process only *enqueues*; ``labelqueue worker`` processes (``backend/worker.py``, a wrapped
``rq worker``) on any number of machines run the jobs: retrain, select (which fans pool scoring
out in chunks, ``backend/jobs/pool_scoring.py``), pool sync and measure.

What RQ does not give us, and this module adds on top of it, is the per-project behaviour of the
in-process ``CoalescingScheduler``:

* **coalescing**: each (job, project) has a state hash in Redis, changed only by Lua scripts
  (atomic): a request while a run is queued folds into it, one while it runs sets ``pending``
  and the run enqueues exactly one follow-up when it ends. 1,000 webhooks cost two runs.
* **one run at a time across all workers**: a run holds a *lease*, a Redis lock with a 15 s
  expiry renewed by a thread while the worker lives (``backend/jobs/redis_locks.py``).
* **a run that dies with its worker is run again**: a dead worker stops renewing its lease; the
  sweep that every ``labelqueue worker`` runs every few seconds finds a state ``running``
  whose lease has lapsed (or ``queued`` whose RQ job failed or vanished) and enqueues it again.
  RQ's own abandoned-job detection would need the job's heartbeat to lapse by 60 s and a
  maintenance pass; the lease is faster and does not depend on RQ internals.
* **backoff** while Label Studio is down: the retry is an RQ scheduled job (``enqueue_in``).
* **status for /metrics**: the state hash records counts, last outcome and error, and timings
  (queued at, started at, finished at, wait and run seconds, worker name).
"""
from __future__ import annotations

import json
import logging
import socket
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Worker, get_current_job
from rq.job import Job

from backend.jobs.errors import JobQueueUnavailable, describe_failure
from backend.jobs.redis_locks import RedisLocks
from backend.jobs.rq_state import BACKOFF, FINISH, LOST_QUEUED_AFTER, RECOVER, REQUEST, START, decode_state, job_lost
from backend.jobs.run_times import RunTimes
from backend.jobs.scheduler import (
    RETRY_DELAYS,
    RETRYABLE_FAILURES,
    SETTLED,
    AfterJob,
    JobState,
    RunJob,
    announce,
    retry_delay,
)
from backend.settings import Settings

if TYPE_CHECKING:
    from backend.jobs.pool_scoring import ChunkedScorer
    from backend.store import ModelStore

logger = logging.getLogger(__name__)

#: RQ queues. Workers listen on them in this order, so the chunks of a selection in progress
#: are scored before new retrains start. Measure jobs write the SQLite cycles database, so they
#: have their own queue that admins can confine to the machine holding the data dir.
QUEUE_SCORE = "labelqueue-score"
QUEUE_JOBS = "labelqueue"
QUEUE_MEASURE = "labelqueue-measure"
QUEUES = (QUEUE_SCORE, QUEUE_JOBS, QUEUE_MEASURE)


#: The RQ job functions, by import path: they live in the worker process's root module, which
#: owns that process's runtime, so this layer never imports what it runs.
PERFORM = "backend.worker.perform"
REQUEST_LATER = "backend.worker.request"


class RQScheduler:
    """A ``JobScheduler`` whose runs are RQ jobs on whichever worker takes them."""

    def __init__(self, name: str, run: RunJob, *, redis: Redis, queue: Queue, locks: RedisLocks,
                 timeout: int, after: list[AfterJob] | None = None,
                 retry_delays: tuple[float, ...] = RETRY_DELAYS):
        self.name = name
        self._run = run
        self._after = list(after or [])
        self.redis = redis
        self.queue = queue
        self.locks = locks
        self.timeout = timeout
        self.retry_delays = retry_delays
        self._index = f"labelqueue:jobs:{name}"
        self.run_times = RunTimes(redis)
        self._request, self._start, self._finish, self._backoff, self._recover = (
            redis.register_script(s) for s in (REQUEST, START, FINISH, BACKOFF, RECOVER))

    def _key(self, project_id: int) -> str:
        return f"labelqueue:job:{self.name}:{int(project_id)}"

    @property
    def _lease(self) -> str:
        """The lock name of a running job: held, and renewed, for as long as the run lives."""
        return f"run-{self.name}"

    def request(self, project_id: int, *, force: bool = False) -> str:
        try:
            answer = self._request(keys=[self._key(project_id), self._index],
                                   args=[time.time(), int(project_id), int(force)]).decode()
            if answer == "scheduled":
                self._enqueue(project_id)
            return answer
        except RedisError as exc:
            raise JobQueueUnavailable(f"cannot reach Redis to queue the {self.name} job: {exc}") from None

    def request_later(self, project_id: int, delay: float) -> None:
        """An RQ scheduled job that makes the plain request when due (RQ's scheduler, which
        every ``labelqueue worker`` runs, enqueues it); earlier ones still waiting stay, since a
        request too many only costs a run that finds nothing to do."""
        try:
            self.queue.enqueue_in(timedelta(seconds=max(0.0, delay)), REQUEST_LATER, self.name, int(project_id),
                                  result_ttl=600, failure_ttl=86400,
                                  description=f"labelqueue {self.name} request for project {project_id}")
        except RedisError as exc:
            raise JobQueueUnavailable(f"cannot reach Redis to schedule the {self.name} job: {exc}") from None

    def _enqueue(self, project_id: int, delay: float | None = None) -> Job:
        options = {"job_timeout": self.timeout, "result_ttl": 3600, "failure_ttl": 7 * 86400,
                   "description": f"labelqueue {self.name} project {project_id}"}
        if delay:
            job = self.queue.enqueue_in(timedelta(seconds=delay), PERFORM, self.name, int(project_id), **options)
        else:
            job = self.queue.enqueue(PERFORM, self.name, int(project_id), **options)
        self.redis.hset(self._key(project_id), "job_id", job.id)
        return job

    def perform(self, project_id: int) -> dict[str, Any] | None:
        """Run once under the project's lease; called by ``backend.worker.perform`` on a worker."""
        job = get_current_job()
        key = self._key(project_id)
        with self.locks.hold(project_id, self._lease):
            worker = (job.worker_name or "") if job else "-"
            force = self._start(keys=[key], args=[time.time(), f"{socket.gethostname()}:{worker}",
                                                  job.id if job else ""])
            if force is None:
                logger.info("project %s: %s job %s has nothing left to do", project_id, self.name,
                            job.id if job else "-")
                return None
            force = force.decode() == "1"
            started = time.monotonic()
            try:
                outcome = self._run(project_id, force)
            except RETRYABLE_FAILURES as exc:
                self._schedule_retry(project_id, force, exc)
                self.run_times.observe(self.name, time.monotonic() - started)
                return None
            except Exception as exc:
                logger.exception("project %s: %s failed", project_id, self.name)
                self._end(project_id, False, describe_failure(exc), started)
                raise
            self._end(project_id, True, json.dumps(outcome.to_json(), default=str), started)
        announce(self.name, outcome, self._after)
        return outcome.to_json()

    def _end(self, project_id: int, ok: bool, detail: str, started: float) -> None:
        seconds = round(time.monotonic() - started, 3)
        again = self._finish(keys=[self._key(project_id)], args=[time.time(), int(ok), detail, seconds])
        self.run_times.observe(self.name, seconds)
        if again == b"again":
            self._enqueue(project_id)

    def _schedule_retry(self, project_id: int, force: bool, exc: Exception) -> None:
        error = describe_failure(exc)
        attempts = int(self._backoff(keys=[self._key(project_id)], args=[time.time(), error, int(force)]))
        delay = retry_delay(self.retry_delays, attempts)
        self.redis.hset(self._key(project_id), "retry_in", delay)
        self._enqueue(project_id, delay=delay)
        logger.error("project %s: %s failed, retry %d in %.0fs: %s", project_id, self.name, attempts, delay, error)

    def recover(self) -> list[int]:
        """The sweep: enqueue again every run that died with its worker or whose job was lost."""
        recovered = []
        for project_id in self._projects():
            key = self._key(project_id)
            if self._recover(keys=[key, self.locks.key(project_id, self._lease)], args=[time.time()]):
                self._enqueue(project_id)
                recovered.append(project_id)
                logger.warning("project %s: %s run died with its worker; queued again", project_id, self.name)
            elif self._job_lost(key):
                self._enqueue(project_id)
                recovered.append(project_id)
                logger.warning("project %s: %s job was lost by RQ; queued again", project_id, self.name)
        return recovered

    def _job_lost(self, key: str) -> bool:
        """A queued state whose RQ job failed, vanished, or was taken by a worker that died
        before the run began (started, but no heartbeat for ``STALE_AFTER`` s)."""
        state, job_id, queued_at = (v.decode() if v else "" for v in self.redis.hmget(key, "state", "job_id", "queued_at"))
        if state not in (JobState.QUEUED, JobState.BACKOFF) or time.time() - float(queued_at or 0) < LOST_QUEUED_AFTER:
            return False
        return job_lost(self.redis, job_id)

    def _projects(self) -> list[int]:
        return sorted(int(p) for p in self.redis.smembers(self._index))

    def degraded(self) -> dict[int, str]:
        return {pid: s.get("last_error") or "" for pid, s in self.snapshot().items() if s["state"] == JobState.BACKOFF}

    def snapshot(self) -> dict[int, dict[str, Any]]:
        """Empty while Redis is unreachable (``/health`` says so; ``/metrics`` must still answer)."""
        try:
            pids = self._projects()
            with self.redis.pipeline() as pipe:
                for pid in pids:
                    pipe.hgetall(self._key(pid))
                raw = pipe.execute()
        except RedisError as exc:
            logger.error("%s job states unavailable: %s", self.name, exc)
            return {}
        return {pid: decode_state(fields) for pid, fields in zip(pids, raw)}

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(s["state"] in SETTLED for s in self.snapshot().values()):
                return True
            time.sleep(0.1)
        return False

    def close(self) -> None:
        """Nothing runs in this process (workers run the jobs); present for the contract."""


class RQJobs:
    """The RQ ``JobBackend``: one Redis connection, the queues, and this process's schedulers."""

    mode = "rq"

    def __init__(self, settings: Settings):
        self.settings = settings
        self.redis = Redis.from_url(settings.redis_url, health_check_interval=30)
        self._locks = RedisLocks(self.redis, wait=settings.job_timeout)
        self.queues = {name: Queue(name, connection=self.redis) for name in QUEUES}
        self.schedulers: dict[str, RQScheduler] = {}

    def locks(self, data_dir) -> RedisLocks:
        return self._locks

    def scheduler(self, name: str, run: RunJob, *, threads: int = 1, after: list[AfterJob] | None = None,
                  retry_delays: tuple[float, ...] = RETRY_DELAYS) -> RQScheduler:
        queue = self.queues[QUEUE_MEASURE if name == "measure" else QUEUE_JOBS]
        scheduler = RQScheduler(name, run, redis=self.redis, queue=queue, locks=self._locks,
                                timeout=self.settings.job_timeout, after=after, retry_delays=retry_delays)
        self.schedulers[name] = scheduler
        return scheduler

    def scorer(self, store: ModelStore) -> ChunkedScorer:
        from backend.jobs.pool_scoring import ChunkedScorer

        return ChunkedScorer(store, self.queues[QUEUE_SCORE], chunk_size=self.settings.score_chunk_size)

    def sweep(self) -> int:
        """Re-enqueue lost runs of every scheduler; returns how many."""
        return sum(len(s.recover()) for s in self.schedulers.values())

    def close(self) -> None:
        """Release this process's Redis connections."""
        self.redis.close()

    def problem(self) -> str | None:
        """Redis down, or no worker to run the jobs: ``/health`` reports it as ``degraded``."""
        try:
            if Worker.count(connection=self.redis) == 0:
                return "no labelqueue worker is connected to Redis: jobs wait in the queue (start `labelqueue worker`)"
        except RedisError as exc:
            return f"Redis unreachable ({exc}): retrains and selections cannot be queued"
        return None

    def describe(self) -> dict[str, Any]:
        """Queues and workers as RQ sees them, for ``/metrics``; never raises."""
        try:
            workers = Worker.all(connection=self.redis)
            return {
                "mode": self.mode,
                "queues": {name: queue.count for name, queue in self.queues.items()},
                "workers": [{"name": w.name, "hostname": w.hostname, "pid": w.pid, "state": w.get_state(),
                             "current_job": w.get_current_job_id(), "queues": w.queue_names(),
                             "successful_jobs": w.successful_job_count, "failed_jobs": w.failed_job_count}
                            for w in workers],
                "run_seconds": {name: s.run_times.read(name) for name, s in sorted(self.schedulers.items())},
            }
        except RedisError as exc:
            return {"mode": self.mode, "error": f"Redis unreachable: {exc}"}
