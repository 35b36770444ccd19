"""Per-project locks in Redis, with an expiry, for workers on several machines.

``flock`` on a shared filesystem is not dependable (NFS, SMB), so in RQ mode every project lock
(``train``, ``select``, ``measure``, ``failures``, ``tasks``, and each job's run lease) is a redis-py
``Lock`` with a short expiry that a background thread renews while the holder is alive. A
worker that dies (``kill -9``, a lost machine) stops renewing, so its lock lapses within
``ttl`` seconds and the next holder proceeds: no lock outlives its process for long, and a
lapsed run lease is how a dead job is recognised (``backend/jobs/rq_jobs.py``).
"""
from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator

from redis import Redis
from redis.exceptions import LockError

logger = logging.getLogger(__name__)

#: Seconds a lock survives its holder; renewed every third of it.
LOCK_TTL = 15.0


class RedisLocks:
    """``hold(project_id, name)``: the Redis counterpart of ``backend.store.FileLocks``."""

    def __init__(self, redis: Redis, *, ttl: float = LOCK_TTL, wait: float | None = None):
        self.redis = redis
        self.ttl = ttl
        self.wait = wait

    @staticmethod
    def key(project_id: int, name: str) -> str:
        return f"labelqueue:lock:{int(project_id)}:{name}"

    @contextlib.contextmanager
    def hold(self, project_id: int, name: str) -> Iterator[None]:
        lock = self.redis.lock(self.key(project_id, name), timeout=self.ttl, sleep=0.1,
                               blocking_timeout=self.wait, thread_local=False)
        if not lock.acquire():
            raise TimeoutError(f"project {project_id}: lock {name!r} still held after {self.wait}s")
        stop = threading.Event()
        renewer = threading.Thread(target=self._renew, args=(lock, stop), daemon=True,
                                   name=f"labelqueue-lock-{project_id}-{name}")
        renewer.start()
        try:
            yield
        finally:
            stop.set()
            renewer.join()
            with contextlib.suppress(LockError):
                lock.release()

    def _renew(self, lock, stop: threading.Event) -> None:
        while not stop.wait(self.ttl / 3):
            try:
                lock.reacquire()
            except LockError:
                logger.error("lock %s lapsed while held (process stalled for over %.0fs?)", lock.name, self.ttl)
                return
