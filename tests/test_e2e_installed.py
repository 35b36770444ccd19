"""The quickstart from a plain (non-editable) install: the labelling configs and demo data must
travel inside the package, not be read from a checkout.

The wheel is built from this repository and installed with ``--no-deps --target`` into a
folder that goes first on ``PYTHONPATH``, so its ``backend`` shadows the editable one while the
test environment's dependencies (Label Studio among them) are reused. The quickstart then runs
from a folder outside the repository until its first queue is written, and stops on Ctrl-C.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

from tests.helpers import REPO, wait_for

pytestmark = pytest.mark.e2e

STARTUP_TIMEOUT = 170


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A folder holding labelqueue installed from a wheel of this repository."""
    root = tmp_path_factory.mktemp("installed")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(root / "wheel"), str(REPO)],
                   check=True, capture_output=True)
    wheel = next((root / "wheel").glob("labelqueue-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(root / "site"),
                    str(wheel)], check=True, capture_output=True)
    return root


def test_the_wheel_carries_every_labelling_config_and_the_demo_data(installed):
    names = zipfile.ZipFile(next((installed / "wheel").glob("*.whl"))).namelist()
    shipped = {Path(n).name for n in names if n.startswith("backend/label_config/")}
    in_repo = {p.name for p in (REPO / "label_config").iterdir() if p.is_file()}
    assert in_repo <= shipped, f"missing from the wheel: {sorted(in_repo - shipped)}"


def test_quickstart_runs_from_a_plain_install_outside_the_repository(installed, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(installed / "site"), "PYTHONUNBUFFERED": "1",
           "LABELQUEUE_DATA_DIR": str(tmp_path / "data")}
    where = subprocess.run([sys.executable, "-c", "import backend; print(backend.__file__)"], env=env, cwd=tmp_path,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert where.startswith(str(installed / "site")), f"the test imported {where}, not the installed copy"
    process = subprocess.Popen([sys.executable, "-c", "from backend.cli import main; raise SystemExit(main())",
                                "quickstart", "--no-browser"], env=env, cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(line.rstrip() for line in process.stdout), daemon=True)
    reader.start()
    try:
        wait_for(lambda: any("Press Ctrl-C" in line for line in lines) or process.poll() is not None,
                 timeout=STARTUP_TIMEOUT, what="the installed quickstart to print its URL")
        assert process.poll() is None, f"quickstart exited with {process.returncode}:\n" + "\n".join(lines)
        assert any("Active learning queue" in line for line in lines), "\n".join(lines)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        code = process.wait(timeout=60)
        reader.join(timeout=5)
    assert code == 0, "\n".join(lines)
