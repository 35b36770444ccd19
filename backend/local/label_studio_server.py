"""Start a throwaway Label Studio on 127.0.0.1, for end-to-end tests and benchmarks.

It gets a fresh data dir, a free port, an admin with a random password and a legacy API token
enabled at start (``--enable-legacy-api-token``), and the environment a loopback ML backend
needs: ``ML_BLOCK_LOCAL_IP=false`` so Label Studio may call it and ``SSRF_PROTECTION_ENABLED=false``
so its webhooks may reach it. ``SENTRY_DSN`` and ``FRONTEND_SENTRY_DSN`` are emptied and
``COLLECT_ANALYTICS`` is off, so neither Label Studio nor its pages report to the internet.
The first start of a data dir runs migrations (20-40 s).
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ADMIN_EMAIL = "admin@example.com"


class StartupError(RuntimeError):
    """A server did not answer its health check in time; the message holds its log tail."""


class BackendCallError(RuntimeError):
    """A call to a server we started could not be made, or answered an unexpected status."""


def call_json(method: str, url: str, *, timeout: float, ok: tuple[int, ...] = (200, 201, 202)) -> tuple[int, Any]:
    """``(status, JSON body)`` of one call to a loopback server (``None`` for a body that is not
    JSON); ``BackendCallError`` when it cannot be made or answers a status outside ``ok``.
    Plain ``urllib``: Label Studio's client library belongs to the gateway, not to local servers."""
    request = urllib.request.Request(url, method=method, data=b"" if method != "GET" else None,
                                     headers={"Content-Type": "application/json"} if method != "GET" else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    except (OSError, ValueError) as error:
        raise BackendCallError(f"{method} {url} failed: {error}") from error
    if status not in ok:
        raise BackendCallError(f"{method} {url} answered HTTP {status}")
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, None


@dataclass
class LocalServer:
    """A server process we started, with where to reach it and its log."""

    url: str
    process: subprocess.Popen
    log: Path
    token: str = ""
    password: str = ""
    name: str = ""

    def stop(self, timeout: float = 15) -> None:
        """SIGINT first (Label Studio and gunicorn both shut down cleanly on it), then kill."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def free_port(preferred: int | None = None) -> int:
    """``preferred`` if it is free on 127.0.0.1, else any free port."""
    for port in ([preferred] if preferred else []) + [0]:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise OSError("no free port on 127.0.0.1")


def wait_until_up(server: LocalServer, path: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and server.process.poll() is None:
        try:
            with urllib.request.urlopen(server.url + path, timeout=2) as response:
                if response.status == 200:
                    return
        except (OSError, ValueError):  # refused, reset, timed out, or an HTTP error status
            pass
        time.sleep(0.5)
    tail = server.log.read_text(errors="replace")[-4000:] if server.log.exists() else "(no log)"
    exited = server.process.poll()
    server.stop()
    why = f"exited with code {exited}" if exited is not None else f"did not come up within {timeout:.0f}s"
    raise StartupError(f"{server.url}{path} {why}; log tail:\n{tail}")


def launch(command: list[str], *, port: int, log: Path, env: dict[str, str], timeout: float,
           cwd: Path | None = None, name: str = "", **identity: str) -> LocalServer:
    """Run ``command`` (a server listening on ``port``), log to ``log``, wait for ``/health``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=cwd)
    server = LocalServer(url=f"http://127.0.0.1:{port}", process=process, log=log, name=name, **identity)
    wait_until_up(server, "/health", timeout)
    return server


def start_label_studio(data_dir: Path, *, port: int | None = None, timeout: float = 240,
                       token: str | None = None) -> LocalServer:
    """Label Studio from the ``label-studio`` package installed beside this Python.

    ``token``: the admin's legacy API token (40 hex digits; default random), for callers that
    start the backend before Label Studio has answered.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    port, password = free_port(port), secrets.token_urlsafe(12)
    token = token or secrets.token_hex(20)
    env = {**os.environ, "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir), "ML_BLOCK_LOCAL_IP": "false",
           "LATEST_VERSION_CHECK": "false", "SSRF_PROTECTION_ENABLED": "false",
           "SENTRY_DSN": "", "FRONTEND_SENTRY_DSN": "", "COLLECT_ANALYTICS": "false",
           "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED": "false", "DEBUG": "false"}
    command = [str(Path(sys.executable).parent / "label-studio"), "start", "--no-browser",
               "--internal-host", "127.0.0.1", "-p", str(port), "--data-dir", str(data_dir),
               # ``--opt=value``: a generated password may start with "-", which argparse would
               # otherwise read as an option (seen: "argument --password: expected one argument").
               f"--username={ADMIN_EMAIL}", f"--password={password}", f"--user-token={token}",
               "--enable-legacy-api-token", "--log-level", "WARNING"]
    return launch(command, port=port, log=data_dir / "label-studio.log", env=env, timeout=timeout,
                  cwd=data_dir, name="label-studio", token=token, password=password)


def backend_env(data_dir: Path, label_studio: LocalServer | None, env: dict[str, str] | None) -> dict[str, str]:
    """The environment ``labelqueue serve`` and ``labelqueue worker`` share: data dir, Label Studio."""
    full_env = {**os.environ, "LABELQUEUE_DATA_DIR": str(data_dir / "data"), **(env or {})}
    if label_studio is not None:
        full_env.update(LABEL_STUDIO_URL=label_studio.url, LABEL_STUDIO_API_KEY=label_studio.token)
    return full_env


def start_backend(data_dir: Path, *, label_studio: LocalServer | None, port: int | None = None,
                  workers: int = 1, env: dict[str, str] | None = None, timeout: float = 60) -> LocalServer:
    """``labelqueue serve`` as an admin would run it, pointed at ``label_studio``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port(port)
    full_env = backend_env(data_dir, label_studio, env)
    command = [str(Path(sys.executable).parent / "labelqueue"), "serve", "--host", "127.0.0.1",
               "--port", str(port), "--workers", str(workers)]
    return launch(command, port=port, log=data_dir / "backend.log", env=full_env, timeout=timeout,
                  name="labelqueue")
