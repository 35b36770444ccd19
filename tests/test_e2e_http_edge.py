"""The HTTP edge of a real ``labelqueue serve --workers 2``: slow clients, gunicorn's control
socket, and a webhook flood spread over both worker processes."""
from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from backend.local.label_studio_server import LocalServer, start_backend
from tests.helpers import SLOW_ENV, connect_backend, fit_started, retrain_markers, slow_project, wait_for
from tests.slow_classifier import RELEASE_MARKER, STARTED_MARKER

pytestmark = pytest.mark.e2e

SLOW_CLIENTS = 50
#: Every slow-client test ends within this many seconds, whatever the server does.
SLOW_CLIENT_BUDGET = 60.0


@pytest.fixture(scope="module")
def bare_backend(tmp_path_factory: pytest.TempPathFactory) -> LocalServer:
    """``labelqueue serve --workers 2`` with no Label Studio, HOME and XDG_RUNTIME_DIR of its own."""
    folder = tmp_path_factory.mktemp("edge")
    env = {"HOME": str(folder / "home"), "XDG_RUNTIME_DIR": str(folder / "run")}
    (folder / "home").mkdir()
    (folder / "run").mkdir()
    server = start_backend(folder, label_studio=None, workers=2, env=env)
    server.home = folder  # type: ignore[attr-defined]
    yield server
    server.stop()


class SlowClients:
    """Connections that send one more request-header line every half second and never finish."""

    def __init__(self, url: str, count: int, deadline: float):
        host, port = url.removeprefix("http://").split(":")
        self.sockets = [socket.create_connection((host, int(port)), timeout=5) for _ in range(count)]
        for sock in self.sockets:
            sock.sendall(b"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        self.rounds = 0
        self.deadline = deadline
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._drip, daemon=True)
        self.thread.start()

    def _drip(self) -> None:
        while not self.stop.is_set() and time.monotonic() < self.deadline:
            for i, sock in enumerate(self.sockets):
                try:
                    sock.sendall(f"X-Slow-{self.rounds}: {i}\r\n".encode())
                except OSError:
                    pass  # the server may drop a slow client; that is a defence too
            self.rounds += 1
            self.stop.wait(0.5)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        for sock in self.sockets:
            sock.close()


def test_health_answers_within_a_second_while_50_slow_clients_are_connected(bare_backend):
    clients = SlowClients(bare_backend.url, SLOW_CLIENTS, deadline=time.monotonic() + SLOW_CLIENT_BUDGET)
    try:
        # One check per half-second round of header lines, for 10 s: a pool of request threads
        # answers the first few, then is tied up by the slow clients (seen: 10 s without answer).
        for round_ in range(4, 24):
            wait_for(lambda n=round_: clients.rounds >= n, 20, f"the slow clients to send header line {round_}")
            response = httpx.get(f"{bare_backend.url}/health", timeout=1.0)
            assert response.status_code == 200 and response.json()["status"] == "UP"
    finally:
        clients.close()


def test_gunicorn_opens_no_control_socket(bare_backend):
    home = bare_backend.home
    assert not (home / "run" / "gunicorn.ctl").exists()
    assert not (home / "home" / ".gunicorn").exists()


def test_a_script_name_header_is_not_a_500(bare_backend):
    response = httpx.get(f"{bare_backend.url}/health", headers={"SCRIPT_NAME": "/elsewhere"}, timeout=10)
    assert response.status_code < 500


def retrain_runs(log: Path, project_id: int) -> int:
    """Retrains that produced a model, as both workers log them."""
    return log.read_text(errors="replace").count(f"project {project_id}: retrain done")


def test_200_start_training_webhooks_to_two_workers_give_at_most_two_trainings(label_studio, ls_client, banking77,
                                                                              tmp_path):
    project, tasks, annotate = slow_project(ls_client, banking77, "labelqueue e2e webhook flood", seed=11)
    annotate(tasks[:40])
    started, release = tmp_path / "fit-started", tmp_path / "fit-release"
    env = {**SLOW_ENV, STARTED_MARKER: str(started), RELEASE_MARKER: str(release)}
    backend = start_backend(tmp_path, label_studio=label_studio, workers=2, env=env)
    try:
        connect_backend(backend.url, project)
        force = {"action": "START_TRAINING", "project": {"id": project.id}}
        assert httpx.post(f"{backend.url}/webhook", json=force, timeout=10).status_code == 200
        wait_for(lambda: fit_started(started, 40), 60, "the first retrain's fit to start")

        def send(_):
            return httpx.post(f"{backend.url}/webhook", json=force, timeout=30).status_code

        with ThreadPoolExecutor(8) as pool:  # both workers get a share of the flood
            assert set(pool.map(send, range(199))) == {200}
        release.write_text("go")  # the first fit ends only now, after the whole flood

        project_dir = tmp_path / "data" / "projects" / str(project.id)
        wait_for(lambda: retrain_runs(backend.log, project.id) >= 1 and not retrain_markers(project_dir), 120,
            "every retrain owed to have run")
        assert retrain_runs(backend.log, project.id) <= 2
    finally:
        backend.stop()
