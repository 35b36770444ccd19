"""Per-project state on disk: model files, the manifest naming the current one, and a lock.

Layout (all under ``data_dir``, created owner-only)::

    projects/<id>/models/<version>.pkl   pickled TrainedModel, written to a temp file + renamed
    projects/<id>/current.json           {"version", "file", "sha256", "n_examples", ...}
    projects/<id>/<name>.lock            flocks: train, select, failures (see FileLocks)

Readers only ever follow ``current.json``, which is replaced with ``os.replace`` after the model
file is complete and fsynced, so a crash mid-write leaves the previous version in service.
The checksum recorded at write time is verified before unpickling, so a file the backend did
not write (or a torn one) is refused instead of executed.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import logging
import os
import pickle
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ContextManager, Protocol

import numpy as np

from backend.model.classifier import TrainedModel

logger = logging.getLogger(__name__)


class CorruptModelError(RuntimeError):
    """A model file does not match the checksum recorded when it was written."""


@dataclass(frozen=True)
class Manifest:
    """What ``current.json`` says; cheap to read before every prediction."""

    version: str
    file: str
    sha256: str
    info: dict[str, Any]


@dataclass(frozen=True)
class KeptVersion:
    """A model version whose file is still on disk; ``saved_at`` is its write time (epoch s)."""

    version: str
    saved_at: float


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write ``payload`` so that readers see the old file or the whole new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_bytes(path, json.dumps(data, indent=1, sort_keys=True).encode())


def npy_bytes(array: Any) -> bytes:
    """``array`` in NumPy's ``.npy`` format, without pickle, for :func:`atomic_write_bytes`."""
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ProjectLocks(Protocol):
    """Mutual exclusion per (project, name) among every process that works on a data dir."""

    def hold(self, project_id: int, name: str) -> ContextManager[None]: ...


class FileLocks:
    """``flock`` on ``projects/<id>/<name>.lock``: enough for processes on one machine (gunicorn
    workers, the CLI). Workers on several machines use Redis locks instead (``backend/jobs/redis_locks.py``),
    because ``flock`` over network filesystems is unreliable."""

    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)

    @contextlib.contextmanager
    def hold(self, project_id: int, name: str) -> Iterator[None]:
        path = self.data_dir / "projects" / str(int(project_id)) / f"{name}.lock"
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(path, "a+") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


class ModelStore:
    """Reads and writes models of every project under one data dir."""

    def __init__(self, data_dir: Path, keep_versions: int = 3, locks: ProjectLocks | None = None):
        self.data_dir = Path(data_dir)
        self.keep_versions = keep_versions
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.data_dir, 0o700)
        self.locks = locks or FileLocks(self.data_dir)

    def project_dir(self, project_id: int) -> Path:
        path = self.data_dir / "projects" / str(int(project_id))
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path

    def manifest(self, project_id: int) -> Manifest | None:
        path = self.project_dir(project_id) / "current.json"
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            logger.error("project %s: unreadable manifest %s: %s", project_id, path, exc)
            return None
        return Manifest(version=data["version"], file=data["file"], sha256=data["sha256"],
                        info=data.get("info", {}))

    def save(self, project_id: int, model: TrainedModel, info: dict[str, Any]) -> Manifest:
        """Write the model file, then switch ``current.json`` to it, then prune old versions."""
        payload = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
        models_dir = self.project_dir(project_id) / "models"
        file_name = f"{model.version}.pkl"
        atomic_write_bytes(models_dir / file_name, payload)
        manifest = Manifest(version=model.version, file=file_name,
                            sha256=hashlib.sha256(payload).hexdigest(), info=info)
        atomic_write_json(self.project_dir(project_id) / "current.json", {
            "version": manifest.version, "file": manifest.file, "sha256": manifest.sha256,
            "info": manifest.info,
        })
        self._prune(models_dir, keep=file_name)
        return manifest

    def load(self, project_id: int, manifest: Manifest) -> TrainedModel:
        """Load the file a manifest names, refusing it unless its checksum matches."""
        path = self.project_dir(project_id) / "models" / Path(manifest.file).name
        payload = path.read_bytes()
        if hashlib.sha256(payload).hexdigest() != manifest.sha256:
            raise CorruptModelError(f"{path} does not match the checksum recorded at write time")
        return pickle.loads(payload)  # noqa: S301 - checksum above proves we wrote this file

    def kept_versions(self, project_id: int) -> list[KeptVersion]:
        """The model versions still on disk for a project (at most ``keep_versions``), newest first."""
        models_dir = self.data_dir / "projects" / str(int(project_id)) / "models"
        return [KeptVersion(path.stem, saved_at) for path, saved_at in self._model_files(models_dir)]

    @staticmethod
    def _model_files(models_dir: Path) -> list[tuple[Path, float]]:
        """Model files with their write times, newest first; a file pruned meanwhile is skipped."""
        found = []
        for path in models_dir.glob("*.pkl"):
            with contextlib.suppress(FileNotFoundError):
                found.append((path, path.stat().st_mtime))
        return sorted(found, key=lambda item: item[1], reverse=True)

    def _prune(self, models_dir: Path, keep: str) -> None:
        for old, _ in self._model_files(models_dir)[self.keep_versions:]:
            if old.name != keep:
                with contextlib.suppress(FileNotFoundError):
                    old.unlink()

    def lock(self, project_id: int, name: str) -> ContextManager[None]:
        """Block until no other process (gunicorn worker, RQ worker, CLI) holds this project's
        ``name`` lock.

        ``train`` serialises retrains, ``select`` serialises selection cycles, ``failures``
        guards the flagged-failure list against concurrent read-modify-write.
        """
        return self.locks.hold(project_id, name)


class ModelCache:
    """The models this process serves, refreshed from disk when ``current.json`` changes.

    Every prediction first reads the manifest (one small file), so each gunicorn worker picks up
    a version trained by another worker before its next prediction. The lock guards the dict,
    not the loading of a model, so predictions for other projects are never blocked.
    """

    def __init__(self, store: ModelStore):
        self.store = store
        self._models: dict[int, TrainedModel] = {}
        self._lock = threading.Lock()

    def current(self, project_id: int) -> TrainedModel | None:
        manifest = self.store.manifest(project_id)
        if manifest is None:
            return None
        with self._lock:
            cached = self._models.get(project_id)
        if cached is not None and cached.version == manifest.version:
            return cached
        try:
            model = self.store.load(project_id, manifest)
        except (OSError, CorruptModelError, pickle.UnpicklingError) as exc:
            logger.error("project %s: cannot load model %s (%s); serving %s", project_id,
                         manifest.version, exc, cached.version if cached else "no model")
            return cached
        with self._lock:
            self._models[project_id] = model
        return model
