"""The bodies the HTTP edge answers with, as pydantic models: :func:`reply` checks each JSON
answer against its model before it leaves, and ``/openapi.json`` is generated from them.

``reply`` sends the payload the handler built, byte for byte as before; the model only checks
it. A payload that breaks its model is a bug on our side, so it fails loudly (a 500 and a log
line) instead of sending Label Studio or an admin's script a body the document does not promise.
Models of the larger figures (``/metrics``, ``/measurement``) pin the fields callers rely on
and allow more, so a new figure does not need a new release of the document first.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_type_hints

from flask import Response, jsonify
from pydantic import BaseModel, ConfigDict, Field, create_model

from backend.measure.measurement_record import Measurement as MeasurementRecord


class ResponseBody(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OpenBody(BaseModel):
    """A body that may carry more fields than the model names."""

    model_config = ConfigDict(extra="allow")


class ErrorBody(ResponseBody):
    """Every 4xx and 5xx: what went wrong, said so a caller can act on it, and which field."""

    error: str
    status: int = Field(ge=400, le=599)
    field: str | None = Field(default=None, description="the request field at fault, when one is")


class Health(ResponseBody):
    status: Literal["UP"]
    model_class: str
    degraded: str | None = Field(default=None, description="a short reason code while background work fails")


class SetupReply(ResponseBody):
    model_version: str = Field(description="the model in service, or 'untrained'")


class Prediction(OpenBody):
    """One task's prediction, in request order (Label Studio stores it as the task's prediction)."""

    result: list[dict[str, Any]] = Field(description="Label Studio result regions; empty before the first model")
    score: float
    model_version: str
    uncertainty: float = Field(ge=0, le=1)


class PredictReply(ResponseBody):
    results: list[Prediction]


class WebhookReply(ResponseBody):
    status: str = Field(description="'ignored' for an action that changes nothing, else how the job request went")
    action: str
    project: int | None = None


class JobRequested(ResponseBody):
    """A background job was asked for (``/train``, ``/select``, ``/measure``)."""

    status: str
    project: int


class QueueItem(ResponseBody):
    task_id: int
    slice: str
    rank: int
    reason: dict[str, Any]
    predicted: list[str] | list[tuple[int, int, str]] | None = Field(
        default=None, description="the model's labels: class names, or [start, end, entity type] spans")
    score: float | None = None


class QueueReply(ResponseBody):
    """``QueueRecord.to_api`` (``backend/loop/queue_record.py``)."""

    cycle: int
    model_version: str | None
    created_at: str
    counts: dict[str, int]
    items: list[QueueItem]


class FailuresReply(ResponseBody):
    project: int
    added: int
    flagged: int


class FeedbackReply(ResponseBody):
    id: int
    project: int
    model_version: str
    wrong: bool


#: ``GET /projects/<id>/measurement``: the measurement record's own fields and types, so the
#: document follows the record (``backend/measure/measurement_record.py``) without a copy.
Measurement = create_model(
    "Measurement", __base__=ResponseBody, __doc__=MeasurementRecord.__doc__,
    **{name: (kind, ...) for name, kind in get_type_hints(MeasurementRecord).items()})


class Degraded(ResponseBody):
    reason: str
    detail: Any = None


class ProjectFigures(OpenBody):
    model_version: str | None
    labels: dict[str, Any]
    queue: dict[str, Any] | None
    flagged_failures: int
    jobs: dict[str, dict[str, Any]]


class ProjectUnreadable(ResponseBody):
    error: str


class Metrics(OpenBody):
    """``/metrics`` as JSON: every project on disk (one whose state cannot be read shows its error)."""

    projects: dict[str, ProjectFigures | ProjectUnreadable]
    jobs_backend: dict[str, Any]
    settings: dict[str, Any]
    degraded: Degraded | None


class Versions(ResponseBody):
    versions: list[str] = Field(description="model versions kept on disk, newest first")


@dataclass(frozen=True)
class Media:
    """A body that is not JSON (the report page, the Prometheus text format)."""

    media_type: str
    description: str


HTML = Media("text/html", "the report page")
PROMETHEUS_TEXT = Media("text/plain", "Prometheus text exposition format (?format=prometheus or Accept: text/plain)")


def reply(model: type[BaseModel], payload: dict[str, Any], status: int = 200) -> tuple[Response, int]:
    """``payload`` as JSON, once ``model`` accepts it."""
    model.model_validate(payload)
    return jsonify(payload), status
