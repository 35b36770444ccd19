"""The project's task pool, cached by task id in the data dir and updated incrementally.

Selection needs every task's text (to score it with each new model) and embedding (for
diversity and override similarity). Re-reading a 50,000-task project from Label Studio every
cycle would dominate the cycle, so the cache keeps ``ids.npy``, ``embeddings.npy``
(float32, 1 KB per task), ``texts.json`` and ``flagged.npy`` under
``projects/<id>/pool/g<N>/`` and only asks Label Studio for tasks it has not seen (``id`` greater
than the largest cached id: Label Studio ids only grow).

Embeddings are IDF-weighted (``backend/model/features.py``) by the pool's own document
frequencies, kept as ``frequencies.npy`` (every cached text) and ``idf.npy`` (the weights every
cached embedding was computed with; 1 MiB each). New tasks are embedded with the same weights, so
distances stay comparable; once the pool has doubled since the weights were fixed, they are
refitted on the whole pool and every text is embedded again. That costs one full embedding per
doubling (0.25 s per 10,000 texts), i.e. less than one extra embedding per task overall. ``TASKS_CREATED`` webhooks trigger that
sync; ``TASKS_DELETED`` triggers a reconcile that lists task ids only (no data) and drops the
missing ones. Rescoring after a retrain reads the cache only.

Several processes, possibly on several machines, sync and read one project's cache (a pool-sync
job beside a selection on another RQ worker). So each save writes a new generation folder
``g<N>`` and then switches ``pool/current.json`` to it with one atomic rename: a reader sees
one whole generation, never ids of one and texts of another. The last two generations are kept,
so a reader that has just followed the pointer still finds its files. Syncs take the project's
``pool`` lock (a file lock, or a Redis lock with RQ workers), so two syncs never both extend the
same generation and lose each other's changes.
"""
from __future__ import annotations

import json
import logging
import shutil
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from backend.labelstudio.gateway import LabelStudioGateway
from backend.model.features import EMBEDDING_DIM, HASH_FEATURES, document_frequencies, embed_texts, idf_weights
from backend.model.labelconfig import TaskSpec
from backend.settings import FailureField
from backend.store import ModelStore, atomic_write_bytes, atomic_write_json, npy_bytes

logger = logging.getLogger(__name__)

KEEP_GENERATIONS = 2
#: Recorded in ``meta.json``; a cache of other features is rebuilt (before IDF: none recorded;
#: ``hashed-idf-1``: the sparser projection that dropped most n-grams).
FEATURES = "hashed-idf-2"
#: The IDF is refitted when the pool reaches this multiple of the texts it was fitted on.
REFIT_GROWTH = 2.0


@dataclass(frozen=True)
class CachedPool:
    """All tasks of a project that carry text, in ascending id order.

    Attributes
    ----------
    task_ids : (n,) int64, ascending
    texts : list of n str
    embeddings : (n, EMBEDDING_DIM) float32
    flagged : (n,) bool, True where the task matches ``LABELQUEUE_FAILURE_FIELD``
    frequencies : (HASH_FEATURES,) int32, document frequency of each hashed n-gram over ``texts``
    idf : (HASH_FEATURES,) float32, the weights ``embeddings`` were computed with
    idf_documents : int, how many texts ``idf`` was fitted on (0: not fitted yet)
    """

    task_ids: np.ndarray
    texts: list[str]
    embeddings: np.ndarray
    flagged: np.ndarray
    frequencies: np.ndarray
    idf: np.ndarray
    idf_documents: int

    def texts_of(self, task_ids: Sequence[int]) -> list[str]:
        """The texts of tasks in the pool, by a binary search of the ascending ids (no index over
        the whole pool per call); ``KeyError`` for an id the pool does not hold."""
        wanted = np.asarray(task_ids, dtype=np.int64)
        rows = np.searchsorted(self.task_ids, wanted)
        found = rows < len(self.task_ids)
        if not found.all() or not np.array_equal(self.task_ids[rows], wanted):
            raise KeyError(f"tasks not in the pool: {sorted(set(wanted.tolist()) - set(self.task_ids.tolist()))}")
        return [self.texts[int(r)] for r in rows]

    @classmethod
    def empty(cls) -> CachedPool:
        return cls(np.zeros(0, np.int64), [], np.zeros((0, EMBEDDING_DIM), np.float32), np.zeros(0, bool),
                   np.zeros(HASH_FEATURES, np.int32), idf_weights(np.zeros(HASH_FEATURES), 0), 0)


