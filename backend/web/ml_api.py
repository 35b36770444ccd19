"""The HTTP contract Label Studio 1.23 expects of an ML backend (``label_studio/ml/api_connector.py``).

Handlers validate, call one plain function, and return JSON. They never train or load data
from Label Studio: ``/setup`` and ``/health`` are called before every prediction request, and
``/webhook`` must answer within Label Studio's webhook timeout whatever happens.
"""
from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, current_app, request

from backend.loop.cycle import read_queue
from backend.model.predict import UNTRAINED_VERSION, predictions
from backend.runtime import Runtime
from backend.web.errors import ApiError, UnknownProjectError
from backend.web.openapi import documented, query_parameter
from backend.web.prometheus import exposition, wants_prometheus
from backend.web.request_bodies import FailuresRequest, PredictRequest, SetupRequest, TrainRequest, WebhookRequest
from backend.web.response_bodies import (
    PROMETHEUS_TEXT,
    FailuresReply,
    Health,
    JobRequested,
    Metrics,
    PredictReply,
    QueueReply,
    SetupReply,
    WebhookReply,
    reply,
)
from backend.web.webhook import parse_event

logger = logging.getLogger(__name__)

routes = Blueprint("labelqueue", __name__)

FORMAT_QUERY = query_parameter("format", {"type": "string", "enum": ["json", "prometheus"]},
                               "'prometheus' for the text exposition format (as does Accept: text/plain)")


def runtime() -> Runtime:
    return current_app.extensions["labelqueue"]


def json_body() -> dict[str, Any]:
    """The request's JSON object, or a 4xx that says what is wrong with it."""
    if not request.is_json:
        raise ApiError(f"expected Content-Type application/json, got {request.content_type or 'none'!r}",
                       status=415)
    body = request.get_json(silent=True)
    if body is None:
        raise ApiError("request body is not valid JSON")
    if not isinstance(body, dict):
        raise ApiError(f"request body must be a JSON object, got {type(body).__name__}")
    return body


@routes.get("/")
@routes.get("/health")
@documented({200: Health})
def health():
    """Liveness for Label Studio's connection check (``MLApi.health``, a bare GET).

    Always 200 while we can serve predictions: Label Studio treats a failing health check as
    a disconnected backend. Background trouble shows as ``degraded``: a short reason code only,
    since anyone may call this; the summarised errors are in ``/metrics`` (behind basic auth)."""
    body = {"status": "UP", "model_class": "labelqueue"}
    degraded = runtime().degraded()
    if degraded:
        body["degraded"] = degraded.reason
    return reply(Health, body)


@routes.post("/setup")
@documented({200: SetupReply}, body=SetupRequest, errors=(507,))
def setup():
    """Connect a project (``MLApi.setup``): remembers its options and fallback connection."""
    body = SetupRequest.parse(json_body())
    project_id = body.project
    rt = runtime()
    rt.options.remember(project_id, body.extra_params)
    rt.connections.remember(project_id, body.hostname, body.access_token)
    manifest = rt.store.manifest(project_id)
    return reply(SetupReply, {"model_version": manifest.version if manifest else UNTRAINED_VERSION})


@routes.post("/predict")
@documented({200: PredictReply}, body=PredictRequest)
def predict():
    """One prediction per task, in request order (``MLApi.make_predictions``)."""
    rt = runtime()
    body = PredictRequest.parse(json_body(), max_tasks=rt.settings.max_tasks_per_predict)
    project_id, spec, texts = body.project, body.label_config, body.texts
    model = rt.models.current(project_id)
    if model is not None and model.labels != spec.labels:
        logger.warning("project %s: config labels changed since %s was trained; cold start until "
                       "the next retrain", project_id, model.version)
        model = None
    return reply(PredictReply, {"results": predictions(texts, spec, model, rt.settings.uncertainty_measure)})


@routes.post("/webhook")
@documented({200: WebhookReply}, body=WebhookRequest)
def webhook():
    """Label Studio's webhook: annotations changed (retrain), tasks added or deleted (pool sync)."""
    event = parse_event(json_body())
    rt = runtime()
    if event.wants_retrain:
        outcome = rt.request_retrain(event.project_id, force=event.forced)
    elif event.changes_pool:
        outcome = rt.request_pool_sync(event.project_id, reconcile=event.action == "TASKS_DELETED")
    else:
        return reply(WebhookReply, {"status": "ignored", "action": event.action})
    return reply(WebhookReply, {"status": outcome, "action": event.action, "project": event.project_id})


@routes.post("/train")
@documented({200: JobRequested}, body=TrainRequest)
def train():
    """Legacy ``/train`` call of older Label Studio versions: treated as a forced retrain."""
    project_id = TrainRequest.parse(json_body()).project
    return reply(JobRequested, {"status": runtime().request_retrain(project_id, force=True), "project": project_id})


@routes.post("/projects/<project_id:project_id>/select")
@documented({202: JobRequested})
def select(project_id: int):
    """Compose a new batch now (in the background); poll ``GET .../queue`` for the result."""
    status = runtime().request_selection(project_id)
    return reply(JobRequested, {"status": status, "project": project_id}, 202)


@routes.get("/projects/<project_id:project_id>/queue")
@documented({200: QueueReply}, errors=(404,))
def queue(project_id: int):
    """The project's current batch: the summary and the queued tasks in rank order."""
    current = read_queue(runtime().store, project_id)
    if current is None:
        raise UnknownProjectError(f"project {project_id} has no queue yet: it is written after the "
                                  "first retrain, or by POST /projects/<id>/select")
    return reply(QueueReply, current.to_api())


@routes.post("/projects/<project_id:project_id>/failures")
@documented({200: FailuresReply}, body=FailuresRequest)
def flag_failures(project_id: int):
    """Flag tasks the model got wrong; the failure slice looks for their neighbours."""
    task_ids = FailuresRequest.parse(json_body()).task_ids
    rt = runtime()
    added = rt.failures.add(project_id, task_ids, source="api")
    return reply(FailuresReply, {"project": project_id, "added": added, "flagged": len(rt.failures.read(project_id))})


@routes.get("/metrics")
@documented({200: (Metrics, PROMETHEUS_TEXT)}, query=(FORMAT_QUERY,))
def metrics():
    """JSON by default; the Prometheus text format for ``?format=prometheus`` or ``Accept: text/plain``."""
    figures = runtime().metrics()
    return exposition(figures) if wants_prometheus() else reply(Metrics, figures)
