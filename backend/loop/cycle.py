"""One selection cycle: sync the pool cache, score it, compose the batch, write the queue.

Runs after every retrain that produced a model (when the current batch is mostly labelled or
stale, see :func:`refill_reason`) and on demand, in the background, under the project's
``select`` lock. Each step is a plain call with plain data; the only Label Studio
traffic is one query for new tasks, the project's config, and the queue writes.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Protocol

import numpy as np

from backend.labelstudio.gateway import Connections
from backend.labelstudio.queue_writer import write_queue
from backend.layout import StateFileError, read_state
from backend.loop.failures import FailureLog
from backend.loop.pool_cache import CachedPool, PoolCache
from backend.loop.project_options import ProjectOptionsStore
from backend.loop.queue_record import QueuedTask, QueueRecord
from backend.loop.training import read_labelled
from backend.model.labelconfig import TaskSpec, kind_of
from backend.model.scoring import PoolScorer
from backend.outcome import JobOutcome
from backend.settings import Settings
from backend.store import ModelCache, ModelStore, atomic_write_json
from selection.batch import Batch, compose_batch
from selection.effort_budget import within_effort_budget
from selection.errors import EmptyPoolError
from selection.pool import LabelledSet, Pool

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]


class CycleRecorder(Protocol):
    """Keeps the history of written queues (``queue.json`` holds only the latest); called by
    the cycle right after the write, under its ``select`` lock. Must not raise: a recording
    problem must not fail (and so retry and rewrite) the cycle.

    ``trained`` is the training set of the model the batch was scored with, read with it before
    the write: a retrain that finishes during the write (which takes seconds) belongs to the
    next cycle, so the recorder must not read the training set again itself."""

    def record_queue(self, project_id: int, queue: QueueRecord, trained: Collection[int]) -> None: ...


@dataclass
class CycleContext:
    """The long-lived collaborators a cycle needs (built once per process in ``Runtime``)."""

    settings: Settings
    store: ModelStore
    models: ModelCache
    connections: Connections
    pool_cache: PoolCache
    failures: FailureLog
    options: ProjectOptionsStore
    #: Scores the pool: here, or in chunks on RQ workers (``backend/jobs/pool_scoring.py``).
    scorer: PoolScorer
    #: Records each written queue (the loop monitor's SQLite history).
    recorder: CycleRecorder


def read_queue(store: ModelStore, project_id: int) -> QueueRecord | None:
    """The latest written queue; None before the first. A malformed file raises
    :class:`StateFileError` naming it."""
    path = store.layout.queue(project_id)
    raw = read_state(path)
    if raw is None:
        return None
    try:
        return QueueRecord.from_json(raw)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise StateFileError(path, f"not a queue ({type(exc).__name__}: {exc})") from None


def cycle_seed(base: int, project_id: int, cycle: int) -> int:
    """Replayable per (seed, project, cycle), yet different draws in every cycle."""
    return int(np.random.SeedSequence([base, project_id, cycle]).generate_state(1)[0])


def run_cycle(ctx: CycleContext, project_id: int, *, size: int | None = None, force: bool = True,
              progress: Progress = lambda step: None) -> JobOutcome:
    """Select and write the next batch; the caller holds no lock (this takes ``select``).

    ``force`` (on demand: ``POST /projects/<id>/select``, ``labelqueue select``) always composes.
    Without it (the after-retrain trigger) :func:`refill_reason` decides: retrains keep
    improving predictions, but the batch annotators are working through stays until it is
    mostly labelled, as in "label the batch, retrain, select the next one".

    The outcome's figures: ``cycle``, ``model_version``, ``pool_size``, ``selectable`` (unlabelled
    tasks), ``counts`` (tasks per slice) and ``seconds`` (per step).
    """
    with ctx.store.lock(project_id, "select"):
        if not force:
            previous = read_queue(ctx.store, project_id)
            manifest = ctx.store.manifest(project_id)
            why = refill_reason(previous, manifest.version if manifest else None,
                                set(read_labelled(ctx.store, project_id)), ctx.settings, datetime.now(timezone.utc))
            if why is None:
                return JobOutcome(project_id, False, _waiting(previous, ctx.settings),
                                  figures={"cycle": previous.cycle if previous else 0})
            logger.info("project %s: composing a new batch: %s", project_id, why)
        return _run_locked(ctx, project_id, size, progress)


def refill_reason(queue: QueueRecord | None, model_version: str | None, labelled: set[int],
                  settings: Settings, now: datetime) -> str | None:
    """Why a new batch is due after a retrain, or None to keep the current one.

    Due when there is no batch yet; when ``LABELQUEUE_REFILL_AT`` of the current batch is
    labelled; or when it is stale: composed by an older model more than
    ``LABELQUEUE_STALE_HOURS`` ago. Never when nothing changed since it was composed (same
    model, same labelled set), so retrains in quick succession on several workers do not
    rewrite an identical queue.
    """
    if queue is None:
        return "no batch yet"
    if (queue.model_version, queue.labelled) == (model_version, len(labelled)):
        return None
    done = sum(1 for item in queue.items if item.task_id in labelled)
    if not queue.items or done >= settings.refill_at * len(queue.items):
        return f"{done} of {len(queue.items)} tasks of cycle {queue.cycle} are labelled"
    created = datetime.fromisoformat(queue.created_at)
    if queue.model_version != model_version and now - created >= timedelta(hours=settings.stale_hours):
        return f"cycle {queue.cycle} is older than {settings.stale_hours:g} h and a newer model is in service"
    return None


def _waiting(queue: QueueRecord | None, settings: Settings) -> str:
    return (f"cycle {queue.cycle if queue else 0} stays until {settings.refill_at:.0%} of it is labelled "
            f"(or {settings.stale_hours:g} h old with a newer model)")


def _run_locked(ctx: CycleContext, project_id: int, size: int | None, progress: Progress) -> JobOutcome:
    seconds: dict[str, float] = {}
    clock = time.monotonic()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.monotonic()
        seconds[name], clock = round(now - clock, 3), now

    options = ctx.options.get(project_id)
    size = size or options.batch_size
    progress("reading new tasks from Label Studio")
    gateway = ctx.connections.gateway(project_id)
    spec = gateway.spec()
    cached = ctx.pool_cache.sync_new(gateway, spec)
    lap("sync")

    progress(f"scoring {len(cached.task_ids)} cached tasks")
    labelled = read_labelled(ctx.store, project_id)
    model = ctx.models.current(project_id)
    pool, labelled_set = score_pool(cached, labelled, model, spec, ctx.scorer, project_id)
    lap("score")

    previous = read_queue(ctx.store, project_id)
    cycle = previous.cycle + 1 if previous else 1
    flagged = set(ctx.failures.read(project_id)) | set(cached.task_ids[cached.flagged].tolist())
    progress(f"composing cycle {cycle} from {len(pool.task_ids)} unlabelled tasks")
    mix = options.mix_at(len(labelled_set.task_ids), len(spec.labels))
    try:
        batch = compose_batch(pool, labelled_set, flagged=sorted(flagged), size=size, mix=mix,
                              seed=cycle_seed(ctx.settings.seed, project_id, cycle),
                              measure=ctx.settings.uncertainty_measure)
    except EmptyPoolError as exc:
        return JobOutcome(project_id, False, str(exc), figures={"cycle": cycle - 1, "pool_size": len(cached.task_ids)})
    if options.batch_tokens:
        batch = within_effort_budget(batch, tokens_of(batch, cached, spec), options.batch_tokens)
    predicted = predictions_of(batch.items, cached, model, spec) if model is not None else {}
    lap("select")

    progress(f"writing {len(batch.items)} tasks into the 'Active learning queue' tab")
    stale = [item.task_id for item in previous.items if item.task_id not in labelled] if previous else []
    with ctx.store.lock(project_id, "tasks"):  # the control-overlap step writes the same tasks
        written = write_queue(gateway, batch.items, cycle, previous=stale)
        queue = QueueRecord(
            cycle=cycle, model_version=model.version if model else None, labelled=len(labelled),
            created_at=datetime.now(timezone.utc).isoformat(), tab_id=written.tab_id, counts=dict(batch.counts),
            size_requested=size, mix=dict(mix.__dict__),
            items=tuple(QueuedTask(i.task_id, i.slice, i.rank, i.reason, *predicted.get(i.task_id, (None, None)))
                        for i in batch.items))
        atomic_write_json(ctx.store.layout.queue(project_id), queue.to_json())
        ctx.recorder.record_queue(project_id, queue, trained=tuple(labelled))
    lap("write")
    logger.info("project %s: cycle %d queued %d tasks %s in %.2fs", project_id, cycle, len(batch.items),
                batch.counts, sum(seconds.values()))
    return JobOutcome(project_id, True, f"queued {len(batch.items)} tasks", figures={
        "cycle": cycle, "model_version": model.version if model else None, "pool_size": len(cached.task_ids),
        "selectable": len(pool.task_ids), "counts": dict(batch.counts), "seconds": seconds})


def tokens_of(batch: Batch, cached: CachedPool, spec: TaskSpec) -> dict[int, int]:
    """The tokens of each batch item's text, as the project's task kind counts them (none for a
    classification, whose batch a token budget therefore leaves whole)."""
    ids = [item.task_id for item in batch.items]
    kind = kind_of(spec)
    return {task_id: kind.effort_units(text, ()).get("token", 0) for task_id, text in zip(ids, cached.texts_of(ids))}


def predictions_of(items, cached: CachedPool, model, spec: TaskSpec) -> dict[int, tuple[tuple, float]]:
    """What the model in service predicted for each queued task before anyone labelled it.

    Kept with the queue so the loop can be measured later: on control items this is an
    unbiased sample of the model's answers on the pool. Asked of the task kind for the batch's
    texts only (a span model's pool scores hold no spans).
    """
    ids = [item.task_id for item in items]
    return dict(zip(ids, kind_of(spec).predicted(model, cached.texts_of(ids))))


def score_pool(cached: CachedPool, labelled: dict[int, dict], model, spec: TaskSpec, scorer: PoolScorer,
               project_id: int) -> tuple[Pool, LabelledSet]:
    """Split the cache into the unlabelled pool (scored by ``model``) and the labelled set.

    Without a model every class is equally likely: uncertainty is then flat and the batch is
    driven by diversity, failures and the random control slice. The labelled set carries each
    single-label task's class column (-1 for multi-label tasks or a label outside the config)
    and the model's probabilities on the overridden ones, so the failure slice does not chase
    the neighbours of an override the retrained model rejects (``selection.failure.accepted_overrides``).
    """
    is_labelled = np.isin(cached.task_ids, np.fromiter(labelled, dtype=np.int64, count=len(labelled)))
    rows = np.flatnonzero(~is_labelled)
    texts = [cached.texts[i] for i in rows]
    if model is not None:
        proba = scorer.score(project_id, model, texts)
    else:
        proba = np.full((len(rows), len(spec.labels)), 1.0 / len(spec.labels))
    done = np.flatnonzero(is_labelled)
    overridden = np.array([bool(labelled[int(t)].get("overridden")) for t in cached.task_ids[done]], dtype=bool)
    return (Pool(task_ids=cached.task_ids[rows], proba=proba, embeddings=cached.embeddings[rows],
                 multilabel=spec.multilabel),
            LabelledSet(task_ids=cached.task_ids[done], embeddings=cached.embeddings[done], overridden=overridden,
                        labels=label_columns([labelled[int(t)]["labels"] for t in cached.task_ids[done]], spec),
                        proba=overridden_proba(cached, done, overridden, model, spec, scorer, project_id)))


def overridden_proba(cached: CachedPool, done: np.ndarray, overridden: np.ndarray, model, spec: TaskSpec,
                     scorer: PoolScorer, project_id: int) -> np.ndarray | None:
    """The model's probabilities on the labelled rows ``done``, scored for the overridden ones
    only (the rest stay uniform and are never read); ``None`` where no class column applies."""
    if model is None or spec.kind != "classification" or spec.multilabel or not overridden.any():
        return None
    proba = np.full((len(done), len(spec.labels)), 1.0 / len(spec.labels))
    hit = np.flatnonzero(overridden)
    proba[hit] = scorer.score(project_id, model, [cached.texts[i] for i in done[hit]])
    return proba


def label_columns(labels: list[list[str]], spec: TaskSpec) -> np.ndarray:
    """Column of ``spec.labels`` each labelled task's one label names; -1 when a task has no
    single known label (multi-label configs, a label removed from the config, and a span
    project's sentences, whose labels are spans, not names)."""
    column = {name: i for i, name in enumerate(spec.labels)}
    return np.array([column.get(names[0], -1) if len(names) == 1 and isinstance(names[0], str)
                     and not spec.multilabel else -1 for names in labels], dtype=np.int64)