class PoolCache:
    """Loads, extends and prunes each project's cached pool; one lock per process."""

    def __init__(self, store: ModelStore, *, seed: int, failure_field: FailureField | None):
        self.store = store
        self.seed = seed
        self.failure_field = failure_field
        self._lock = threading.Lock()

    def _dir(self, project_id: int) -> Path:
        return self.store.layout.pool(project_id)

    def _current(self, project_id: int) -> Path:
        """The generation ``current.json`` names (the pool folder itself in the older layout)."""
        root = self._dir(project_id)
        try:
            return root / json.loads((root / "current.json").read_text())["generation"]
        except (OSError, ValueError, KeyError):
            return root

    def load(self, project_id: int) -> CachedPool:
        path = self._current(project_id)
        try:
            meta = json.loads((path / "meta.json").read_text())
            if (meta.get("failure_field"), meta.get("seed"), meta.get("features")) != (
                    str(self.failure_field), self.seed, FEATURES):
                return CachedPool.empty()  # features or flags were computed differently: rebuild
            return CachedPool(task_ids=np.load(path / "ids.npy"),
                              texts=json.loads((path / "texts.json").read_text()),
                              embeddings=np.load(path / "embeddings.npy"),
                              flagged=np.load(path / "flagged.npy"),
                              frequencies=np.load(path / "frequencies.npy"), idf=np.load(path / "idf.npy"),
                              idf_documents=int(meta["idf_documents"]))
        except (OSError, ValueError, KeyError):
            return CachedPool.empty()

    def save(self, project_id: int, pool: CachedPool) -> None:
        """Write a new generation, switch the pointer to it, drop all but the newest two."""
        root, previous = self._dir(project_id), self._current(project_id).name
        number = int(previous[1:]) + 1 if previous.startswith("g") and previous[1:].isdigit() else 1
        path = root / f"g{number:06d}"
        shutil.rmtree(path, ignore_errors=True)  # a half-written generation of a crashed sync
        for name, array in (("ids.npy", pool.task_ids), ("embeddings.npy", pool.embeddings),
                            ("flagged.npy", pool.flagged), ("frequencies.npy", pool.frequencies),
                            ("idf.npy", pool.idf)):
            atomic_write_bytes(path / name, npy_bytes(array))
        atomic_write_bytes(path / "texts.json", json.dumps(pool.texts).encode())
        atomic_write_json(path / "meta.json", {"failure_field": str(self.failure_field), "seed": self.seed,
                                               "size": len(pool.task_ids), "features": FEATURES,
                                               "idf_documents": pool.idf_documents})
        atomic_write_json(root / "current.json", {"generation": path.name})
        generations = sorted(g for g in root.iterdir() if g.is_dir() and g.name.startswith("g"))
        for old in generations[:-KEEP_GENERATIONS]:
            shutil.rmtree(old, ignore_errors=True)
        for legacy in ("ids.npy", "embeddings.npy", "flagged.npy", "texts.json", "meta.json"):
            (root / legacy).unlink(missing_ok=True)

    def sync_new(self, gateway: LabelStudioGateway, spec: TaskSpec) -> CachedPool:
        """Add tasks created since the last sync; one filtered query, usually returning nothing."""
        project_id = gateway.project_id
        with self._lock, self.store.lock(project_id, "pool"):
            pool = self.load(project_id)
            fresh = gateway.tasks_after(int(pool.task_ids[-1]) if len(pool.task_ids) else 0)
            if not fresh:
                return pool
            pool = self._extend(pool, fresh, spec)
            self.save(project_id, pool)
            logger.info("project %s: pool cache +%d tasks (%d cached)", project_id, len(fresh),
                        len(pool.task_ids))
            return pool

    def reconcile(self, gateway: LabelStudioGateway) -> CachedPool:
        """Drop cached tasks that Label Studio no longer has (after ``TASKS_DELETED``)."""
        project_id = gateway.project_id
        with self._lock, self.store.lock(project_id, "pool"):
            pool = self.load(project_id)
            alive = np.array(gateway.task_ids(), dtype=np.int64)
            keep = np.isin(pool.task_ids, alive)
            if keep.all():
                return pool
            gone = document_frequencies([t for t, k in zip(pool.texts, keep) if not k])
            pool = CachedPool(pool.task_ids[keep], [t for t, k in zip(pool.texts, keep) if k],
                              pool.embeddings[keep], pool.flagged[keep],
                              (pool.frequencies - gone).astype(np.int32), pool.idf, pool.idf_documents)
            self.save(project_id, pool)
            logger.info("project %s: pool cache -%d deleted tasks", project_id, int((~keep).sum()))
            return pool

    def _extend(self, pool: CachedPool, tasks: list[dict[str, Any]], spec: TaskSpec) -> CachedPool:
        cached = set(pool.task_ids.tolist())
        usable = [t for t in tasks if isinstance((t.get("data") or {}).get(spec.value_key), str)
                  and int(t["id"]) not in cached]
        usable.sort(key=lambda t: int(t["id"]))
        texts = [t["data"][spec.value_key] for t in usable]
        flags = np.array([self.failure_field.matches(t) if self.failure_field else False for t in usable],
                         dtype=bool)
        every = pool.texts + texts
        frequencies = (pool.frequencies + document_frequencies(texts)).astype(np.int32)
        if len(every) >= REFIT_GROWTH * pool.idf_documents:
            idf, documents = idf_weights(frequencies, len(every)), len(every)
            embeddings = embed_texts(every, self.seed, idf)
        else:
            idf, documents = pool.idf, pool.idf_documents
            embeddings = np.concatenate([pool.embeddings, embed_texts(texts, self.seed, idf)])
        return CachedPool(
            task_ids=np.concatenate([pool.task_ids, np.array([int(t["id"]) for t in usable], np.int64)]),
            texts=every, embeddings=embeddings, flagged=np.concatenate([pool.flagged, flags]),
            frequencies=frequencies, idf=idf, idf_documents=documents,
        )
