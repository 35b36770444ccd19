"""The long-lived objects one backend process needs, built once by ``create_app`` (and once by
each ``labelqueue worker``).

Kept in ``app.extensions`` instead of module globals so tests can run several apps with
different data dirs side by side. Three schedulers run the background work: ``retrains``
(annotation webhooks), ``selections`` (after each new model, and on demand) and ``pool_syncs``
(``TASKS_CREATED`` / ``TASKS_DELETED``); the loop monitor has a fourth (``measure``). Whether
they run on this process's threads or on RQ workers is the job backend's business
(``backend/jobs/backends.py``): the code here is the same in both modes.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from backend.jobs.backends import JobBackend, job_backend, open_store
from backend.jobs.errors import JobQueueUnavailable
from backend.jobs.scheduler import JobState
from backend.labelstudio.gateway import Connections
from backend.layout import NOT_CONNECTED, StateFileError, read_state
from backend.loop.cycle import CycleContext, read_queue, run_cycle
from backend.loop.failures import FailureLog
from backend.loop.pool_cache import PoolCache
from backend.loop.project_options import ProjectOptionsStore
from backend.loop.training import read_labelled, retrain
from backend.measure.cycles_db import CyclesDBError
from backend.measure.loop_monitor import LoopMonitor
from backend.outcome import JobOutcome
from backend.settings import Settings
from backend.store import ModelCache, atomic_write_json

logger = logging.getLogger(__name__)

@dataclass(frozen=True)
class Degraded:
    """Background work is failing: a short reason code and the summarised errors behind it."""

    reason: str  # job_queue_unavailable | label_studio_unreachable
    detail: str


class Runtime:
    """The process's collaborators, composed: the cycle's (``cycle``, a :class:`CycleContext`),
    the job backend with its schedulers, and the loop monitor.

    Jobs chain through one mechanism, the schedulers' ``after`` callbacks, which get every
    ``done`` :class:`JobOutcome`: a retrain that produced a model requests a selection (unless
    ``LABELQUEUE_SELECT_AFTER_RETRAIN`` is off), and a selection that wrote a queue requests a
    measurement. Recording the queue in SQLite is part of the cycle itself (its ``recorder``),
    not a chained job, so the record can never miss a cycle.
    """

    def __init__(self, settings: Settings, jobs: JobBackend):
        self.settings = settings
        self.jobs = jobs
        #: Wall-clock time (epoch s) of retrain requests and the trailing-labels quiet period;
        #: shared by every process of a deployment, so not ``time.monotonic``. Tests replace it.
        self.clock: Callable[[], float] = time.time
        self.store = open_store(settings, jobs)
        self.connections = Connections(settings, self.store)
        self.options = ProjectOptionsStore(settings, self.store)
        self.models = ModelCache(self.store)
        self.failures = FailureLog(self.store)
        self.loop = LoopMonitor(settings, self.store, self.connections, self.options, jobs)
        self.cycle = CycleContext(settings=settings, store=self.store, models=self.models,
                                  connections=self.connections,
                                  pool_cache=PoolCache(self.store, seed=settings.seed,
                                                       failure_field=settings.failure_field),
                                  failures=self.failures, options=self.options, scorer=jobs.scorer(self.store),
                                  recorder=self.loop)
        self.selections = jobs.scheduler("select", self.select, threads=settings.train_threads,
                                         after=[self.loop.after_cycle])
        after_retrain = [self.select_after] if settings.select_after_retrain else []
        self.retrains = jobs.scheduler("retrain", self.retrain_locked, threads=settings.train_threads,
                                       after=after_retrain)
        self.pool_syncs = jobs.scheduler("pool-sync", self.sync_pool, threads=1)

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        return cls(settings, job_backend(settings))

    def close(self) -> None:
        """Stop every scheduler of this process (waiting for runs in progress) and release the
        job backend: nothing of this runtime outlives it (tests build many)."""
        for scheduler in (self.retrains, self.selections, self.pool_syncs, self.loop.jobs):
            scheduler.close()
        self.jobs.close()

    def select_after(self, outcome: JobOutcome) -> None:
        """The step after a retrain that produced a model: compose a batch with it."""
        self.selections.request(outcome.project_id)

    def request_retrain(self, project_id: int, *, force: bool = False) -> str:
        """Schedule a retrain, first recording it on disk so a crash cannot lose it. Only for a
        project that exists (:class:`ProjectNotFound` otherwise): a forged webhook naming any id
        leaves no marker and no job behind. The marker carries the time of the request, which
        starts the quiet period for trailing labels again."""
        self.store.layout.require(project_id)
        marker = self.store.layout.retrain_pending(project_id)
        try:
            forced = force or bool((read_state(marker) or {}).get("force"))
        except StateFileError:  # torn or tampered: replaced by this request
            forced = force
        atomic_write_json(marker, {"force": forced, "requested_at": self.clock()})
        return self.retrains.request(project_id, force=force)

    def request_selection(self, project_id: int) -> str:
        """Compose a new batch now, for a project that exists."""
        self.store.layout.require(project_id)
        return self.selections.request(project_id, force=True)

    def request_pool_sync(self, project_id: int, *, reconcile: bool) -> str:
        self.store.layout.require(project_id)
        return self.pool_syncs.request(project_id, force=reconcile)

    def request_measure(self, project_id: int) -> str:
        self.store.layout.require(project_id)
        return self.loop.jobs.request(project_id)

    def resume_interrupted(self, *, idle_only: bool = False) -> list[int]:
        """Re-request retrains that were requested but never finished (crash, kill -9, a request
        refused while Redis was down). ``idle_only``: skip projects whose retrain is queued,
        running, backing off, or failed on a bug (the workers' periodic check must not rerun a
        failing retrain every few seconds; a restart or the next webhook tries it again)."""
        resumed = []
        busy = {pid for pid, s in self.retrains.snapshot().items() if s["state"] != JobState.IDLE} if idle_only else set()
        for project_id in sorted(self.known_projects() - busy):
            force = self._marked_force(project_id)
            if force is None:
                continue
            quiet_left = self._quiet_left(project_id)
            if quiet_left > 0:  # trailing labels, not due yet: at start-up, ask again when they are
                if not idle_only:
                    self.retrains.request_later(project_id, quiet_left)
                continue
            logger.info("project %s: resuming a retrain interrupted before it finished", project_id)
            try:
                self.retrains.request(project_id, force=force)
            except JobQueueUnavailable as exc:  # the marker stays; the next start tries again
                logger.error("project %s: cannot resume the retrain now: %s", project_id, exc)
                continue
            resumed.append(project_id)
        return resumed

    def _marked_force(self, project_id: int) -> bool | None:
        """Whether a retrain is owed, and if it is forced; None when none is owed.

        A request writes ``retrain.pending``; a retrain takes it up under the project's ``train``
        lock by renaming it to ``retrain.running`` and removes that when it has run, while a
        request arriving meanwhile writes a new ``retrain.pending``. So the markers, not each
        process's scheduler, say whether a retrain is still owed: a run that finds neither
        (another gunicorn worker already trained after the last request) does nothing, and
        "at most one follow-up retrain per project" holds across every worker of the server.
        """
        owed = None
        for path in (self.store.layout.retrain_running(project_id), self.store.layout.retrain_pending(project_id)):
            try:
                marker = read_state(path)
            except StateFileError:  # torn or tampered: still owed, not forced
                owed = bool(owed)
                continue
            if marker is not None:
                owed = bool(owed) | bool(marker.get("force"))
        return owed

    def _requested_at(self, project_id: int) -> float:
        """When the newest retrain still owed was requested (epoch s; for the check a retrain
        leaves, when it read Label Studio); 0 for a marker without the time (written by an older
        version), whose quiet period is then long over."""
        times = [0.0]
        for path in (self.store.layout.retrain_running(project_id), self.store.layout.retrain_pending(project_id)):
            with contextlib.suppress(StateFileError):
                marker = read_state(path) or {}
                if isinstance(marker.get("requested_at"), (int, float)):
                    times.append(float(marker["requested_at"]))
        return max(times)

    def _quiet_left(self, project_id: int) -> float:
        """Seconds until labels held back by the threshold are due (0: due, or none held back).
        Only a marker a retrain wrote back for them (``"trailing"``) waits; a new request always
        runs, since its label may bring the count over the threshold."""
        try:
            marker = read_state(self.store.layout.retrain_pending(project_id)) or {}
        except StateFileError:
            return 0.0
        if not marker.get("trailing") or marker.get("force"):
            return 0.0
        return max(0.0, self._requested_at(project_id) + self.settings.trailing_quiet_seconds - self.clock())

    def retrain_locked(self, project_id: int, force: bool) -> JobOutcome:
        """Retrain under the project's ``train`` lock, so other processes wait their turn; first
        give Label Studio a moment to commit the newest annotation whose webhook asked. Does
        nothing when no retrain is owed any more (see :meth:`_marked_force`).

        Trailing labels and lost webhooks: a retrain that trained, or found changed labels below
        the threshold, leaves a ``"trailing"`` marker and asks for a retrain once
        ``LABELQUEUE_TRAILING_QUIET_SECONDS`` have passed since the last request (see
        :meth:`_check_when_quiet`); a request in between starts the wait again. When it is quiet
        that long, any changed label is trained on.

        Whether the retrain is forced is read from the markers too, not from ``force``: this job's
        forced request may have been served already by a run of another worker (which consumed
        its marker), and must not turn that run's quiet-period check into a forced retrain.
        """
        if not self.store.exists(project_id):
            return JobOutcome(project_id, False, NOT_CONNECTED)
        wait = self._quiet_left(project_id)
        if wait > 0:  # overtaken by newer annotations, or a timer a moment early: ask again when due
            self.retrains.request_later(project_id, wait)
            return JobOutcome(project_id, False, f"trailing labels wait {wait:.0f} s more without annotations")
        with self.store.lock(project_id, "train"):
            marked = self._marked_force(project_id)
            if marked is None:
                return JobOutcome(project_id, False, "already retrained since the last request (by another worker)")
            requested_at = self._requested_at(project_id)
            quiet = self.settings.trailing_quiet_seconds
            pending, running = self.store.layout.retrain_pending(project_id), self.store.layout.retrain_running(project_id)
            with contextlib.suppress(FileNotFoundError):  # atomic: a request from now on writes a new one
                os.replace(pending, running)
            # Settle from the newest request this run takes over, not from this job's own: a run
            # started for an earlier label also takes a webhook that arrived a moment ago, and must
            # not read Label Studio before that annotation is committed (its retrain would find
            # nothing left to do, and the label would wait for the next one).
            settle = requested_at + self.settings.retrain_settle_seconds - self.clock()
            if settle > 0:
                time.sleep(min(settle, self.settings.retrain_settle_seconds))
            read_at = self.clock()
            outcome = retrain(project_id, settings=self.settings, store=self.store, connections=self.connections,
                              force=marked, trailing=quiet > 0 and read_at - requested_at >= quiet)
            if quiet > 0 and (outcome.done or outcome.figures.get("waiting")) and not pending.exists():
                self._check_when_quiet(project_id, read_at)
            running.unlink(missing_ok=True)
            return outcome

    def _check_when_quiet(self, project_id: int, read_at: float) -> None:
        """Read Label Studio once more when no request has come for the quiet period after the
        read at ``read_at``: it trains on labels the threshold held back, and on annotations
        whose webhook never came. Label Studio drops a webhook that its ``WEBHOOK_TIMEOUT`` (1 s
        by default) cuts off, for example while the worker it reached is busy, and never sends
        it again; without this read such a label would wait for the next annotation. A read
        that finds nothing changed asks for no further one, so each burst of annotations costs
        one extra read."""
        atomic_write_json(self.store.layout.retrain_pending(project_id),
                          {"force": False, "requested_at": read_at, "trailing": True})
        self.retrains.request_later(project_id, read_at + self.settings.trailing_quiet_seconds - self.clock())

    def degraded(self) -> Degraded | None:
        """Why background work is failing; None when all is well. ``/health`` shows only the
        reason code (anyone may call it), ``/metrics`` (behind auth) the detail too."""
        backend = self.jobs.problem()
        if backend:
            return Degraded("job_queue_unavailable", backend)
        problems = [f"project {pid} {s.name}: {reason}" for s in (self.retrains, self.selections, self.pool_syncs)
                    for pid, reason in s.degraded().items()]
        return Degraded("label_studio_unreachable", "; ".join(problems)) if problems else None

    def select(self, project_id: int, force: bool = False) -> JobOutcome:
        """``force``: on demand (always compose); otherwise after a retrain (skip if current)."""
        if not self.store.exists(project_id):
            return JobOutcome(project_id, False, NOT_CONNECTED)
        return run_cycle(self.cycle, project_id, force=force)

    def sync_pool(self, project_id: int, reconcile: bool) -> JobOutcome:
        """New tasks are appended; after deletions (``reconcile``) missing ones are dropped too."""
        if not self.store.exists(project_id):
            return JobOutcome(project_id, False, NOT_CONNECTED)
        gateway = self.connections.gateway(project_id)
        spec = gateway.spec()
        if reconcile:
            self.cycle.pool_cache.reconcile(gateway)
        pool = self.cycle.pool_cache.sync_new(gateway, spec)
        return JobOutcome(project_id, True, f"{len(pool.task_ids)} tasks cached", figures={"pool_size": len(pool.task_ids)})

    def metrics(self) -> dict[str, Any]:
        """Every project that exists on disk; one project's unreadable file shows as its
        ``error`` and never hides the others."""
        jobs = {s.name: s.snapshot() for s in (self.retrains, self.selections, self.pool_syncs)}
        projects = {str(pid): self.project_metrics_or_error(pid, jobs) for pid in sorted(self.known_projects())}
        degraded = self.degraded()
        return {"projects": projects, "jobs_backend": self.jobs.describe(), "settings": self.settings.public(),
                "degraded": {"reason": degraded.reason, "detail": degraded.detail} if degraded else None}

    def project_metrics_or_error(self, project_id: int, jobs: dict[str, dict]) -> dict[str, Any]:
        try:
            return self.project_metrics(project_id, jobs)
        except (StateFileError, CyclesDBError, sqlite3.Error) as exc:
            logger.error("project %s: /metrics: %s", project_id, exc)
            return {"error": str(exc)}

    def project_metrics(self, project_id: int, jobs: dict[str, dict]) -> dict[str, Any]:
        manifest = self.store.manifest(project_id)
        labelled = read_labelled(self.store, project_id)
        per_class: dict[str, int] = {}
        for item in labelled.values():
            for label in item["labels"]:
                name = label[-1] if isinstance(label, list) else label  # a span is stored as [start, end, type]
                per_class[name] = per_class.get(name, 0) + 1
        queue = read_queue(self.store, project_id)
        return {
            "model_version": manifest.version if manifest else None,
            "model": manifest.info if manifest else None,
            "labels": {"total": len(labelled), "per_class": per_class,
                       "overridden": sum(1 for i in labelled.values() if i.get("overridden"))},
            "queue": queue.summary() if queue else None,
            "flagged_failures": len(self.failures.read(project_id)),
            "loop": self.loop.summary(project_id),
            "jobs": {name: snapshot.get(project_id, {"state": self.idle_state()}) for name, snapshot in jobs.items()},
        }

    def idle_state(self) -> str:
        """In-process job state is per gunicorn worker; RQ job state is shared by all."""
        return JobState.IDLE if self.jobs.mode == "rq" else f"{JobState.IDLE} (this worker)"

    def known_projects(self) -> set[int]:
        return self.store.known_projects()
