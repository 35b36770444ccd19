"""The HTTP contract Label Studio 1.23 expects of an ML backend (``label_studio/ml/api_connector.py``).

Handlers validate, call one plain function, and return JSON. They never train or load data
from Label Studio: ``/setup`` and ``/health`` are called before every prediction request, and
``/webhook`` must answer within Label Studio's webhook timeout whatever happens.
"""
from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, current_app, jsonify, request

from backend.errors import ApiError
from backend.labelconfig import parse_label_config
from backend.predict import UNTRAINED_VERSION, predictions, task_texts
from backend.runtime import Runtime
from backend.webhook import parse_event, project_id_of

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
    return jsonify({"status": "UP", "model_class": "labelqueue"})


@routes.post("/setup")
def setup():
    body = json_body()
    project_id = project_id_of(body.get("project"))
    parse_label_config(body.get("schema"))
    rt = runtime()
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
    if not event.wants_retrain:
        return jsonify({"status": "ignored", "action": event.action})
    outcome = runtime().scheduler.request(event.project_id, force=event.forced)
    return jsonify({"status": outcome, "action": event.action, "project": event.project_id})


@routes.post("/train")
def train():
    """Legacy ``/train`` call of older Label Studio versions: treated as a forced retrain."""
    project_id = project_id_of(json_body().get("project"))
    return jsonify({"status": runtime().scheduler.request(project_id, force=True), "project": project_id})


@routes.get("/metrics")
def metrics():
    return jsonify(runtime().metrics())
