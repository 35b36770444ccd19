"""Fixtures: a real Label Studio server and a real ``labelqueue serve``, both on 127.0.0.1.

Label Studio takes 20-40 s to start (migrations on a fresh data dir), so it is started once per
test session; each end-to-end test creates its own project. Both servers log to files in the
session's temp dir, and their tails are printed when a fixture fails to start.
"""
from __future__ import annotations

import csv
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("LABELQUEUE_DATASETS", REPO.parent / "shared" / "datasets"))
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    tail = log.read_text(errors="replace")[-4000:] if log.exists() else "(no log)"
    process.kill()
    pytest.fail(f"{url} did not come up within {timeout:.0f}s; log tail:\n{tail}")


def stop(process: subprocess.Popen) -> None:
    """SIGINT first (both servers shut down cleanly on it), then kill."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@dataclass(frozen=True)
class Server:
    url: str
    token: str
    log: Path
    data_dir: Path


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("label-studio")
    port, token = free_port(), secrets.token_hex(20)
    env = {**os.environ, "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir), "ML_BLOCK_LOCAL_IP": "false",
           "LATEST_VERSION_CHECK": "false", "SSRF_PROTECTION_ENABLED": "false",
           "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED": "false", "DEBUG": "false"}
    log = data_dir / "label-studio.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(BIN / "label-studio"), "start", "--no-browser", "--internal-host", "127.0.0.1",
             "-p", str(port), "--data-dir", str(data_dir), "--username", "admin@example.com",
             "--password", secrets.token_urlsafe(12), "--user-token", token,
             "--enable-legacy-api-token", "--log-level", "WARNING"],
            env=env, stdout=out, stderr=subprocess.STDOUT, cwd=data_dir)
    url = f"http://127.0.0.1:{port}"
    wait_until_up(f"{url}/health", process, log, timeout=240)
    yield Server(url=url, token=token, log=log, data_dir=data_dir)
    stop(process)


@pytest.fixture(scope="session")
def backend(label_studio: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``labelqueue serve`` with two gunicorn workers, as an admin would run it."""
    data_dir = tmp_path_factory.mktemp("labelqueue")
    port = free_port()
    env = {**os.environ, "LABELQUEUE_DATA_DIR": str(data_dir / "data"),
           "LABEL_STUDIO_URL": label_studio.url, "LABEL_STUDIO_API_KEY": label_studio.token,
           "LABELQUEUE_MIN_NEW_ANNOTATIONS": "1"}
    log = data_dir / "backend.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(BIN / "labelqueue"), "serve", "--host", "127.0.0.1", "--port", str(port),
             "--workers", "2"], env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_until_up(f"{url}/health", process, log, timeout=60)
    yield Server(url=url, token=label_studio.token, log=log, data_dir=data_dir / "data")
    stop(process)


@pytest.fixture(scope="session")
def ls_client(label_studio: Server):
    from label_studio_sdk import LabelStudio

    return LabelStudio(base_url=label_studio.url, api_key=label_studio.token, timeout=300)


def read_banking77(split: str) -> list[dict[str, str]]:
    path = DATASETS / "banking77" / f"{split}.csv"
    if not path.exists():
        pytest.fail(f"{path} is missing: the end-to-end tests read banking77 from ../shared/datasets")
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="session")
def banking77() -> dict[str, list[dict[str, str]]]:
    return {"train": read_banking77("train"), "test": read_banking77("test")}
