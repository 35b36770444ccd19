"""Timed HTTP calls over keep-alive connections: latency samples and throughput.

Uses ``http.client`` directly so the client adds the same few microseconds to every server
measured, and prebuilt request bodies so JSON encoding is not timed.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlparse

import numpy as np


class UnexpectedResponseError(RuntimeError):
    """A timed call answered with a non-2xx status or the wrong number of results."""


@dataclass(frozen=True)
class Timing:
    """Latencies (seconds) of ``len(latencies)`` calls and the wall time they took together."""

    latencies: np.ndarray
    wall: float
    items_per_call: int

    @property
    def p50(self) -> float:
        return float(np.percentile(self.latencies, 50))

    @property
    def p99(self) -> float:
        return float(np.percentile(self.latencies, 99))

    @property
    def throughput(self) -> float:
        """Items (tasks) per second over the whole measurement."""
        return len(self.latencies) * self.items_per_call / self.wall


def _connection(url: str) -> http.client.HTTPConnection:
    parsed = urlparse(url)
    return http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=600)


def call(conn: http.client.HTTPConnection, path: str, body: bytes,
         expect_results: int | None = None) -> float:
    """POST ``body`` to ``path`` and return the latency; checks status and result count."""
    started = time.perf_counter()
    conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    payload = response.read()
    elapsed = time.perf_counter() - started
    if response.status >= 300:
        raise UnexpectedResponseError(f"{path} answered {response.status}: {payload[:300]!r}")
    if expect_results is not None:
        results = json.loads(payload).get("results", [])
        if len(results) != expect_results:
            raise UnexpectedResponseError(f"{path} returned {len(results)} results, "
                                          f"expected {expect_results}")
    return elapsed


def measure(url: str, path: str, body: bytes, *, items: int, calls: int, max_seconds: float,
            concurrency: int = 1, check: bool = True) -> Timing:
    """Up to ``calls`` calls (at least 5) split over ``concurrency`` clients, stopping early
    once ``max_seconds`` have passed."""
    latencies: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + max_seconds
    per_client = max(1, calls // concurrency)

    def client() -> None:
        conn = _connection(url)
        try:
            for i in range(per_client):
                if i >= 5 and time.perf_counter() > deadline:
                    break
                elapsed = call(conn, path, body, items if check else None)
                with lock:
                    latencies.append(elapsed)
        except BaseException as exc:  # surfaced below, in the caller's thread
            errors.append(exc)
        finally:
            conn.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    if errors:
        raise errors[0]
    return Timing(np.array(latencies), wall, items)
