"""The two servers a quickstart runs on 127.0.0.1, started side by side and stopped together.

Label Studio's first start on a fresh database spends 25-50 s in migrations. The quickstart
migrates once into a template database kept beside its runs (one per Label Studio version) and
copies it into every fresh data dir, so only the first quickstart on a machine pays for them.
The backend boots while Label Studio does: it only needs Label Studio's URL and the admin's
token. The port is picked after the migrations, right before Label Studio starts, so that a port
taken during a long first migration cannot send the backend to someone else's server.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from backend.local.label_studio_server import LocalServer, free_port, start_backend, start_label_studio
from backend.local.quickstart_inputs import QuickstartError

__all__ = ["Announce", "Servers", "label_studio_executable", "migrated_template", "new_run_dir", "template_path"]

#: ``announce(doing, done)``: a context manager that shows a step while it runs.
Announce = Callable[[str, str], AbstractContextManager]


@dataclass
class Servers:
    """The two processes a quickstart owns; ``stop`` is safe to call at any point."""

    run_dir: Path
    label_studio: LocalServer | None = None
    backend: LocalServer | None = None
    #: Joins the thread still starting Label Studio (set while it runs).
    starting: Callable[[], LocalServer] | None = None
    token: str = ""

    def start(self, root: Path, *, label_studio_port: int, backend_port: int, token: str,
              backend_env: dict[str, str], announce: Announce) -> None:
        """Label Studio (on a thread: it is the slow one) and the backend, booting side by side.

        ``root`` holds the template database; ports are the preferred ones (any free port if
        taken); ``token`` becomes the admin's legacy API token, which the backend uses.
        """
        self.token = token
        chosen: dict[str, int] = {}
        port_chosen = threading.Event()

        def label_studio() -> LocalServer:
            try:
                data_dir = _prepare_label_studio_dir(root, self.run_dir, announce)
                chosen["port"] = free_port(label_studio_port)
            finally:
                port_chosen.set()
            return start_label_studio(data_dir, port=chosen["port"], token=token)

        self.starting = _in_background(label_studio)
        while not port_chosen.wait(0.2):  # short waits keep Ctrl-C responsive
            pass
        if "port" not in chosen:
            self.starting()  # preparing the data dir failed: re-raises its error
        url = f"http://127.0.0.1:{chosen['port']}"
        env = {"LABEL_STUDIO_URL": url, "LABEL_STUDIO_API_KEY": token, **backend_env}
        self.backend = start_backend(self.run_dir / "backend", label_studio=None, port=backend_port, env=env)
        self.label_studio = self.starting()
        if self.label_studio.url != url:
            raise QuickstartError(f"Label Studio came up on {self.label_studio.url}, not {url} as the backend "
                                  "was told (the port was taken meanwhile); run the quickstart again")

    def stop(self) -> None:
        """Backend first (so no webhook is lost mid-write), then Label Studio; a Label Studio
        still starting is waited for and then stopped, so no process outlives the command."""
        if self.label_studio is None and self.starting is not None:
            try:
                self.label_studio = self.starting()
            except Exception:  # it failed to start and has already stopped itself
                pass
        for server in (self.backend, self.label_studio):
            if server is not None:
                server.stop()

    def dead(self) -> LocalServer | None:
        """A server that has exited, if any."""
        return next((s for s in (self.backend, self.label_studio) if s and s.process.poll() is not None), None)

    def write_connection(self, project_id: int) -> Path:
        """``<run dir>/connection.json`` (owner-only): what scripts and ``labelqueue select``
        need to reach this run (``LABEL_STUDIO_URL``, ``LABEL_STUDIO_API_KEY``, ``LABELQUEUE_DATA_DIR``)."""
        path = self.run_dir / "connection.json"
        details = {"label_studio_url": self.label_studio.url, "label_studio_api_key": self.token,
                   "backend_url": self.backend.url, "project_id": project_id,
                   "labelqueue_data_dir": str(self.run_dir / "backend" / "data")}
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
            json.dump(details, handle, indent=2)
        return path


def new_run_dir(root: Path) -> Path:
    """A fresh directory per run, named by start time; earlier runs are left alone."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = root / stamp
    suffix = 1
    while run_dir.exists():
        suffix += 1
        run_dir = root / f"{stamp}-{suffix}"
    run_dir.mkdir(parents=True, mode=0o700)
    return run_dir


def label_studio_executable() -> Path:
    return Path(sys.executable).parent / "label-studio"


def migrated_template(root: Path) -> Path:
    """An empty, fully migrated Label Studio database for the installed version (built once).

    ``label-studio version`` applies the migrations and exits without creating any user, so the
    template holds schema only; every run still gets its own admin, password and token.
    """
    template = template_path(root)
    if template.exists():
        return template
    template.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=template.parent) as scratch:
        env = {**os.environ, "LABEL_STUDIO_BASE_DATA_DIR": scratch, "SENTRY_DSN": "",
               "COLLECT_ANALYTICS": "false", "LATEST_VERSION_CHECK": "false", "DEBUG": "false"}
        done = subprocess.run([str(label_studio_executable()), "version", "--data-dir", scratch], env=env,
                              cwd=scratch, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
        database = Path(scratch) / "label_studio.sqlite3"
        if done.returncode != 0 or not database.exists():
            raise QuickstartError(f"Label Studio could not create its database:\n{done.stdout.decode()[-3000:]}")
        os.replace(database, template)
    return template


def template_path(root: Path) -> Path:
    return root / "template" / f"label-studio-{metadata.version('label-studio')}.sqlite3"


def _prepare_label_studio_dir(root: Path, run_dir: Path, announce: Announce) -> Path:
    """``<run dir>/label-studio`` with a database copied from the template (built if missing)."""
    data_dir = run_dir / "label-studio"
    data_dir.mkdir(parents=True)
    if not template_path(root).exists():
        with announce("migrating Label Studio's database (first run on this machine only, 25-50 s)",
                      "Label Studio's database migrated (first run only; later runs copy it)"):
            migrated_template(root)
    shutil.copyfile(template_path(root), data_dir / "label_studio.sqlite3")
    return data_dir


def _in_background(work: Callable[[], LocalServer]) -> Callable[[], LocalServer]:
    """Run ``work`` on a thread; the returned callable joins it and re-raises its error."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # handed to the joining thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="label-studio-start", daemon=True)
    thread.start()

    def join() -> LocalServer:
        while thread.is_alive():
            thread.join(0.2)
        if "error" in outcome:
            raise outcome["error"]
        return outcome["value"]

    return join
