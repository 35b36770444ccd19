"""Where background work runs: threads of this process (the default) or Redis Queue workers.

Every background job of the backend (retrain, select, pool sync, measure) is a plain function
of ``(project_id, force)`` handed to a :class:`JobScheduler`, and pool scoring goes through a
:class:`PoolScorer`. Two implementations of each exist:

* **in-process** (no ``LABELQUEUE_REDIS_URL``): ``CoalescingScheduler`` threads, per-project
  ``flock`` locks, scoring in the calling thread. Zero setup; one machine.
* **RQ** (``LABELQUEUE_REDIS_URL`` set, ``backend/jobs/rq_jobs.py``): jobs are enqueued on Redis Queue
  and run by ``labelqueue worker`` processes on any number of machines, with Redis locks, and
  pool scoring split into chunks that several workers score in parallel.

The web process never runs a job in a request in either mode: a request only *asks* for one.
"""
from __future__ import annotations

from typing import Any, Protocol

from backend.jobs.scheduler import RETRY_DELAYS, AfterJob, CoalescingScheduler, RunJob
from backend.model.scoring import LocalScorer, PoolScorer
from backend.model_key import model_key
from backend.settings import Settings
from backend.store import FileLocks, ModelStore, ProjectLocks


class JobScheduler(Protocol):
    """Accepts job requests instantly; runs at most one job per project at a time."""

    name: str

    def request(self, project_id: int, *, force: bool = False) -> str:
        """``"scheduled"``, or ``"coalesced"`` when a run is already queued or running."""

    def request_later(self, project_id: int, delay: float) -> None:
        """Make a plain :meth:`request` in ``delay`` seconds (nothing is queued meanwhile, so
        requests in between run at once). A later call for the same project may replace an
        earlier one that has not fired yet."""

    def degraded(self) -> dict[int, str]:
        """Projects whose job is backing off after a Label Studio failure, with the reason."""

    def snapshot(self) -> dict[int, dict[str, Any]]:
        """Per-project state for ``/metrics``: state, counts, last outcome and error, timings."""

    def wait_idle(self, timeout: float) -> bool:
        """For the CLI and tests: block until nothing is queued or running."""

    def close(self) -> None:
        """Stop this process's part: no thread or timer of the scheduler outlives it."""


class JobBackend(Protocol):
    """Builds the schedulers, locks and scorer of one deployment mode."""

    mode: str

    def locks(self, data_dir) -> ProjectLocks: ...

    def scheduler(self, name: str, run: RunJob, *, threads: int = 1, after: list[AfterJob] | None = None,
                  retry_delays: tuple[float, ...] = RETRY_DELAYS) -> JobScheduler: ...

    def scorer(self, store: ModelStore) -> PoolScorer: ...

    def describe(self) -> dict[str, Any]: ...

    def close(self) -> None:
        """Release what the backend holds in this process (connections)."""

    def problem(self) -> str | None:
        """Why jobs cannot run at all right now (for ``/health``); cheap, called often."""


class InProcessJobs:
    """The zero-setup mode: background threads in every backend process."""

    mode = "in-process"

    def locks(self, data_dir) -> ProjectLocks:
        return FileLocks(data_dir)

    def scheduler(self, name: str, run: RunJob, *, threads: int = 1, after: list[AfterJob] | None = None,
                  retry_delays: tuple[float, ...] = RETRY_DELAYS) -> JobScheduler:
        return CoalescingScheduler(name, run, threads=threads, after=after, retry_delays=retry_delays)

    def scorer(self, store: ModelStore) -> PoolScorer:
        return LocalScorer()

    def describe(self) -> dict[str, Any]:
        return {"mode": self.mode}

    def close(self) -> None:
        """Nothing to release: the schedulers close their own threads."""

    def problem(self) -> str | None:
        return None


def job_backend(settings: Settings) -> JobBackend:
    """The one switch between the deployments: ``LABELQUEUE_REDIS_URL`` set or not."""
    if settings.redis_url:
        from backend.jobs.rq_jobs import RQJobs

        return RQJobs(settings)
    return InProcessJobs()


def open_store(settings: Settings, jobs: JobBackend | None = None) -> ModelStore:
    """The data dir with the locks of the configured mode (CLI commands use this too, so their
    writes exclude the workers' in either mode)."""
    jobs = jobs or job_backend(settings)
    return ModelStore(settings.data_dir, keep_versions=settings.keep_model_versions,
                      locks=jobs.locks(settings.data_dir), key=model_key(settings),
                      max_projects=settings.max_projects)
