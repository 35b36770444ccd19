"""``GET /metrics?format=prometheus`` (or ``Accept: text/plain``): the text exposition format.

Three sources, each correct however many processes serve:

* per project (model version, training-set size, labels per class, queue per slice, flagged
  failures, control accuracy of the latest measured cycle): built at scrape time from the data
  dir and SQLite, the same read as the JSON ``/metrics``, so every worker answers alike;
* per job: in-process, counters and histograms each process writes through the client's
  multiprocess mode (``backend/jobs/job_metrics.py``); on RQ, the shared Redis state and the
  run-time histograms (``backend/jobs/run_times.py``), read at scrape time, and then no
  process's own ``labelqueue_job_*`` families, so no family is exposed twice;
* HTTP requests per route and status with latency histograms, counted per process in
  multiprocess mode.

``labelqueue serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at ``<data dir>/prometheus`` before its
workers fork (``backend/web/server.py``); without it (``--dev``, tests) the process's own
registry is exposed.
"""
from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

from flask import Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from backend.jobs.job_metrics import RUN_SECONDS_HELP

HTTP_REQUESTS = Counter("labelqueue_http_requests", "HTTP requests answered, per route, method and status",
                        ["route", "method", "status"])
HTTP_SECONDS = Histogram("labelqueue_http_request_seconds", "Time to answer one HTTP request", ["route", "method"])


def wants_prometheus() -> bool:
    """``?format=prometheus``, or a scraper's ``Accept: text/plain`` preferred over JSON."""
    if request.args.get("format") == "prometheus":
        return True
    return request.accept_mimetypes.best_match(["application/json", "text/plain"]) == "text/plain"


def exposition(metrics: dict[str, Any]) -> Response:
    registry = CollectorRegistry()
    registry.register(_PerProcess(shared_jobs=metrics["jobs_backend"]["mode"] == "rq"))
    registry.register(_Snapshot(metrics))
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def install_http_metrics(app: Flask) -> None:
    """Count and time every request by its route pattern (``/projects/<project_id:project_id>/queue``),
    so project ids do not multiply the series."""

    @app.before_request
    def start_timer() -> None:
        g.labelqueue_started = time.perf_counter()

    @app.after_request
    def count(response: Response) -> Response:
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        HTTP_REQUESTS.labels(route, request.method, str(response.status_code)).inc()
        started = g.get("labelqueue_started")
        if started is not None:
            HTTP_SECONDS.labels(route, request.method).observe(time.perf_counter() - started)
        return response


class _PerProcess:
    """What processes count themselves: summed over every process in multiprocess mode, else
    (``--dev``, tests) this process's default registry. ``shared_jobs``: job figures come from
    Redis instead (:class:`_Snapshot`)."""

    def __init__(self, *, shared_jobs: bool):
        self.shared_jobs = shared_jobs

    def collect(self) -> Iterator[Metric]:
        source = MultiProcessCollector(None) if os.environ.get("PROMETHEUS_MULTIPROC_DIR") else REGISTRY
        for family in source.collect():
            if not (self.shared_jobs and family.name.startswith("labelqueue_job_")):
                yield family


class _Snapshot:
    """The figures read at scrape time from what every process shares."""

    def __init__(self, metrics: dict[str, Any]):
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        projects: dict[str, dict[str, Any]] = self.metrics["projects"]
        info = GaugeMetricFamily("labelqueue_model_version_info", "The model version in service (value 1)",
                                 labels=["project", "version"])
        examples = GaugeMetricFamily("labelqueue_training_examples", "Examples the model in service was trained on",
                                     labels=["project"])
        labels = GaugeMetricFamily("labelqueue_labels", "Labelled tasks per class", labels=["project", "label"])
        queue = GaugeMetricFamily("labelqueue_queue_items", "Items of the current queue per slice",
                                  labels=["project", "slice"])
        failures = GaugeMetricFamily("labelqueue_flagged_failures", "Tasks flagged as production failures",
                                     labels=["project"])
        control = GaugeMetricFamily("labelqueue_control_accuracy",
                                    "Model accuracy on the control slice of the latest measured cycle",
                                    labels=["project"])
        gain = GaugeMetricFamily("labelqueue_gain_points_per_100",
                                 "Control-accuracy points gained per 100 labels, latest measured cycle",
                                 labels=["project"])
        for pid, project in projects.items():
            if project["model_version"]:
                info.add_metric([pid, project["model_version"]], 1)
            if project["model"] and "n_examples" in project["model"]:
                examples.add_metric([pid], project["model"]["n_examples"])
            for label, count in project["labels"]["per_class"].items():
                labels.add_metric([pid, label], count)
            for name, count in ((project["queue"] or {}).get("counts") or {}).items():
                queue.add_metric([pid, name], count)
            failures.add_metric([pid], project["flagged_failures"])
            loop = project["loop"] or {}
            if (loop.get("control") or {}).get("accuracy") is not None:
                control.add_metric([pid], loop["control"]["accuracy"])
            if loop.get("gain_points_per_100") is not None:
                gain.add_metric([pid], loop["gain_points_per_100"])
        yield from (info, examples, labels, queue, failures, control, gain)
        if self.metrics["jobs_backend"]["mode"] == "rq":
            yield from self._shared_jobs(projects)
            yield from self._shared_run_times()

    @staticmethod
    def _shared_jobs(projects: dict[str, dict[str, Any]]) -> Iterator[Metric]:
        """On RQ every process reads the same job state from Redis."""
        state = GaugeMetricFamily("labelqueue_job_state", "1 for the state the project's job is in",
                                  labels=["project", "job", "state"])
        counters = {key: CounterMetricFamily(f"labelqueue_job_{key}", f"Job {key}, per project and job",
                                             labels=["project", "job"]) for key in ("runs", "failures", "coalesced")}
        for pid, project in projects.items():
            for job, snapshot in project["jobs"].items():
                state.add_metric([pid, job, snapshot["state"]], 1)
                for key, family in counters.items():
                    if key in snapshot:
                        family.add_metric([pid, job], snapshot[key])
        yield state
        yield from counters.values()

    def _shared_run_times(self) -> Iterator[Metric]:
        """Run-time histograms per job kind, as the RQ workers recorded them in Redis."""
        family = HistogramMetricFamily("labelqueue_job_run_seconds", RUN_SECONDS_HELP, labels=["job"])
        for job, found in (self.metrics["jobs_backend"].get("run_seconds") or {}).items():
            family.add_metric([job], buckets=list(found["buckets"].items()), sum_value=found["sum"])
        yield family
