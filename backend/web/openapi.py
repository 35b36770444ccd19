"""``GET /openapi.json``: the OpenAPI 3.1 document of every route, generated from the app itself.

Paths and methods come from Flask's URL map; each view declares its body and answers with
:func:`documented`, naming the pydantic models it validates with (``request_bodies.py``,
``response_bodies.py``), and pydantic writes their JSON Schema (2020-12, the dialect of
OpenAPI 3.1). Nothing here is written by hand beside the handlers, so the document cannot
drift from what they accept and send; ``tests/test_openapi.py`` checks that every route is
documented and that the document is valid, and ``tests/test_schemathesis.py`` calls the app
with what the document promises.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from werkzeug.routing import Rule

from backend.web.auth import OPEN_PATHS, SECRET_HEADER
from backend.web.ids import MAX_ID
from backend.web.response_bodies import ErrorBody, Media

openapi_routes = Blueprint("labelqueue_openapi", __name__)

OPENAPI_VERSION = "3.1.0"
REF = "#/components/schemas/{model}"
#: What every route may answer besides its own codes (see ``register_error_handlers``).
COMMON_ERRORS = {401: "HTTP basic auth required (LABELQUEUE_BASIC_AUTH_USER is set)",
                 500: "an unexpected error; details are in the backend log",
                 503: "state on disk or the job queue cannot be reached; retry later"}
ERROR_TEXT = {400: "the request is invalid: 'error' says why, 'field' names the field",
              404: "unknown project, or nothing recorded for it yet",
              413: "the body or the batch is larger than allowed",
              415: "the body is not application/json",
              507: "the backend keeps as many projects as it may (LABELQUEUE_MAX_PROJECTS)"}
Answer = type[BaseModel] | Media | tuple[type[BaseModel] | Media, ...]


@dataclass(frozen=True)
class Operation:
    """What one view accepts and answers: ``answers`` maps a status to its body's model."""

    answers: Mapping[int, Answer]
    body: type[BaseModel] | None = None
    errors: tuple[int, ...] = ()
    query: tuple[dict[str, Any], ...] = ()


def documented(answers: Mapping[int, Answer], *, body: type[BaseModel] | None = None,
               errors: tuple[int, ...] = (), query: tuple[dict[str, Any], ...] = ()) -> Callable[[Callable], Callable]:
    """Attach the view's contract. ``errors``: statuses besides those every route may answer."""

    def attach(view: Callable) -> Callable:
        view.openapi = Operation(answers, body, errors, query)  # type: ignore[attr-defined]
        return view

    return attach


def query_parameter(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


@openapi_routes.get("/openapi.json")
@documented({200: ()})
def openapi_document():
    """This document."""
    return jsonify(build_document(current_app))


class UndocumentedRoute(LookupError):
    """A view without :func:`documented`: the document would silently miss it."""


def build_document(app: Flask) -> dict[str, Any]:
    operations = [(rule, method, operation_of(app, rule)) for rule in sorted(app.url_map.iter_rules(), key=str)
                  if rule.endpoint != "static" for method in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    models = {m for _, _, op in operations for m in models_of(op)}
    refs, schemas = models_json_schema([(m, "validation") for m in sorted(models, key=lambda m: m.__name__)],
                                       ref_template=REF)
    paths: dict[str, dict[str, Any]] = {}
    for rule, method, op in operations:
        paths.setdefault(openapi_path(rule), {})[method.lower()] = operation_object(app, rule, op, refs)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "labelqueue", "version": app.config.get("LABELQUEUE_VERSION", "0.1.0"),
                 "description": "Label Studio ML backend with active-learning batch selection. The Label "
                                "Studio routes (/setup, /predict, /webhook, /health, /versions, /train) take "
                                "what Label Studio 1.23 sends; the /projects routes are for admins."},
        "paths": paths,
        "components": {"schemas": schemas.get("$defs", {}),
                       "securitySchemes": {
                           "basic": {"type": "http", "scheme": "basic",
                                     "description": "when LABELQUEUE_BASIC_AUTH_USER is set"},
                           "webhookSecret": {"type": "apiKey", "in": "header", "name": SECRET_HEADER,
                                             "description": "when LABELQUEUE_WEBHOOK_SECRET is set"}}},
    }


def operation_of(app: Flask, rule: Rule) -> Operation:
    operation = getattr(app.view_functions[rule.endpoint], "openapi", None)
    if operation is None:
        raise UndocumentedRoute(f"{rule} ({rule.endpoint}) has no @documented contract")
    return operation


def models_of(op: Operation) -> set[type[BaseModel]]:
    found = {ErrorBody} | ({op.body} if op.body else set())
    for answer in op.answers.values():
        found |= {a for a in as_tuple(answer) if isinstance(a, type)}
    return found


def as_tuple(answer: Answer) -> tuple[type[BaseModel] | Media, ...]:
    return answer if isinstance(answer, tuple) else (answer,)


def openapi_path(rule: Rule) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)


def operation_object(app: Flask, rule: Rule, op: Operation, refs: dict) -> dict[str, Any]:
    view = app.view_functions[rule.endpoint]
    doc = (view.__doc__ or "").strip()
    found: dict[str, Any] = {"operationId": f"{rule.endpoint}:{rule.rule}", "summary": doc.split("\n")[0] or rule.rule}
    if doc:
        found["description"] = doc
    parameters = [{"name": arg, "in": "path", "required": True,
                   "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID}} for arg in sorted(rule.arguments)]
    parameters += list(op.query)
    if parameters:
        found["parameters"] = parameters
    if op.body is not None:
        found["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": {"$ref": ref(refs, op.body)}}}}
    responses = {str(status): {"description": description_of(answer), "content": content_of(answer, refs)}
                 for status, answer in op.answers.items()}
    error = {"application/json": {"schema": {"$ref": ref(refs, ErrorBody)}}}
    codes = set(op.errors) | set(COMMON_ERRORS) | ({400, 413, 415} if op.body else set()) \
        | ({400} if rule.arguments else set())
    public = rule.rule in OPEN_PATHS
    if public:
        codes.discard(401)
    for status in sorted(codes):
        responses[str(status)] = {"description": ERROR_TEXT.get(status) or COMMON_ERRORS[status], "content": error}
    responses["default"] = {"description": "any other error, with the same body", "content": error}
    found["responses"] = responses
    if not public:
        found["security"] = security_of(rule)
    return found


def security_of(rule: Rule) -> list[dict[str, list]]:
    """Each is required only when configured (``backend/web/auth.py``), hence the empty choice."""
    if rule.rule == "/webhook":
        return [{}, {"basic": []}, {"webhookSecret": []}, {"basic": [], "webhookSecret": []}]
    return [{}, {"basic": []}]


def description_of(answer: Answer) -> str:
    media = [a for a in as_tuple(answer) if isinstance(a, Media)]
    return "; or ".join(["OK"] * (len(media) < len(as_tuple(answer))) + [m.description for m in media]) or "OK"


def content_of(answer: Answer, refs: dict) -> dict[str, Any]:
    content: dict[str, Any] = {}
    answers = as_tuple(answer)
    if not answers:  # a document of its own kind (this one)
        return {"application/json": {"schema": {"type": "object"}}}
    for item in answers:
        if isinstance(item, Media):
            content[item.media_type] = {"schema": {"type": "string"}}
        else:
            content["application/json"] = {"schema": {"$ref": ref(refs, item)}}
    return content


def ref(refs: dict, model: type[BaseModel]) -> str:
    return refs[(model, "validation")]["$ref"]
