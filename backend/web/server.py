"""gunicorn embedded as a library, so ``labelqueue serve`` needs no separate config file.

Requests are served by gevent: each connection is a greenlet, not a thread, so clients that send
their request slowly (or never finish it) park a greenlet each and cannot starve ``/health`` or
Label Studio's calls, as they did with a fixed pool of request threads. Background jobs keep
running on native threads (see :class:`NativeThreadsGeventWorker`).

``preload_app`` stays off: each worker builds its own app after the fork, so no training
thread or open file lock is ever shared across processes. Only the first worker forked at start
resumes interrupted retrains (plus any worker forked later to replace one that died), so a
restart of a multi-worker server resumes each retrain once.

gunicorn's control socket (``gunicornc``, since version 24) is disabled: its default path is
shared by every gunicorn of the same user, and starting one server removed another's. No
``SCRIPT_NAME`` / ``PATH_INFO`` is taken from request headers (``forwarder_headers``): gunicorn
trusts them from loopback by default and answered a mismatch with a 500; the backend is served
at the root of its URL.

Prometheus counters of all workers are summed through the client's multiprocess mode: the
master points ``PROMETHEUS_MULTIPROC_DIR`` at ``<data dir>/prometheus`` before it forks (files
of processes no longer alive are removed first), and ``child_exit`` retires a dead worker's
live gauges.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from gevent import monkey, socket
from gunicorn.app.base import BaseApplication
from gunicorn.workers.ggevent import GeventWorker

from backend.layout import make_private_dirs
from backend.settings import Settings


class NativeThreadsGeventWorker(GeventWorker):
    """gunicorn's gevent worker, minus the patching of ``threading``.

    The retrain, selection and pool-sync schedulers run CPU-bound scikit-learn and NumPy work on
    a thread pool. Patched into greenlets, one retrain would hold the event loop for its whole
    duration and no request (``/health`` included) would be answered meanwhile. Native threads
    share the GIL with the request loop instead, as they did under the threaded worker. Sockets,
    ``select`` and ``time`` are still patched: in a native thread the SDK's httpx calls run on
    that thread's own gevent hub, which gevent supports. ``queue`` stays native too: the thread
    pools hand jobs to their threads through ``queue.SimpleQueue``, and gevent's version cannot
    wake a native thread from a request's greenlet (the second job requested in a worker's life
    then never started: ``tests/test_e2e_faults.py`` caught it).
    """

    def patch(self) -> None:
        monkey.patch_all(thread=False, queue=False)
        self.sockets = [socket.socket(s.FAMILY, socket.SOCK_STREAM, fileno=s.sock.detach()) for s in self.sockets]


WORKER_CLASS = f"{NativeThreadsGeventWorker.__module__}.{NativeThreadsGeventWorker.__qualname__}"


class GunicornServer(BaseApplication):
    def __init__(self, settings: Settings, *, bind: str, workers: int, connections: int, log_level: str):
        self.settings = settings
        self.options = {
            "bind": bind, "workers": workers, "worker_class": WORKER_CLASS, "worker_connections": connections,
            "timeout": 120, "graceful_timeout": 10, "loglevel": log_level.lower(),
            "accesslog": "-", "preload_app": False, "control_socket_disable": True, "forwarder_headers": "",
            "pre_fork": self._pre_fork, "child_exit": retire_worker_metrics,
        }
        self._forks = 0
        self._resume_in_next_worker = True
        prepare_multiprocess_dir(settings.data_dir / "prometheus")
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def _pre_fork(self, arbiter: Any, worker: Any) -> None:
        """Runs in the master before each fork; the child inherits the decision."""
        self._forks += 1
        self._resume_in_next_worker = self._forks == 1 or self._forks > self.options["workers"]

    def load(self):
        from backend.web.app import create_app

        return create_app(self.settings, resume=self._resume_in_next_worker)


def prepare_multiprocess_dir(folder: Path) -> None:
    """Before the fork: every process of this server writes its Prometheus values under ``folder``.
    Files of processes that are gone (an earlier run) are removed, so their counts are not added
    to this run's; files of live ``labelqueue worker`` processes sharing the data dir stay."""
    make_private_dirs(folder)
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
