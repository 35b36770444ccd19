"""Where every piece of state lives on disk: the one module that names the data dir's paths.

Layout (all under ``LABELQUEUE_DATA_DIR``; every folder is created 0700, every file 0600)::

    labelqueue.sqlite3                    cycles, feedback, measurements (backend/measure/cycles_db.py)
    projects/<id>/                        one folder per project; <id> is ASCII digits, 1..2**31-1
        current.json                      manifest of the model in service: version, file, HMAC
        models/<version>.pkl              pickled TrainedModel (backend/store.py)
        <name>.lock                       flocks: train, select, pool, measure, failures, tasks
        retrain.pending                   a retrain was requested and has not started (runtime.py)
        retrain.running                   that retrain was taken up and has not finished (runtime.py)
        labelled.json                     training set of the model in service (loop/training.py)
        queue.json                        the latest queue written to Label Studio (loop/cycle.py)
        failures.json                     tasks flagged as production failures (loop/failures.py)
        options.json                      the admin's extra params from /setup (loop/project_options.py)
        mix_adjustment.json               automatic lowering of the uncertain share (loop/mix_adjustment.py)
        connection.json                   Label Studio host and token sent by /setup (labelstudio/gateway.py)
        pool/current.json, pool/g<N>/     the cached task pool, by generation (loop/pool_cache.py)
        scores/<run>/<chunk>.{json,npy}   pool scoring split over RQ workers (jobs/pool_scoring.py)

Naming a path never creates anything: a project folder exists only after :meth:`create`
(``/setup``, an admin write such as flagging failures, or the CLI), so a read or a forged
webhook for an unknown id leaves no trace. :meth:`known` lists only real project folders.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from backend.ids import require_project_id, valid_project_id

DB_NAME = "labelqueue.sqlite3"
PROJECTS = "projects"
#: The outcome of a background job for a project whose folder is gone: it does nothing and is
#: not retried, so a deleted project, or one named only by a request, costs nothing.
NOT_CONNECTED = "project is not connected to this backend; nothing to do"


class ProjectNotFound(LookupError):
    """A project this backend has no folder for: Label Studio never connected it (``/setup``)."""

    def __init__(self, project_id: int):
        super().__init__(f"project {project_id} is not connected to this backend (Label Studio's /setup "
                         "creates it when the model is connected)")
        self.project_id = project_id


class TooManyProjects(RuntimeError):
    """Creating one more project folder would pass ``LABELQUEUE_MAX_PROJECTS``."""


class StateFileError(RuntimeError):
    """A state file exists but is empty, truncated or not what we wrote; the message names it."""

    def __init__(self, path: Path, problem: str):
        super().__init__(f"state file {path} is unreadable ({problem}); fix or delete it")
        self.path = path


#: Retrain markers (see ``Runtime._marked_force``): requested, and taken up but not finished.
PENDING_RETRAIN = "retrain.pending"
RUNNING_RETRAIN = "retrain.running"


def make_private_dirs(path: Path) -> None:
    """``mkdir -p`` with every folder it creates set to 0700 (``mkdir(parents=True, mode=...)``
    applies the mode to the last folder only, and the umask may narrow it further)."""
    missing = []
    for folder in (path, *path.parents):
        if folder.is_dir():
            break
        missing.append(folder)
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            continue
        os.chmod(folder, 0o700)


def read_state(path: Path, kind: type = dict) -> Any | None:
    """A JSON state file's content; ``None`` when it does not exist. Empty, malformed or of the
    wrong type (``kind``) raises :class:`StateFileError` naming the file: silently reading it as
    empty would let the next write erase what it held."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateFileError(path, exc.strerror or type(exc).__name__) from None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise StateFileError(path, "empty" if not text.strip() else "not valid JSON") from None
    if not isinstance(data, kind):
        raise StateFileError(path, f"expected a JSON {'object' if kind is dict else kind.__name__}")
    return data


class ProjectLayout:
    """The paths of one data dir; see the module docstring for what each holds."""

    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)
        self.projects_root = self.data_dir / PROJECTS
        self.db = self.data_dir / DB_NAME

    def project(self, project_id: int) -> Path:
        """The project's folder (not created; a bad id raises ``InvalidProjectId``)."""
        return self.projects_root / str(require_project_id(project_id))

    def exists(self, project_id: int) -> bool:
        return self.project(project_id).is_dir()

    def require(self, project_id: int) -> Path:
        """The folder of a project that exists, else :class:`ProjectNotFound`."""
        path = self.project(project_id)
        if not path.is_dir():
            raise ProjectNotFound(project_id)
        return path

    def create(self, project_id: int, max_projects: int) -> Path:
        """The project's folder, created (0700) if needed, unless that would pass ``max_projects``."""
        path = self.project(project_id)
        if path.is_dir():
            return path
        if len(self.known()) >= max_projects:
            raise TooManyProjects(f"this backend already holds {max_projects} projects "
                                  f"(LABELQUEUE_MAX_PROJECTS); project {project_id} was not created")
        make_private_dirs(path)
        return path

    def known(self) -> set[int]:
        """Ids of the real project folders: ASCII digits in range, and a folder (``projects/²``,
        ``projects/0`` or a stray file are ignored)."""
        try:
            entries = list(self.projects_root.iterdir())
        except FileNotFoundError:
            return set()
        return {int(p.name) for p in entries if valid_project_id(p.name) and p.is_dir()}

    def manifest(self, project_id: int) -> Path:
        return self.project(project_id) / "current.json"

    def models(self, project_id: int) -> Path:
        return self.project(project_id) / "models"

    def lock(self, project_id: int, name: str) -> Path:
        return self.project(project_id) / f"{name}.lock"

    def retrain_pending(self, project_id: int) -> Path:
        return self.project(project_id) / PENDING_RETRAIN

    def retrain_running(self, project_id: int) -> Path:
        return self.project(project_id) / RUNNING_RETRAIN

    def labelled(self, project_id: int) -> Path:
        return self.project(project_id) / "labelled.json"

    def queue(self, project_id: int) -> Path:
        return self.project(project_id) / "queue.json"

    def failures(self, project_id: int) -> Path:
        return self.project(project_id) / "failures.json"

    def options(self, project_id: int) -> Path:
        return self.project(project_id) / "options.json"

    def mix_adjustment(self, project_id: int) -> Path:
        return self.project(project_id) / "mix_adjustment.json"

    def connection(self, project_id: int) -> Path:
        return self.project(project_id) / "connection.json"

    def pool(self, project_id: int) -> Path:
        return self.project(project_id) / "pool"

    def scores(self, project_id: int) -> Path:
        return self.project(project_id) / "scores"
