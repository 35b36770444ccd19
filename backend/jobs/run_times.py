"""Run-time histograms of RQ jobs, per job kind, kept in Redis where every process sees them.

A run happens on whichever ``labelqueue worker`` takes it, often on another machine than the
web process a scraper asks, so a histogram in the worker's memory (or in the client's
multiprocess files, which only its own host reads) would never reach the scrape. Each run
adds itself to one hash per job kind, ``labelqueue:run_seconds:<job>``, in one atomic script:
a cumulative count per bucket bound (the same bounds as the in-process histogram,
``job_metrics.RUN_BUCKETS``), ``count`` and ``sum``. The web process reads the hash at scrape
time, so every gunicorn worker serves the same figures, for ``/metrics`` JSON and Prometheus.
"""
from __future__ import annotations

from typing import Any

from prometheus_client.utils import floatToGoString
from redis import Redis

from backend.jobs.job_metrics import RUN_BUCKETS

#: The ``le`` label of each bound, as Prometheus writes it; ``+Inf`` counts every run.
BOUNDS = tuple(floatToGoString(b) for b in RUN_BUCKETS) + ("+Inf",)

# KEYS[1] the job kind's hash; ARGV[1] the run's seconds; ARGV[2..] the bucket bounds (le).
OBSERVE = """
local seconds = tonumber(ARGV[1])
for i = 2, #ARGV do
  if ARGV[i] == '+Inf' or seconds <= tonumber(ARGV[i]) then redis.call('HINCRBY', KEYS[1], 'le:' .. ARGV[i], 1) end
end
redis.call('HINCRBY', KEYS[1], 'count', 1)
redis.call('HINCRBYFLOAT', KEYS[1], 'sum', ARGV[1])
return 1
"""


def run_times_key(job: str) -> str:
    return f"labelqueue:run_seconds:{job}"


class RunTimes:
    """Record and read the run-time histograms of the RQ jobs."""

    def __init__(self, redis: Redis):
        self.redis = redis
        self._observe = redis.register_script(OBSERVE)

    def observe(self, job: str, seconds: float) -> None:
        self._observe(keys=[run_times_key(job)], args=[repr(max(0.0, float(seconds))), *BOUNDS])

    def read(self, job: str) -> dict[str, Any]:
        """``{"buckets": {le: cumulative count}, "count": n, "sum": seconds}``; zeros before any run."""
        fields = {k.decode(): v.decode() for k, v in self.redis.hgetall(run_times_key(job)).items()}
        return {"buckets": {le: int(fields.get(f"le:{le}", 0)) for le in BOUNDS},
                "count": int(fields.get("count", 0)), "sum": float(fields.get("sum", 0.0))}
