"""Application factory: ``create_app(settings)`` builds a ready backend, doing no work at import."""
from __future__ import annotations

import io
import logging
from typing import Any

from flask import Flask, jsonify, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from backend.errors import InvalidInputError, TooManyTasksError
from backend.ids import InvalidProjectId
from backend.jobs.errors import JobQueueUnavailable
from backend.layout import ProjectNotFound, StateFileError, TooManyProjects
from backend.measure.cycles_db import CyclesDBError
from backend.runtime import Runtime
from backend.settings import Settings
from backend.web.auth import install_auth
from backend.web.errors import ApiError
from backend.web.ids import ProjectIdConverter
from backend.web.ml_api import routes
from backend.web.openapi import openapi_routes
from backend.web.prometheus import install_http_metrics
from backend.web.report_api import report_routes
from backend.web.versions_api import versions_routes

logger = logging.getLogger(__name__)


class BoundedJSONProvider(DefaultJSONProvider):
    """Flask's JSON, but a document nested too deeply for the parser is invalid JSON (a 400),
    not a RecursionError (a 500)."""

    sort_keys = False

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None


def create_app(settings: Settings | None = None, *, resume: bool = True) -> Flask:
    """``resume``: re-request retrains interrupted by a crash. A server with several worker
    processes passes it to one of them only (``backend/web/server.py``), so a restart resumes
    each retrain once per deployment."""
    settings = settings or Settings.from_env()
    app = Flask("labelqueue")
    app.json_provider_class = BoundedJSONProvider
    app.json = BoundedJSONProvider(app)
    app.url_map.converters["project_id"] = ProjectIdConverter
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    runtime = Runtime.build(settings)
    app.extensions["labelqueue"] = runtime
    if resume:
        runtime.resume_interrupted()
    install_http_metrics(app)
    install_auth(app, settings)
    app.before_request(bound_streamed_body)
    app.register_blueprint(routes)
    app.register_blueprint(report_routes)
    app.register_blueprint(versions_routes)
    app.register_blueprint(openapi_routes)
    register_error_handlers(app)
    return app


def bound_streamed_body() -> None:
    """A body without ``Content-Length`` (chunked) larger than the limit is a 413.

    Werkzeug stops reading such a stream at ``MAX_CONTENT_LENGTH`` without saying so, and the
    truncated body then failed as invalid JSON (a 400). Reading one byte past the limit tells
    the two apart; the body read so far is handed on as the request's input.
    """
    if request.content_length is not None or "wsgi.input_terminated" not in request.environ:
        return
    limit = request.max_content_length
    if limit is None:
        return
    body = request.environ["wsgi.input"].read(limit + 1)
    if len(body) > limit:
        raise RequestEntityTooLarge()
    request.environ["wsgi.input"] = io.BytesIO(body)


def register_error_handlers(app: Flask) -> None:
    """Every error leaves as JSON; tracebacks go to the log, never to the caller."""

    @app.errorhandler(ApiError)
    def api_error(exc: ApiError):
        return jsonify(exc.to_dict()), exc.status

    @app.errorhandler(InvalidInputError)
    def invalid_input(exc: InvalidInputError):
        status = 413 if isinstance(exc, TooManyTasksError) else 400
        return jsonify({"error": exc.message, "status": status, "field": exc.field}), status

    @app.errorhandler(InvalidProjectId)
    def invalid_project(exc: InvalidProjectId):
        return jsonify({"error": str(exc), "status": 400, "field": "project"}), 400

    @app.errorhandler(ProjectNotFound)
    def unknown_project(exc: ProjectNotFound):
        return jsonify({"error": str(exc), "status": 404}), 404

    @app.errorhandler(TooManyProjects)
    def too_many_projects(exc: TooManyProjects):
        logger.error("%s", exc)
        return jsonify({"error": str(exc), "status": 507}), 507

    @app.errorhandler(StateFileError)
    @app.errorhandler(CyclesDBError)
    def unreadable_state(exc: Exception):
        logger.error("%s", exc)
        return jsonify({"error": str(exc), "status": 503}), 503

    @app.errorhandler(JobQueueUnavailable)
    def queue_down(exc: JobQueueUnavailable):
        logger.error("%s", exc)
        return jsonify({"error": f"{exc}; the request was not queued, retry later", "status": 503}), 503

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        message = exc.description or exc.name
        if exc.code == 413:
            message = (f"request body is larger than {app.config['MAX_CONTENT_LENGTH']} bytes "
                       "(LABELQUEUE_MAX_REQUEST_BYTES)")
        body: dict[str, object] = {"error": message, "status": exc.code}
        if getattr(exc, "field", None):
            body["field"] = exc.field
        return jsonify(body), exc.code

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        logger.exception("unhandled error")
        return jsonify({"error": f"internal error ({type(exc).__name__}); see the backend log",
                        "status": 500}), 500
