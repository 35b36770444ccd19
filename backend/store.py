"""Per-project models on disk: the model files, the manifest naming the current one, and locks.

Every path is named by ``backend/layout.py``; this module writes and reads models there.
Readers only ever follow ``current.json``, which is replaced with ``os.replace`` after the model
file is complete and fsynced, so a crash mid-write leaves the previous version in service.
The manifest carries an HMAC-SHA256 of the model file under a key kept outside the data dir
(``backend/model_key.py``), verified before unpickling: a file this deployment did not write,
or a torn one, is refused instead of executed. After loading, the object must be a
``TrainedModel``. Reading never creates a folder; writing is done only for projects that exist.
"""
from __future__ import annotations

import contextlib
import fcntl
import io
import json
import logging
import os
import pickle
import secrets
import tempfile
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager as ContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from backend.layout import ProjectLayout, StateFileError, make_private_dirs, read_state
from backend.model.classifier import TrainedModel
from backend.model.span_model import SpanModel
from backend.model_key import sign, verifies

logger = logging.getLogger(__name__)

#: Default of ``LABELQUEUE_MAX_PROJECTS``, the number of project folders one data dir may hold.
DEFAULT_MAX_PROJECTS = 1000


class ModelLoadError(RuntimeError):
    """A model file was refused: its HMAC does not verify, it does not unpickle, or it is not a
    ``TrainedModel``."""



@dataclass(frozen=True)
class Manifest:
    """What ``current.json`` says; cheap to read before every prediction."""

    version: str
    file: str
    hmac: str
    info: dict[str, Any]


@dataclass(frozen=True)
class KeptVersion:
    """A model version whose file is still on disk; ``saved_at`` is its write time (epoch s)."""

    version: str
    saved_at: float


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write ``payload`` so that readers see the old file or the whole new one, never a part."""
    make_private_dirs(path.parent)
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
        self.layout = ProjectLayout(data_dir)

    @contextlib.contextmanager
    def hold(self, project_id: int, name: str) -> Iterator[None]:
        path = self.layout.lock(project_id, name)
        make_private_dirs(path.parent)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            os.fchmod(fd, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


class ModelStore:
    """Reads and writes models of every project under one data dir.

    ``key`` signs and verifies model files (``backend/model_key.py``); without one (unit tests)
    a random key is drawn, so this instance reads only the models it wrote itself.
    """

    def __init__(self, data_dir: Path, keep_versions: int = 3, locks: ProjectLocks | None = None, *,
                 key: bytes | None = None, max_projects: int = DEFAULT_MAX_PROJECTS):
        self.layout = ProjectLayout(data_dir)
        self.data_dir = self.layout.data_dir
        self.keep_versions = keep_versions
        self.max_projects = max_projects
        self._key = key or secrets.token_bytes(32)
        make_private_dirs(self.data_dir)
        os.chmod(self.data_dir, 0o700)
        self.locks = locks or FileLocks(self.data_dir)

    def create_project(self, project_id: int) -> Path:
        """Make the project exist (``/setup``, admin writes); refused past ``max_projects``."""
        return self.layout.create(project_id, self.max_projects)

    def exists(self, project_id: int) -> bool:
        return self.layout.exists(project_id)

    def known_projects(self) -> set[int]:
        return self.layout.known()

    def manifest(self, project_id: int) -> Manifest | None:
        """What ``current.json`` says; None when there is no model yet. A malformed manifest
        raises :class:`StateFileError` naming the file."""
        path = self.layout.manifest(project_id)
        data = read_state(path)
        if data is None:
            return None
        try:
            manifest = Manifest(version=data["version"], file=data["file"], hmac=data.get("hmac", ""),
                                info=data.get("info", {}))
        except (KeyError, TypeError):
            raise StateFileError(path, "missing 'version' or 'file'") from None
        if not all(isinstance(v, str) for v in (manifest.version, manifest.file, manifest.hmac)) \
                or not isinstance(manifest.info, dict):
            raise StateFileError(path, "fields of the wrong type")
        return manifest

    def save(self, project_id: int, model: TrainedModel, info: dict[str, Any]) -> Manifest:
        """Write the model file, then switch ``current.json`` to it, then prune old versions."""
        payload = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
        models_dir = self.layout.models(project_id)
        file_name = f"{model.version}.pkl"
        atomic_write_bytes(models_dir / file_name, payload)
        manifest = Manifest(version=model.version, file=file_name, hmac=sign(self._key, payload), info=info)
        atomic_write_json(self.layout.manifest(project_id), {
            "version": manifest.version, "file": manifest.file, "hmac": manifest.hmac, "info": manifest.info,
        })
        self._prune(models_dir, keep=file_name)
        return manifest

    def load(self, project_id: int, manifest: Manifest) -> TrainedModel:
        """Load the file a manifest names; :class:`ModelLoadError` unless its HMAC verifies and
        it unpickles to a ``TrainedModel``."""
        path = self.layout.models(project_id) / Path(manifest.file).name
        try:
            payload = path.read_bytes()
        except OSError as exc:
            raise ModelLoadError(f"{path}: {exc.strerror or exc}") from None
        if not verifies(self._key, payload, manifest.hmac):
            raise ModelLoadError(f"{path} is not signed with this deployment's model key "
                                 "(LABELQUEUE_MODEL_KEY / LABELQUEUE_MODEL_KEY_FILE); refused unread")
        try:
            model = pickle.loads(payload)  # noqa: S301 - the HMAC above proves this deployment wrote it
        except Exception as exc:  # a signed but broken file: refuse it like any other
            raise ModelLoadError(f"{path} does not unpickle: {type(exc).__name__}: {exc}") from None
        if not isinstance(model, (TrainedModel, SpanModel)):
            raise ModelLoadError(f"{path} holds a {type(model).__name__}, not a TrainedModel or SpanModel")
        return model

    def kept_versions(self, project_id: int) -> list[KeptVersion]:
        """The model versions still on disk for a project (at most ``keep_versions``), newest first."""
        models_dir = self.layout.models(project_id)
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
        guards the flagged-failure list against concurrent read-modify-write, and ``tasks``
        serialises labelqueue's own updates of a project's tasks in Label Studio (the queue
        writer's and the control-overlap step's): Label Studio saves a whole task row on every
        update, so two at once can undo each other's fields.
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
        #: The manifest whose model was refused, per project: not read again until it changes.
        self._refused: dict[int, Manifest] = {}
        self._lock = threading.Lock()

    def current(self, project_id: int) -> TrainedModel | None:
        """The model in service. A refused file (bad HMAC, broken pickle, wrong type) or a
        malformed manifest leaves the previously loaded version in service."""
        with self._lock:
            cached = self._models.get(project_id)
        try:
            manifest = self.store.manifest(project_id)
        except StateFileError as exc:
            logger.error("project %s: %s; serving %s", project_id, exc, cached.version if cached else "no model")
            return cached
        if manifest is None:
            return None
        if cached is not None and cached.version == manifest.version:
            return cached
        with self._lock:
            if self._refused.get(project_id) == manifest:
                return cached
        try:
            model = self.store.load(project_id, manifest)
        except ModelLoadError as exc:
            logger.error("project %s: model %s refused (%s); serving %s", project_id, manifest.version, exc,
                         cached.version if cached else "no model")
            with self._lock:
                self._refused[project_id] = manifest
            return cached
        with self._lock:
            self._models[project_id] = model
            self._refused.pop(project_id, None)
        return model
