"""Start a throwaway Redis on 127.0.0.1 (Debian's ``redis-server``), for tests and benchmarks.

No persistence (``--save ''``, no AOF), a free port, its log in the given folder. Production
deployments point ``LABELQUEUE_REDIS_URL`` at the Redis they already run (Label Studio's own, for
example); this is only for runs that need a Redis of their own.
"""
from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError

from backend.local.label_studio_server import LocalServer, StartupError, free_port


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
