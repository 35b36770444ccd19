"""Application factory: ``create_app(settings)`` builds a ready backend, doing no work at import."""
from __future__ import annotations

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from backend.web.ml_api import routes
from backend.web.auth import install_auth
from backend.errors import ApiError
from backend.jobs.errors import JobQueueUnavailable
from backend.web.report_api import report_routes
from backend.web.prometheus import install_http_metrics
from backend.web.versions_api import versions_routes
from backend.runtime import Runtime
from backend.settings import Settings

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    app = Flask("labelqueue")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.json.sort_keys = False
    runtime = Runtime.build(settings)
    app.extensions["labelqueue"] = runtime
    runtime.resume_interrupted()
    install_http_metrics(app)
    install_auth(app, settings)
    app.register_blueprint(routes)
    app.register_blueprint(report_routes)
    app.register_blueprint(versions_routes)
    register_error_handlers(app)
    return app


def register_error_handlers(app: Flask) -> None:
    """Every error leaves as JSON; tracebacks go to the log, never to the caller."""

    @app.errorhandler(ApiError)
    def api_error(exc: ApiError):
        return jsonify(exc.to_dict()), exc.status

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
        return jsonify({"error": message, "status": exc.code}), exc.code

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        logger.exception("unhandled error")
        return jsonify({"error": f"internal error ({type(exc).__name__}); see the backend log",
                        "status": 500}), 500
