"""Retrains owed are recorded on disk, so gunicorn workers with schedulers of their own still
retrain at most once after the run in progress, and a restart resumes a retrain once."""
from __future__ import annotations

import threading
import time

import pytest

import backend.runtime as runtime_module
from backend.layout import PENDING_RETRAIN, RUNNING_RETRAIN
from backend.outcome import JobOutcome
from backend.runtime import Runtime
from backend.settings import Settings


class Trainings(list):
    """The retrains that ran on ``data_dir`` (other tests' apps may still be retrying theirs);
    each lasts until ``release`` is set (a long fit) or 10 s pass."""

    def __init__(self, data_dir):
        super().__init__()
        self.data_dir = data_dir
        self.release = threading.Event()
        self.release.set()
        self._lock = threading.Lock()

    def __call__(self, project_id, *, store, **kwargs):
        if store.data_dir == self.data_dir:
            with self._lock:
                self.append(project_id)
            self.release.wait(10)
        return JobOutcome(project_id, False, "fake")


@pytest.fixture()
def trainings(monkeypatch, tmp_path):
    calls = Trainings(tmp_path)
    monkeypatch.setattr(runtime_module, "retrain", calls)
    return calls


def worker(tmp_path) -> Runtime:
    """One gunicorn worker's runtime on the shared data dir (its own schedulers and file locks),
    with project 7 connected."""
    rt = Runtime.build(Settings(data_dir=tmp_path, retrain_settle_seconds=0, label_studio_url="http://127.0.0.1:9",
                                label_studio_api_key="x"))
    rt.store.create_project(7)
    return rt


def test_a_flood_spread_over_two_workers_gives_at_most_one_follow_up_retrain(tmp_path, trainings):
    workers = [worker(tmp_path), worker(tmp_path)]
    trainings.release.clear()  # the first retrain lasts the whole flood
    for i in range(200):
        workers[i % 2].request_retrain(7, force=True)
    trainings.release.set()
    for rt in workers:
        assert rt.retrains.wait_idle(30)
    assert 1 <= len(trainings) <= 2
    project_dir = workers[0].store.create_project(7)
    assert not (project_dir / PENDING_RETRAIN).exists() and not (project_dir / RUNNING_RETRAIN).exists()


def test_a_request_during_a_retrain_is_trained_after_it(tmp_path, trainings):
    rt = worker(tmp_path)
    trainings.release.clear()
    rt.request_retrain(7)
    deadline = time.monotonic() + 10
    while not trainings and time.monotonic() < deadline:
        time.sleep(0.01)
    rt.request_retrain(7)  # while the first runs
    trainings.release.set()
    assert rt.retrains.wait_idle(10)
    assert len(trainings) == 2


def test_a_retrain_interrupted_while_running_is_resumed(tmp_path, trainings):
    rt = worker(tmp_path)
    (rt.store.create_project(7) / RUNNING_RETRAIN).write_text('{"force": true}')  # as after kill -9 mid-fit
    restarted = worker(tmp_path)
    assert restarted.resume_interrupted() == [7]
    assert restarted.retrains.wait_idle(10)
    assert trainings == [7] and not (rt.store.create_project(7) / RUNNING_RETRAIN).exists()


def test_only_the_first_worker_of_a_start_and_replacements_resume(tmp_path):
    from backend.web.server import GunicornServer

    server = GunicornServer(Settings(data_dir=tmp_path), bind="127.0.0.1:0", workers=2, connections=10,
                            log_level="INFO")
    decisions = []
    for _ in range(3):  # two workers at start, then one replacing a worker that died
        server._pre_fork(None, None)
        decisions.append(server._resume_in_next_worker)
    assert decisions == [True, False, True]


def test_gunicorn_control_socket_is_disabled(tmp_path):
    from backend.web.server import GunicornServer

    server = GunicornServer(Settings(data_dir=tmp_path), bind="127.0.0.1:0", workers=1, connections=10,
                            log_level="INFO")
    assert server.cfg.control_socket_disable is True
