"""gunicorn embedded as a library, so ``labelqueue serve`` needs no separate config file.

``preload_app`` stays off: each worker builds its own app after the fork, so no training
thread or open file lock is ever shared across processes.

Prometheus counters of all workers are summed through the client's multiprocess mode: the
master points ``PROMETHEUS_MULTIPROC_DIR`` at ``<data dir>/prometheus`` before it forks (files
of processes no longer alive are removed first), and ``child_exit`` retires a dead worker's
live gauges.
"""
from __future__ import annotations

import os
from pathlib import Path

from gunicorn.app.base import BaseApplication

from backend.settings import Settings


class GunicornServer(BaseApplication):
    def __init__(self, settings: Settings, *, bind: str, workers: int, threads: int, log_level: str):
        self.settings = settings
        self.options = {
            "bind": bind, "workers": workers, "threads": threads, "worker_class": "gthread",
            "timeout": 120, "graceful_timeout": 10, "loglevel": log_level.lower(),
            "accesslog": "-", "preload_app": False, "child_exit": retire_worker_metrics,
        }
        prepare_multiprocess_dir(settings.data_dir / "prometheus")
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        from backend.web.app import create_app

        return create_app(self.settings)


def prepare_multiprocess_dir(folder: Path) -> None:
    """Before the fork: every process of this server writes its Prometheus values under ``folder``.
    Files of processes that are gone (an earlier run) are removed, so their counts are not added
    to this run's; files of live ``labelqueue worker`` processes sharing the data dir stay."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    for path in folder.glob("*.db"):
        pid = path.stem.rsplit("_", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            path.unlink(missing_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)


def retire_worker_metrics(server, worker) -> None:
    """gunicorn's ``child_exit`` hook: a dead worker's live gauges leave the scrape."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
