"""Background jobs per project (retrain, select, pool sync): coalesced, one at a time, never
in a request.

Label Studio sends one webhook per annotation (and several for a bulk action). Each is a
*request* for a job; requests that arrive while the project's job is queued or running collapse
into one follow-up run, so a flood of events costs at most one extra run. Within one process
the per-project state machine guarantees one run at a time; across gunicorn workers the
``run`` callable takes the project's file lock (see ``backend/runtime.py``).
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from enum import Enum

from backend.jobs import job_metrics
from backend.jobs.errors import RETRYABLE_FAILURES, describe_failure
from backend.outcome import JobOutcome

logger = logging.getLogger(__name__)


class JobState(str, Enum):
    """Where a (job, project) pair stands; the same five states in both job backends.

    A ``str`` enum, so ``/metrics`` serialises it as its value and the RQ backend's Lua scripts
    (``backend/jobs/rq_state.py``) store the same strings."""

    IDLE = "idle"
    QUEUED = "queued"
    RUNNING = "running"
    BACKOFF = "backoff"  # the last run met a retryable failure (Label Studio); a retry is scheduled
    FAILED = "failed"  # the last run raised a bug; the next request runs again

    def __str__(self) -> str:
        return self.value


#: States in which nothing is queued or running (``wait_idle``): backing off waits on a timer.
SETTLED = (JobState.IDLE, JobState.BACKOFF, JobState.FAILED)

#: Seconds to wait before retrying a job that failed because Label Studio was unreachable or
#: refused; the last delay repeats, so work resumes at most 5 minutes after it comes back.
RETRY_DELAYS = (2.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0)

def retry_delay(delays: tuple[float, ...], attempt: int) -> float:
    """Seconds before retry number ``attempt`` (1-based); the last delay repeats."""
    return delays[min(attempt, len(delays)) - 1]


RunJob = Callable[[int, bool], JobOutcome]
AfterJob = Callable[[JobOutcome], None]


@dataclass
class ProjectJob:
    """Per-project scheduler state, reported as-is in ``/metrics``."""

    state: JobState = JobState.IDLE
    attempts: int = 0
    retry_in: float | None = None
    requests: int = 0
    runs: int = 0
    coalesced: int = 0
    pending: bool = False
    pending_force: bool = False
    last_outcome: dict | None = None
    last_error: str | None = None
    last_started: float | None = None
    last_finished: float | None = None
    versions: list[str] = field(default_factory=list)


def announce(name: str, outcome: JobOutcome, after: list[AfterJob]) -> None:
    """Log a job's outcome and, when it produced something, run the steps that follow it
    (a failing step is logged, never raised: the job itself succeeded)."""
    logger.info("project %s: %s %s (%s)", outcome.project_id, name, "done" if outcome.done else "skipped",
                outcome.reason)
    if outcome.done:
        for callback in after:
            try:
                callback(outcome)
            except Exception:
                logger.exception("project %s: step after %s failed", outcome.project_id, name)


class CoalescingScheduler:
    """Accepts job requests instantly and runs them on a small thread pool.

    ``run(project_id, force)`` does the work; ``after`` callbacks get every outcome whose
    ``done`` is true (e.g. a retrain that produced a model schedules a selection).
    """

    def __init__(self, name: str, run: RunJob, *, threads: int = 2, after: list[AfterJob] | None = None,
                 retry_delays: tuple[float, ...] = RETRY_DELAYS):
        self.name = name
        self._retry_delays = retry_delays
        self._run_job = run
        self._after = list(after or [])
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=f"labelqueue-{name}")
        self._states: dict[int, ProjectJob] = {}
        self._lock = threading.Lock()
        self._timers: dict[int, threading.Timer] = {}
        self._later: dict[int, threading.Timer] = {}
        self._closed = False

    def request(self, project_id: int, *, force: bool = False) -> str:
        """Schedule a run; returns ``"scheduled"`` or ``"coalesced"`` (one is already pending)."""
        with self._lock:
            state = self._states.setdefault(project_id, ProjectJob())
            state.requests += 1
            if state.state not in (JobState.IDLE, JobState.FAILED):
                state.coalesced += 1
                state.pending = True
                state.pending_force = state.pending_force or force
                job_metrics.record_coalesced(self.name, project_id)
                return "coalesced"
            self._set_state(project_id, state, JobState.QUEUED)
        self._executor.submit(self._work, project_id, force)
        return "scheduled"

    def request_later(self, project_id: int, delay: float) -> None:
        """A plain request in ``delay`` seconds; replaces this project's earlier one not yet fired."""
        timer = threading.Timer(max(0.0, delay), self._request_now, (project_id,))
        timer.daemon = True
        with self._lock:
            if self._closed:
                return
            earlier = self._later.pop(project_id, None)
            self._later[project_id] = timer
        if earlier is not None:
            earlier.cancel()
        timer.start()

    def _request_now(self, project_id: int) -> None:
        with self._lock:
            if self._closed:
                return
        try:
            self.request(project_id)
        except RuntimeError:  # the executor shut down meanwhile
            logger.debug("project %s: delayed %s request dropped at shutdown", project_id, self.name)

    def _work(self, project_id: int, force: bool) -> None:
        again = True
        while again and not self._closed:
            result = self._run_once(project_id, force)
            with self._lock:
                state = self._states[project_id]
                if result is JobState.BACKOFF:
                    self._back_off(project_id, state, force)
                    return
                state.attempts, state.retry_in = 0, None
                again, force = state.pending, state.pending_force
                state.pending = state.pending_force = False
                self._set_state(project_id, state, JobState.QUEUED if again else result)

    def _set_state(self, project_id: int, state: ProjectJob, name: JobState) -> None:
        """Called with the lock held: the state ``/metrics`` shows, mirrored for Prometheus."""
        state.state = name
        job_metrics.record_state(self.name, project_id, name)

    def _back_off(self, project_id: int, state: ProjectJob, force: bool) -> None:
        """Called with the lock held: retry later; requests meanwhile fold into that retry."""
        state.attempts += 1
        delay = retry_delay(self._retry_delays, state.attempts)
        self._set_state(project_id, state, JobState.BACKOFF)
        state.retry_in = delay
        state.pending, state.pending_force = True, state.pending_force or force
        timer = threading.Timer(delay, self._wake, (project_id,))
        timer.daemon = True
        self._timers[project_id] = timer
        timer.start()

    def _wake(self, project_id: int) -> None:
        with self._lock:
            state = self._states[project_id]
            if state.state != JobState.BACKOFF or self._closed:
                return
            force = state.pending_force
            self._set_state(project_id, state, JobState.QUEUED)
            state.pending, state.pending_force = False, False
        try:
            self._executor.submit(self._work, project_id, force)
        except RuntimeError:  # the process is shutting down; a pending-retrain marker survives it
            logger.debug("project %s: %s retry dropped at shutdown", project_id, self.name)

    def degraded(self) -> dict[int, str]:
        """Projects whose last run failed because of Label Studio, with the reason."""
        with self._lock:
            return {pid: s.last_error or "" for pid, s in self._states.items() if s.state == JobState.BACKOFF}

    def _run_once(self, project_id: int, force: bool) -> JobState:
        """Run the job once: ``IDLE`` when it ran, ``BACKOFF`` when it failed for a reason
        worth retrying (Label Studio), ``FAILED`` when it raised anything else."""
        with self._lock:
            state = self._states[project_id]
            self._set_state(project_id, state, JobState.RUNNING)
            state.last_started = time.time()
        started = time.monotonic()
        try:
            outcome = self._run_job(project_id, force)
        except Exception as exc:  # a failed job must not kill the worker thread
            job_metrics.record_run(self.name, project_id, time.monotonic() - started, ok=False)
            expected = isinstance(exc, RETRYABLE_FAILURES)
            if expected:
                logger.error("project %s: %s failed, will retry: %s", project_id, self.name,
                             describe_failure(exc))
            else:
                logger.exception("project %s: %s failed", project_id, self.name)
            with self._lock:
                state.last_error, state.last_finished = describe_failure(exc), time.time()
            return JobState.BACKOFF if expected else JobState.FAILED
        job_metrics.record_run(self.name, project_id, time.monotonic() - started, ok=True)
        with self._lock:
            state.runs += 1
            state.last_outcome, state.last_error, state.last_finished = outcome.to_json(), None, time.time()
            if outcome.version:
                state.versions = (state.versions + [outcome.version])[-20:]
        announce(self.name, outcome, self._after)
        return JobState.IDLE

    def snapshot(self) -> dict[int, dict]:
        with self._lock:
            return {pid: asdict(state) for pid, state in self._states.items()}

    def wait_idle(self, timeout: float) -> bool:
        """For the CLI and tests: block until no project is queued or running (backoff waits)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if all(s.state in SETTLED for s in self._states.values()):
                    return True
            time.sleep(0.05)
        return False

    def close(self) -> None:
        """Stop: cancel retry timers and queued runs, no follow-ups, and wait for the runs in
        progress, so no thread outlives the scheduler (a test, a stopping process). A retrain
        dropped here is not lost: its pending marker makes the next start run it."""
        with self._lock:
            self._closed = True
            timers = [*self._timers.values(), *self._later.values()]
        for timer in timers:
            timer.cancel()
        self._executor.shutdown(wait=True, cancel_futures=True)
