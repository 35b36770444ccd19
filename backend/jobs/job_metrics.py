"""Per-process job counters for Prometheus, kept where the client's multiprocess mode sums them.

Each gunicorn worker runs its own in-process schedulers, so a count held in one worker's memory
would disagree with the next scrape's worker. These counters are written through
``prometheus_client``: with ``PROMETHEUS_MULTIPROC_DIR`` set (``labelqueue serve`` does it
before forking) every process writes its own file there and a scrape sums them all. They are
module-level on purpose: the client keeps one value per process and label set.

The RQ deployment keeps the same figures in Redis (``rq_state.py``; run times in
``run_times.py``, with the bounds of ``RUN_BUCKETS``), shared by every process, so the
exposition reads them from there and these counters stay unused in that mode.
"""
from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

STATES = ("idle", "queued", "running", "backoff", "failed")

RUNS = Counter("labelqueue_job_runs", "Job runs that completed, per project and job", ["project", "job"])
FAILURES = Counter("labelqueue_job_failures", "Job runs that raised, per project and job", ["project", "job"])
COALESCED = Counter("labelqueue_job_coalesced", "Job requests folded into a queued or running run",
                    ["project", "job"])
#: Bucket bounds (seconds) of the job run-time histograms, in-process and on RQ.
RUN_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
RUN_SECONDS_HELP = "Wall time of one job run"
RUN_SECONDS = Histogram("labelqueue_job_run_seconds", RUN_SECONDS_HELP, ["job"], buckets=RUN_BUCKETS)
STATE = Gauge("labelqueue_job_state", "1 when some live process holds the project's job in this state",
              ["project", "job", "state"], multiprocess_mode="livemax")


def record_state(job: str, project_id: int, state: str) -> None:
    for name in STATES:
        STATE.labels(str(project_id), job, name).set(1 if name == state else 0)


def record_coalesced(job: str, project_id: int) -> None:
    COALESCED.labels(str(project_id), job).inc()


def record_run(job: str, project_id: int, seconds: float, *, ok: bool) -> None:
    (RUNS if ok else FAILURES).labels(str(project_id), job).inc()
    RUN_SECONDS.labels(job).observe(seconds)
