"""Fixtures: a real Label Studio, ``labelqueue serve`` in both deployments (jobs in-process; jobs
on two ``labelqueue worker`` processes through a real ``redis-server``), all on 127.0.0.1.

Label Studio takes 20-40 s to start (migrations on a fresh data dir), so it is started once per
test session; each end-to-end test creates its own project. Both servers log to files in the
session's temp dir; their tails are reported when a fixture fails to start, and with the
failure of any test that used them (a CI run on another machine leaves nothing else to tell a
slow job from a stuck one).
"""
from __future__ import annotations

import contextlib
import csv
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from backend.local.label_studio_server import LocalServer, StartupError, start_backend, start_label_studio
from backend.runtime import Runtime
from tests.servers import start_redis, start_worker

# CI replays the same generated examples every run (a landing must not depend on luck);
# developers' runs keep exploring new ones.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")

# The model-signing key file defaults to the user's config dir; the tests and the servers and
# workers they start share one of their own instead of creating the developer's.
os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="labelqueue-test-config-")

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("LABELQUEUE_DATASETS", REPO.parent / "shared" / "datasets"))

#: Log lines a failure report leaves out: the tests' own polling of health and metrics.
POLLING = re.compile(r'"GET /(health|metrics)[^"]*" 200 ')
#: How many lines of each server log a failure report shows.
LOG_TAIL_LINES = 60


@pytest.fixture(autouse=True)
def runtimes_closed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Close every backend runtime a test builds when the test ends. Many tests build an app
    inline; left open, its retrain and pool-sync threads ran on into later tests and past the
    session (logging "could not reach Label Studio" after pytest's summary). A fixture of a
    wider scope is built before this one, so what it builds is left to it to close."""
    built: list[Runtime] = []
    build = Runtime.build.__func__

    def recording(cls: type[Runtime], settings: object) -> Runtime:
        runtime = build(cls, settings)
        built.append(runtime)
        return runtime

    monkeypatch.setattr(Runtime, "build", classmethod(recording))
    yield
    for runtime in built:
        runtime.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[pytest.TestReport]:
    """A failed test that used our servers shows their log tails: the backend's, the RQ
    workers' beside it, and Label Studio's."""
    report = yield
    if report.failed and call.when == "call":
        for log in server_logs(getattr(item, "funcargs", {}).values()):
            report.sections.append((f"last lines of {log}", log_tail(log)))
    return report


def server_logs(fixtures: Iterable[object]) -> list[Path]:
    """Every log in the folders of the servers among ``fixtures``, or in a tuple one returns (a
    worker logs beside its backend)."""
    values = [part for value in fixtures for part in (value if isinstance(value, tuple) else (value,))]
    folders = {value.log.parent for value in values if isinstance(value, LocalServer)}
    return sorted(log for folder in folders for log in folder.glob("*.log"))


def log_tail(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if not POLLING.search(line)]
    return "\n".join(lines[-LOG_TAIL_LINES:])


@contextlib.contextmanager
def started(*starts: Callable[[], LocalServer]) -> Iterator[list[LocalServer]]:
    """Start servers in order and stop them all afterwards, last first; if one does not come up,
    stop those already running and fail with its log tail."""
    servers: list[LocalServer] = []
    try:
        try:
            for start in starts:
                servers.append(start())
        except StartupError as exc:
            pytest.fail(str(exc))
        yield servers
    finally:
        for server in reversed(servers):
            server.stop()


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    with started(lambda: start_label_studio(tmp_path_factory.mktemp("label-studio"))) as (server,):
        yield server


#: How the end-to-end backends are configured: retrain after every label.
BACKEND_ENV = {"LABELQUEUE_MIN_NEW_ANNOTATIONS": "1", "LABELQUEUE_FAILURE_FIELD": "data.source=production_error"}


@pytest.fixture(scope="session")
def backend(label_studio: LocalServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """``labelqueue serve`` with two gunicorn workers, retraining after every label, jobs in-process."""
    folder = tmp_path_factory.mktemp("labelqueue")
    with started(lambda: start_backend(folder, label_studio=label_studio, workers=2, env=BACKEND_ENV)) as (server,):
        yield server


@pytest.fixture(scope="session")
def rq_backend(label_studio: LocalServer, redis_server: LocalServer,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """The scale-out deployment: ``labelqueue serve`` (two gunicorn workers) that only enqueues,
    and two ``labelqueue worker`` processes that run every job; pools over 100 tasks are scored
    in chunks across them."""
    folder = tmp_path_factory.mktemp("labelqueue-rq")
    env = {**BACKEND_ENV, "LABELQUEUE_REDIS_URL": f"{redis_server.url}/2", "LABELQUEUE_SCORE_CHUNK_SIZE": "100"}
    workers = [lambda i=i: start_worker(folder, label_studio=label_studio, name=f"e2e-worker-{i}", env=env)
               for i in (1, 2)]
    with started(*workers, lambda: start_backend(folder, label_studio=label_studio, workers=2, env=env)) as servers:
        yield servers[-1]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """Debian's redis-server on a free loopback port, for the RQ mode (no persistence)."""
    with started(lambda: start_redis(tmp_path_factory.mktemp("redis"))) as (server,):
        yield server


@pytest.fixture()
def redis_url(redis_server: LocalServer) -> Iterator[str]:
    """An empty Redis database of its own for one unit test (database 1; e2e tests use others)."""
    from redis import Redis

    url = f"{redis_server.url}/1"
    Redis.from_url(url).flushdb()
    yield url
    from backend.worker import use_runtime

    use_runtime(None)


@pytest.fixture(scope="session")
def ls_client(label_studio: LocalServer):
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
