"""Pool scoring split into chunks that several RQ workers score in parallel (RQ mode only).

A selection cycle must score every unlabelled task with the new model; at a million tasks that
is the longest step of the cycle. :class:`ChunkedScorer` cuts the texts into chunks of
``LABELQUEUE_SCORE_CHUNK_SIZE``, enqueues one :func:`score_chunk` job per chunk on the
``labelqueue-score`` queue, and merges the results in order before selection.

* Bulk data goes through the shared data dir, Redis carries only small job messages: the caller
  writes each chunk's texts to ``projects/<id>/scores/<run>/<chunk>.json`` (so every chunk scores
  exactly the snapshot the cycle took, whatever the pool cache does meanwhile), each chunk job
  loads the model version the cycle uses, HMAC-verified (``ModelStore.load``), and writes
  its probabilities (float32 ``.npy``) beside the texts. (Texts in the job payload were
  measured: RQ's compression of 1M texts took 3.5 s before the first worker could start.)
* The caller (the worker running the select job) does not sit idle: it takes chunks back from
  the tail of the queue (an atomic ``LREM``: a chunk goes to it or to a worker, never both) and
  scores them itself. So one worker alone still finishes, and N workers give N scorers.
* A chunk whose job fails or whose worker dies (no RQ heartbeat for ``rq_state.STALE_AFTER`` s) is scored
  by the caller instead; a cycle never waits forever on a lost worker.
"""
from __future__ import annotations

import json
import logging
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
from rq import Queue
from rq.job import Job, JobStatus

from backend.jobs.rq_state import JOB_FIELDS, is_lost
from backend.model.classifier import TrainedModel
from backend.store import Manifest, ModelStore, atomic_write_bytes, npy_bytes

logger = logging.getLogger(__name__)

#: Result folders of scoring runs whose caller died are removed after this many seconds.
ABANDONED_AFTER = 3600.0
POLL_SECONDS = 0.05


def chunk_path(store: ModelStore, project_id: int, run: str, index: int, suffix: str = ".npy") -> Path:
    return store.layout.scores(project_id) / run / f"{index:06d}{suffix}"


#: The RQ job that scores one chunk (``backend.worker.score_chunk`` calls :func:`score_chunk`).
SCORE_CHUNK = "backend.worker.score_chunk"


def score_chunk(store: ModelStore, project_id: int, manifest: dict, run: str, index: int) -> dict:
    """Score one chunk with the model ``manifest`` names; write the result file."""
    started = time.monotonic()
    texts = json.loads(chunk_path(store, project_id, run, index, ".json").read_bytes())
    model = store.load(project_id, Manifest(**manifest))
    write_chunk(store, project_id, run, index, model.predict_proba(texts))
    return {"rows": len(texts), "seconds": round(time.monotonic() - started, 3)}


def write_chunk(store: ModelStore, project_id: int, run: str, index: int, proba: np.ndarray) -> None:
    atomic_write_bytes(chunk_path(store, project_id, run, index), npy_bytes(proba.astype(np.float32)))


class ChunkedScorer:
    """The RQ ``PoolScorer``; see the module docstring for the protocol."""

    def __init__(self, store: ModelStore, queue: Queue, *, chunk_size: int, steal: bool = True):
        self.store = store
        self.queue = queue
        self.chunk_size = chunk_size
        self.steal = steal

    def score(self, project_id: int, model: TrainedModel, texts: Sequence[str]) -> np.ndarray:
        manifest = self.store.manifest(project_id)
        if len(texts) <= self.chunk_size or manifest is None or manifest.version != model.version:
            return model.predict_proba(texts)  # one chunk, or the model changed under us: no fan-out
        self._prune(project_id)
        run = f"{model.version}-{uuid.uuid4().hex[:8]}"
        bounds = [(start, min(start + self.chunk_size, len(texts))) for start in range(0, len(texts), self.chunk_size)]
        started = time.monotonic()
        jobs = []
        for i, (a, b) in enumerate(bounds):  # one at a time, so workers start on the first at once
            atomic_write_bytes(chunk_path(self.store, project_id, run, i, ".json"), json.dumps(list(texts[a:b])).encode())
            jobs.append(self.queue.enqueue(SCORE_CHUNK, int(project_id), asdict(manifest), run, i, job_timeout=3600,
                                           result_ttl=600, failure_ttl=86400,
                                           description=f"labelqueue score project {project_id} rows {a}-{b}"))
        try:
            self._collect(project_id, model, texts, run, bounds, jobs)
            parts = [np.load(chunk_path(self.store, project_id, run, i)) for i in range(len(bounds))]
        finally:
            shutil.rmtree(self.store.layout.scores(project_id) / run, ignore_errors=True)
        logger.info("project %s: scored %d tasks in %d chunks in %.2fs", project_id, len(texts), len(bounds),
                    time.monotonic() - started)
        return np.concatenate(parts)

    def _collect(self, project_id: int, model: TrainedModel, texts: Sequence[str], run: str,
                 bounds: list[tuple[int, int]], jobs: list[Job]) -> None:
        """Wait for every chunk, scoring here the ones taken back, failed or lost."""
        waiting = dict(enumerate(jobs))
        while waiting:
            index = self._take_back(waiting) if self.steal else None
            if index is None:
                index = self._finished_or_lost(waiting)
                if index is None:
                    time.sleep(POLL_SECONDS)
                    continue
                if index < 0:  # a chunk a worker finished
                    continue
            a, b = bounds[index]
            write_chunk(self.store, project_id, run, index, model.predict_proba(texts[a:b]))
            del waiting[index]

    def _take_back(self, waiting: dict[int, Job]) -> int | None:
        """Remove the last still-queued chunk from the queue; its index, or None."""
        for index in sorted(waiting, reverse=True):
            job = waiting[index]
            if self.queue.connection.lrem(self.queue.key, -1, job.id):
                job.delete(remove_from_queue=False)
                return index
        return None

    def _finished_or_lost(self, waiting: dict[int, Job]) -> int | None:
        """Drop finished chunks from ``waiting`` (returns -1); the index of one to score here
        because its job failed or its worker died; None when all are still in progress.

        Reads two fields per job (one round trip), not the jobs themselves: fetching whole jobs
        every 50 ms was measured to cost the caller 0.33 s of CPU per poll at 20 chunks."""
        with self.queue.connection.pipeline() as pipe:
            for job in waiting.values():
                pipe.hmget(job.key, JOB_FIELDS)
            states = pipe.execute()
        progressed = False
        for (index, job), (status, beat) in zip(list(waiting.items()), states):
            if status == JobStatus.FINISHED.value.encode():
                del waiting[index]
                progressed = True
            elif status != JobStatus.QUEUED.value.encode() and is_lost(status, beat):
                logger.warning("chunk %d (%s) %s on its worker; scoring it here", index, job.id,
                               status.decode() if status else "was lost")
                job.delete()
                return index
        return -1 if progressed else None

    def _prune(self, project_id: int) -> None:
        """Remove result folders left by scoring runs whose caller died."""
        root = self.store.layout.scores(project_id)
        for folder in root.iterdir() if root.exists() else ():
            if time.time() - folder.stat().st_mtime > ABANDONED_AFTER:
                shutil.rmtree(folder, ignore_errors=True)
