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

from flask import Blueprint, Response

from backend.model.predict import UNTRAINED_VERSION
from backend.web.errors import UnknownProjectError
from backend.web.ml_api import json_body, runtime
from backend.web.openapi import documented
from backend.web.request_bodies import FeedbackRequest
from backend.web.response_bodies import HTML, FeedbackReply, JobRequested, Measurement, reply

logger = logging.getLogger(__name__)

report_routes = Blueprint("labelqueue_report", __name__)

@report_routes.post("/projects/<project_id:project_id>/feedback")
@documented({201: FeedbackReply}, body=FeedbackRequest, errors=(404,))
def feedback(project_id: int):
    """Record one production outcome: what the model predicted and what was correct."""
    body = json_body()
    rt = runtime()
    if project_id not in rt.known_projects():
        raise UnknownProjectError(f"project {project_id} is not connected to this backend")
    model = rt.models.current(project_id)
    item = FeedbackRequest.parse(body, known=model.labels if model else None,
                                 version_in_service=model.version if model else UNTRAINED_VERSION).feedback()
    feedback_id = rt.loop.db.add_feedback(project_id, item)
    return reply(FeedbackReply, {"id": feedback_id, "project": project_id, "model_version": item.model_version,
                                 "wrong": item.wrong}, 201)


@report_routes.get("/projects/<project_id:project_id>/report")
@documented({200: HTML, 202: HTML}, errors=(404,))
def report(project_id: int):
    """The latest report page; 202 with a placeholder while the first one is measured."""
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
@documented({200: Measurement}, errors=(404,))
def measurement(project_id: int):
    """The figures behind the report, for dashboards."""
    found = runtime().loop.db.measurement(project_id)
    if found is None:
        raise UnknownProjectError(f"project {project_id} has not been measured yet: measurement runs after each "
                                  "cycle, or ask for one with POST /projects/<id>/measure")
    return reply(Measurement, found.to_json())


@report_routes.post("/projects/<project_id:project_id>/measure")
@documented({202: JobRequested})
def measure(project_id: int):
    """Measure the loop again now, in the background."""
    status = runtime().request_measure(project_id)
    return reply(JobRequested, {"status": status, "project": project_id}, 202)
