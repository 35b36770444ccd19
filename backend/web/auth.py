"""Who may call the backend.

* Optional HTTP basic auth (``LABELQUEUE_BASIC_AUTH_USER`` / ``..._PASSWORD``) on every endpoint
  except ``/health``: Label Studio sends these credentials when they are set in the model
  connection, and its health check must keep working for the connection to show as healthy.
* ``/webhook`` is under basic auth too (put the credentials in the webhook's URL in Label
  Studio: ``http://user:password@host:9090/webhook``) unless the admin opts out with
  ``LABELQUEUE_WEBHOOK_SKIP_BASIC_AUTH=true``. When ``LABELQUEUE_WEBHOOK_SECRET`` is set, the
  caller must also send that value in the ``X-Labelqueue-Secret`` header.

Refusals are logged with method, path and client address only; never the body or headers,
which may carry tokens. The path is escaped (:func:`printable`), so a crafted URL cannot forge
a log line or send terminal escapes to whoever reads the log.
"""
from __future__ import annotations

import hmac
import logging

from flask import Flask, Response, jsonify, request

from backend.settings import Settings

logger = logging.getLogger(__name__)

SECRET_HEADER = "X-Labelqueue-Secret"
OPEN_PATHS = frozenset({"/health"})


def install_auth(app: Flask, settings: Settings) -> None:
    @app.before_request
    def authenticate() -> Response | tuple[Response, int] | None:
        if request.path in OPEN_PATHS:
            return None
        refused = None if request.path == "/webhook" and settings.webhook_skip_basic_auth \
            else _check_basic(settings)
        if refused is None and request.path == "/webhook":
            refused = _check_webhook(settings)
        return refused


def _check_webhook(settings: Settings):
    if not settings.webhook_secret:
        return None
    if _same(request.headers.get(SECRET_HEADER, ""), settings.webhook_secret):
        return None
    return _refuse(f"missing or wrong {SECRET_HEADER} header (LABELQUEUE_WEBHOOK_SECRET is set)")


def _check_basic(settings: Settings):
    if not settings.basic_auth_user:
        return None
    auth = request.authorization
    if (auth is not None and auth.type == "basic"
            and _same(auth.username or "", settings.basic_auth_user)
            and _same(auth.password or "", settings.basic_auth_password or "")):
        return None
    response, status = _refuse("HTTP basic auth required: use the user and password set in "
                               "Label Studio's model connection")
    response.headers["WWW-Authenticate"] = 'Basic realm="labelqueue"'
    return response, status


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def printable(text: str) -> str:
    """``text`` with control characters, backslashes and non-ASCII escaped, for one log line."""
    return text.encode("unicode_escape").decode("ascii")


def _refuse(message: str) -> tuple[Response, int]:
    logger.warning("401 %s %s from %s", printable(request.method), printable(request.path),
                   request.remote_addr)
    return jsonify({"error": message, "status": 401}), 401
