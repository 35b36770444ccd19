"""HTTP routes of loop measurement: production feedback in, the report out.

``POST /projects/<id>/feedback``     one production outcome (validated, stored in SQLite)
``GET  /projects/<id>/report``       the latest report page (text/html), read from SQLite
``GET  /projects/<id>/measurement``  the figures behind it (JSON), for dashboards and tests
``POST /projects/<id>/measure``      measure again now, in the background (202)

Handlers never call Label Studio or render plots: the report is rendered by the background
measure job (``backend/measure/loop_monitor.py``) after every cycle.
"""
from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, jsonify

from backend.measure.cycles_db import Feedback
from backend.model.predict import UNTRAINED_VERSION
from backend.web.errors import ApiError, UnknownProjectError
from backend.web.ids import bounded_id
from backend.web.ml_api import json_body, runtime

logger = logging.getLogger(__name__)

report_routes = Blueprint("labelqueue_report", __name__)

MAX_TEXT = 100_000
MAX_LABELS = 1_000


def parse_labels(raw: object, name: str, known: tuple[str, ...] | None) -> tuple[str, ...]:
    """A label or a list of labels; checked against the model's labels when a model exists."""
    labels = [raw] if isinstance(raw, str) else raw
    if not isinstance(labels, list) or not labels or len(labels) > MAX_LABELS \
            or not all(isinstance(label, str) and label.strip() for label in labels):
        raise ApiError(f"'{name}' must be a label or a non-empty list of labels", field=name)
    unknown = sorted(set(labels) - set(known)) if known is not None else []
    if unknown:
        raise ApiError(f"'{name}' has labels the project's model does not know: {unknown[:5]}; "
                       f"known labels: {list(known)[:20]}", field=name)
    return tuple(sorted(set(labels)))


def parse_feedback(body: dict[str, Any], known: tuple[str, ...] | None, version_in_service: str) -> Feedback:
    """Validate ``{"task_id"?, "text"?, "predicted", "correct", "model_version"?}``."""
    task_id, text, version = body.get("task_id"), body.get("text"), body.get("model_version", version_in_service)
    if task_id is not None:
        task_id = bounded_id(task_id, field="task_id")
    if text is not None and (not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT):
        raise ApiError(f"'text' must be a non-empty string of at most {MAX_TEXT} characters", field="text")
    if task_id is None and text is None:
        raise ApiError("give 'task_id' (a Label Studio task) or 'text' (what the model saw), or both", field="task_id")
    if not isinstance(version, str) or not version.strip() or len(version) > 200:
        raise ApiError("'model_version' must be a non-empty string (default: the version in service)",
                       field="model_version")
    return Feedback(model_version=version, predicted=parse_labels(body.get("predicted"), "predicted", known),
                    correct=parse_labels(body.get("correct"), "correct", known), task_id=task_id, text=text)


@report_routes.post("/projects/<project_id:project_id>/feedback")
def feedback(project_id: int):
    body = json_body()
    rt = runtime()
    if project_id not in rt.known_projects():
        raise UnknownProjectError(f"project {project_id} is not connected to this backend")
    model = rt.models.current(project_id)
    item = parse_feedback(body, model.labels if model else None, model.version if model else UNTRAINED_VERSION)
    feedback_id = rt.loop.db.add_feedback(project_id, item)
    return jsonify({"id": feedback_id, "project": project_id, "model_version": item.model_version,
                    "wrong": item.wrong}), 201


@report_routes.get("/projects/<project_id:project_id>/report")
def report(project_id: int):
    rt = runtime()
    page = rt.loop.db.report_html(project_id)
    if page is None:
        if not rt.loop.db.cycles(project_id):
            raise UnknownProjectError(f"project {project_id} has no recorded cycle yet: the report starts after the "
                                      "first queue is written")
        rt.loop.jobs.request(project_id)
        page = ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><link rel='icon' href='data:,'>"
                "<title>labelqueue report</title></head><body><p>The first report of this project is being "
                "measured; reload in a minute.</p></body></html>")
        return Response(page, status=202, mimetype="text/html", headers={"Cache-Control": "no-store"})
    return Response(page, mimetype="text/html", headers={"Cache-Control": "no-store"})


@report_routes.get("/projects/<project_id:project_id>/measurement")
def measurement(project_id: int):
    found = runtime().loop.db.measurement(project_id)
    if found is None:
        raise UnknownProjectError(f"project {project_id} has not been measured yet: measurement runs after each "
                                  "cycle, or ask for one with POST /projects/<id>/measure")
    return jsonify(found.to_json())


@report_routes.post("/projects/<project_id:project_id>/measure")
def measure(project_id: int):
    status = runtime().request_measure(project_id)
    return jsonify({"status": status, "project": project_id}), 202
