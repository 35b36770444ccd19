"""The HTTP contract Label Studio 1.23 expects of an ML backend (``label_studio/ml/api_connector.py``).

Handlers validate, call one plain function, and return JSON. They never train or load data
from Label Studio: ``/setup`` and ``/health`` are called before every prediction request, and
``/webhook`` must answer within Label Studio's webhook timeout whatever happens.
"""
from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, current_app, jsonify, request

from backend.errors import ApiError, UnknownProjectError
from backend.labelstudio.label_config import parse_label_config
from backend.loop.cycle import read_queue
from backend.model.predict import UNTRAINED_VERSION, predictions, task_texts
from backend.runtime import Runtime
from backend.web.ids import parse_task_ids, project_id_of
from backend.web.prometheus import exposition, wants_prometheus
from backend.web.webhook import parse_event

logger = logging.getLogger(__name__)

routes = Blueprint("labelqueue", __name__)


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
def health():
    """Always 200 while we can serve predictions: Label Studio treats a failing health check as
    a disconnected backend. Background trouble shows as ``degraded``: a short reason code only,
    since anyone may call this; the summarised errors are in ``/metrics`` (behind basic auth)."""
    body = {"status": "UP", "model_class": "labelqueue"}
    degraded = runtime().degraded()
    if degraded:
        body["degraded"] = degraded.reason
    return jsonify(body)


@routes.post("/setup")
def setup():
    body = json_body()
    project_id = project_id_of(body.get("project"))
    parse_label_config(body.get("schema"))
    rt = runtime()
    rt.options.remember(project_id, body.get("extra_params"))
    rt.connections.remember(project_id, body.get("hostname"), body.get("access_token"))
    manifest = rt.store.manifest(project_id)
    return jsonify({"model_version": manifest.version if manifest else UNTRAINED_VERSION})


@routes.post("/predict")
def predict():
    body = json_body()
    project_id = project_id_of(body.get("project"))
    spec = parse_label_config(body.get("label_config"))
    rt = runtime()
    texts = task_texts(body.get("tasks"), spec, rt.settings.max_tasks_per_predict)
    model = rt.models.current(project_id)
    if model is not None and model.labels != spec.labels:
        logger.warning("project %s: config labels changed since %s was trained; cold start until "
                       "the next retrain", project_id, model.version)
        model = None
    return jsonify({"results": predictions(texts, spec, model, rt.settings.uncertainty_measure)})


@routes.post("/webhook")
def webhook():
    event = parse_event(json_body())
    rt = runtime()
    if event.wants_retrain:
        outcome = rt.request_retrain(event.project_id, force=event.forced)
    elif event.changes_pool:
        outcome = rt.request_pool_sync(event.project_id, reconcile=event.action == "TASKS_DELETED")
    else:
        return jsonify({"status": "ignored", "action": event.action})
    return jsonify({"status": outcome, "action": event.action, "project": event.project_id})


@routes.post("/train")
def train():
    """Legacy ``/train`` call of older Label Studio versions: treated as a forced retrain."""
    project_id = project_id_of(json_body().get("project"))
    return jsonify({"status": runtime().request_retrain(project_id, force=True), "project": project_id})


@routes.post("/projects/<project_id:project_id>/select")
def select(project_id: int):
    """Compose a new batch now (in the background); poll ``GET .../queue`` for the result."""
    status = runtime().request_selection(project_id)
    return jsonify({"status": status, "project": project_id}), 202


@routes.get("/projects/<project_id:project_id>/queue")
def queue(project_id: int):
    current = read_queue(runtime().store, project_id)
    if current is None:
        raise UnknownProjectError(f"project {project_id} has no queue yet: it is written after the "
                                  "first retrain, or by POST /projects/<id>/select")
    return jsonify(current.to_api())


@routes.post("/projects/<project_id:project_id>/failures")
def flag_failures(project_id: int):
    task_ids = parse_task_ids(json_body().get("task_ids"))
    rt = runtime()
    added = rt.failures.add(project_id, task_ids, source="api")
    return jsonify({"project": project_id, "added": added, "flagged": len(rt.failures.read(project_id))})


@routes.get("/metrics")
def metrics():
    """JSON by default; the Prometheus text format for ``?format=prometheus`` or ``Accept: text/plain``."""
    figures = runtime().metrics()
    return exposition(figures) if wants_prometheus() else jsonify(figures)
