"""Chunked pool scoring on RQ: results equal scoring in one piece, whoever scores the chunks."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from rq.job import JobStatus

from backend.jobs.backends import job_backend, open_store
from backend.jobs.pool_scoring import ChunkedScorer
from backend.jobs.rq_jobs import QUEUE_SCORE
from backend.model.classifier import fit_model
from backend.settings import Settings
from backend.worker import use_runtime

TEXTS = [f"{word} card {i}" for i, word in enumerate(["lost", "stolen", "arrived", "late", "rate", "fee"] * 9)]


@pytest.fixture()
def setup(redis_url, tmp_path):
    settings = Settings(data_dir=tmp_path / "data", redis_url=redis_url, score_chunk_size=10)
    jobs = job_backend(settings)
    store = open_store(settings, jobs)
    model = fit_model(["lost card", "stolen card", "card arrived", "exchange rate", "fee charged"],
                      [("card",), ("card",), ("card",), ("money",), ("money",)], labels=("card", "money"),
                      multilabel=False, version="v1-test")
    store.save(7, model, {"number": 1})
    use_runtime(SimpleNamespace(store=store, jobs=jobs))
    return SimpleNamespace(settings=settings, jobs=jobs, store=store, model=model,
                           expected=model.predict_proba(TEXTS))


def test_the_caller_scores_every_chunk_when_no_worker_is_free(setup):
    scorer = setup.jobs.scorer(setup.store)
    proba = scorer.score(7, setup.model, TEXTS)
    np.testing.assert_allclose(proba, setup.expected, atol=1e-6)  # float32 in transit
    assert setup.jobs.queues[QUEUE_SCORE].count == 0
    assert not any((setup.store.layout.scores(7)).iterdir())  # result files cleaned up


def test_worker_processes_score_chunks_in_parallel_with_the_same_result(setup, tmp_path):
    env = {**os.environ, "LABELQUEUE_DATA_DIR": str(setup.settings.data_dir), "LABELQUEUE_REDIS_URL": setup.settings.redis_url}
    workers = [subprocess.Popen([str(Path(sys.executable).parent / "labelqueue"), "worker", "--queues", "score",
                                 "--name", f"test-scorer-{i}"], env=env,
                                stdout=open(tmp_path / f"worker{i}.log", "wb"), stderr=subprocess.STDOUT)
               for i in range(2)]
    try:
        deadline = time.monotonic() + 60
        while len(setup.jobs.describe()["workers"]) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        scorer = ChunkedScorer(setup.store, setup.jobs.queues[QUEUE_SCORE], chunk_size=10,
                               steal=False)  # only the workers score
        proba = scorer.score(7, setup.model, TEXTS)
        done = {w["name"]: w["successful_jobs"] for w in setup.jobs.describe()["workers"]}
    finally:
        for worker in workers:
            worker.terminate()
            worker.wait(20)
    np.testing.assert_allclose(proba, setup.expected, atol=1e-6)
    assert sum(done.values()) == 6  # 54 texts in chunks of 10


def test_chunks_that_fail_or_lose_their_worker_are_scored_by_the_caller(setup):
    queue = setup.jobs.queues[QUEUE_SCORE]
    scorer = ChunkedScorer(setup.store, queue, chunk_size=20, steal=False)

    def meddle():  # plays three workers: one crashes the job, one dies mid-chunk, one succeeds
        deadline = time.monotonic() + 10
        while queue.count < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        failed, lost, done = queue.jobs
        for job in (failed, lost, done):
            queue.remove(job)
        failed.set_status(JobStatus.FAILED)
        lost.set_status(JobStatus.STARTED)
        lost.heartbeat(datetime.now(timezone.utc) - timedelta(minutes=5), ttl=600)
        done.perform()
        done.set_status(JobStatus.FINISHED)

    helper = threading.Thread(target=meddle)
    helper.start()
    proba = scorer.score(7, setup.model, TEXTS)
    helper.join(10)
    np.testing.assert_allclose(proba, setup.expected, atol=1e-6)


def test_small_pools_and_in_process_mode_score_in_one_piece(tmp_path):
    jobs = job_backend(Settings(data_dir=tmp_path / "data"))
    model = fit_model(["lost card", "exchange rate"], [("x",), ("y",)], labels=("x", "y"), multilabel=False, version="v1")
    assert jobs.mode == "in-process"
    texts = ["card", "rate"]
    np.testing.assert_array_equal(jobs.scorer(None).score(1, model, texts), model.predict_proba(texts))
