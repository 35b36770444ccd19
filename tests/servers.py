"""Servers only tests and benchmarks start: a throwaway Redis and ``labelqueue worker``
processes, both on 127.0.0.1.

The Redis has no persistence (``--save ''``, no AOF), a free port and its log in the given
folder; deployments point ``LABELQUEUE_REDIS_URL`` at the Redis they already run. The
product's own launchers (Label Studio and the backend, which the quickstart uses too) live in
``backend/local/label_studio_server.py``.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError
from rq import Worker

from backend.local.label_studio_server import LocalServer, StartupError, backend_env, free_port


def start_redis(folder: Path, *, timeout: float = 20) -> LocalServer:
    binary = shutil.which("redis-server")
    if binary is None:
        raise StartupError("redis-server is not installed (Debian: apt-get install redis-server; .ci/run does)")
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = folder / "redis.log"
    command = [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
               "--dir", str(folder), "--logfile", str(log)]
    server = LocalServer(url=f"redis://127.0.0.1:{port}", process=subprocess.Popen(command), log=log, name="redis")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and server.process.poll() is None:
        try:
            if Redis.from_url(server.url).ping():
                return server
        except RedisError:
            time.sleep(0.1)
    server.stop()
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"
    raise StartupError(f"redis-server on {server.url} did not answer within {timeout:.0f}s; log tail:\n{tail}")


def start_worker(data_dir: Path, *, label_studio: LocalServer | None, name: str,
                 env: dict[str, str] | None = None, queues: tuple[str, ...] = (), timeout: float = 60) -> LocalServer:
    """``labelqueue worker`` beside :func:`start_backend`'s server (same data dir and settings;
    ``env`` must set ``LABELQUEUE_REDIS_URL``); returns once RQ lists it. In a session of its
    own, so a Ctrl-C meant for the caller reaches it only through :meth:`LocalServer.stop`."""
    full_env = backend_env(data_dir, label_studio, env)
    log = data_dir / f"{name}.log"
    command = [str(Path(sys.executable).parent / "labelqueue"), "worker", "--name", name]
    if queues:
        command += ["--queues", *queues]
    with open(log, "ab") as out:
        process = subprocess.Popen(command, env=full_env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    worker = LocalServer(url=full_env["LABELQUEUE_REDIS_URL"], process=process, log=log, name=name)
    redis = Redis.from_url(worker.url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if any(w.name == name for w in Worker.all(connection=redis)):
            return worker
        time.sleep(0.2)
    worker.stop()
    raise StartupError(f"labelqueue worker {name} did not register within {timeout:.0f}s; log tail:\n"
                       f"{log.read_text(errors='replace')[-4000:]}")
