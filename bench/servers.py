"""Start and stop the HTTP servers the speed benchmark talks to, on loopback only.

Each server runs as its own process group so stopping it ends the gunicorn master and its
workers together, and nothing else. Output goes to a log file next to the server's data, so a
server that fails to start can be diagnosed from the message this module raises.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench.data import REPO_ROOT


class ServerStartError(RuntimeError):
    """A server did not answer its health check in time; the message names its log."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A running server: its base URL, process and log file."""

    name: str
    url: str
    process: subprocess.Popen
    log: Path

    def stop(self) -> None:
        """SIGTERM the server's process group (its gunicorn master and workers), then wait."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def start(name: str, command: list[str], env: dict[str, str], port: int, log: Path,
          timeout: float = 60.0) -> Server:
    """Run ``command`` and wait until ``GET /health`` answers on ``port``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    handle = log.open("wb")
    process = subprocess.Popen(command, cwd=REPO_ROOT, env={**os.environ, **env}, stdout=handle,
                               stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerStartError(f"{name} exited with code {process.returncode}; see {log}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return Server(name, url, process, log)
        except OSError:
            time.sleep(0.2)
    Server(name, url, process, log).stop()
    raise ServerStartError(f"{name} did not answer {url}/health within {timeout:.0f} s; see {log}")


def labelqueue_server(data_dir: Path, log: Path, *, workers: int, threads: int) -> Server:
    """``labelqueue serve`` (gunicorn) over ``data_dir``, exactly as the README starts it."""
    port = free_port()
    import sys

    script = Path(sys.executable).parent / "labelqueue"  # the console script of this venv
    command = [str(script) if script.exists() else "labelqueue", "--log-level", "WARNING",
               "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
               "--threads", str(threads)]
    return start("labelqueue", command, {"LABELQUEUE_DATA_DIR": str(data_dir)}, port, log)


def example_server(model_dir: Path, log: Path, *, workers: int, threads: int,
                   reload: bool = False) -> Server:
    """The official example mirror (``bench/official_example.py``) under gunicorn."""
    import sys

    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers",
               str(workers), "--threads", str(threads), "--timeout", "0", "--chdir",
               str(REPO_ROOT), "bench.official_example:create_app()"]
    env = {"EXAMPLE_MODEL_DIR": str(model_dir), "EXAMPLE_RELOAD": "1" if reload else "0"}
    return start("example (reload per request)" if reload else "example", command, env, port, log)


def post_json(url: str, body: dict, timeout: float = 300.0) -> dict:
    """One JSON POST with the standard library, for setup calls outside timed loops."""
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as response:
        return json.loads(response.read())
