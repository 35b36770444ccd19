"""What one run of a background job reports: the one outcome contract of every job.

Retrain, select, pool sync and measure each return a :class:`JobOutcome`; the schedulers
(``backend/jobs/``) log it, keep it for ``/metrics`` and hand the ``done`` ones to the steps that
follow (``after`` callbacks, the one way jobs chain). It sits below the loop, measurement and
job rooms so all three can speak it without importing each other.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class JobOutcome:
    """One run's result.

    Attributes
    ----------
    project_id : the project the run was for.
    done : whether the run produced something (a model, a queue, a measurement); the steps
        chained after a job run only on ``done`` outcomes.
    reason : one line for logs and ``/metrics`` (why it ran, or why it skipped).
    version : the model version the run produced, if any (the scheduler keeps the last 20).
    figures : JSON-ready details of the run (counts, seconds, ...), shown flat in ``/metrics``.
    """

    project_id: int
    done: bool
    reason: str
    version: str | None = None
    figures: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The ``last_outcome`` entry of ``/metrics``: the four fields, then the figures."""
        return {"project_id": self.project_id, "done": self.done, "reason": self.reason,
                "version": self.version, **self.figures}
