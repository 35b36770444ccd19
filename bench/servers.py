"""Start the HTTP servers the speed benchmark talks to, on loopback only.

Launching, health checks and stopping are ``backend.local.label_studio_server``'s (the same code the
end-to-end tests use); this module only knows the two servers' command lines.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from backend.local.label_studio_server import LocalServer, free_port, launch
from bench.data import REPO_ROOT


def labelqueue_server(data_dir: Path, log: Path, *, workers: int, threads: int) -> LocalServer:
    """``labelqueue serve`` (gunicorn) over ``data_dir``, exactly as the README starts it."""
    port = free_port()
    script = Path(sys.executable).parent / "labelqueue"  # the console script of this venv
    command = [str(script) if script.exists() else "labelqueue", "--log-level", "WARNING",
               "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
               "--threads", str(threads)]
    return launch(command, port=port, log=log, env={**os.environ, "LABELQUEUE_DATA_DIR": str(data_dir)},
                  timeout=60, cwd=REPO_ROOT, name="labelqueue")


def example_server(model_dir: Path, log: Path, *, workers: int, threads: int,
                   reload: bool = False) -> LocalServer:
    """The official example mirror (``bench/official_example.py``) under gunicorn."""
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers",
               str(workers), "--threads", str(threads), "--timeout", "0", "--chdir",
               str(REPO_ROOT), "bench.official_example:create_app()"]
    env = {"EXAMPLE_MODEL_DIR": str(model_dir), "EXAMPLE_RELOAD": "1" if reload else "0"}
    return launch(command, port=port, log=log, env={**os.environ, **env}, timeout=60, cwd=REPO_ROOT,
                  name="example (reload per request)" if reload else "example")
