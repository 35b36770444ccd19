"""``GET /openapi.json``: a valid OpenAPI 3.1 document of every route, generated from the models
the handlers validate with."""
from __future__ import annotations

import pytest
from flask import Blueprint
from openapi_spec_validator import validate

from backend.settings import Settings
from backend.web.app import create_app
from backend.web.openapi import UndocumentedRoute, build_document, openapi_path
from backend.web.request_bodies import SetupRequest


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    app = create_app(Settings(data_dir=tmp_path_factory.mktemp("openapi"), basic_auth_user="u",
                              basic_auth_password="p"))
    yield app
    app.extensions["labelqueue"].close()


@pytest.fixture(scope="module")
def document(app):
    return app.test_client().get("/openapi.json", auth=("u", "p")).get_json()


def test_document_is_valid_openapi_3_1(document):
    assert document["openapi"].startswith("3.1")
    validate(document)


def test_every_route_and_method_is_documented(app, document):
    served = {(openapi_path(rule), method.lower()) for rule in app.url_map.iter_rules() if rule.endpoint != "static"
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    assert served == documented
    assert {"/setup", "/predict", "/webhook", "/health", "/versions", "/train", "/openapi.json"} <= set(document["paths"])


def test_request_schemas_come_from_the_models_the_handlers_parse_with(document):
    published = document["components"]["schemas"]["SetupRequest"]
    assert published["required"] == ["project", "schema"]
    assert set(published["properties"]) == {f.alias or name for name, f in SetupRequest.model_fields.items()}
    body = document["paths"]["/setup"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/SetupRequest"}


def test_label_studio_fields_are_described_as_label_studio_sends_them(document):
    schemas = document["components"]["schemas"]
    project = schemas["PredictRequest"]["properties"]["project"]["anyOf"]
    assert {"type": "integer", "minimum": 1, "maximum": 2**31 - 1} in project
    assert any(p.get("type") == "string" and "pattern" in p for p in project)
    assert set(schemas["PredictRequest"]["properties"]) >= {"tasks", "label_config", "params"}
    assert set(schemas["LabelStudioParams"]["properties"]) == {"login", "password", "context"}
    assert set(schemas["WebhookRequest"]["required"]) == {"action", "project"}


def test_errors_share_one_body_and_open_routes_need_no_auth(document):
    error = {"$ref": "#/components/schemas/ErrorBody"}
    setup = document["paths"]["/setup"]["post"]["responses"]
    for status in ("400", "401", "413", "415", "507", "default"):
        assert setup[status]["content"]["application/json"]["schema"] == error
    health = document["paths"]["/health"]["get"]
    assert "401" not in health["responses"] and "security" not in health
    assert document["components"]["schemas"]["ErrorBody"]["required"] == ["error", "status"]


def test_a_route_without_a_contract_is_refused_rather_than_left_out(tmp_path):
    app = create_app(Settings(data_dir=tmp_path))
    extra = Blueprint("extra", __name__)
    extra.add_url_rule("/undocumented", "undocumented", lambda: "")
    app.register_blueprint(extra)
    with pytest.raises(UndocumentedRoute):
        build_document(app)
    app.extensions["labelqueue"].close()


def test_an_answer_that_breaks_its_model_is_a_500_not_a_silent_lie(tmp_path, monkeypatch):
    app = create_app(Settings(data_dir=tmp_path))
    monkeypatch.setattr(app.extensions["labelqueue"], "degraded", lambda: type("D", (), {"reason": 3})())
    response = app.test_client().get("/health")
    assert response.status_code == 500 and response.get_json()["status"] == 500
    app.extensions["labelqueue"].close()


def test_only_the_paths_auth_leaves_open_are_documented_without_auth(document):
    from backend.web.auth import OPEN_PATHS

    unauthenticated = {path for path, item in document["paths"].items() for op in item.values() if "security" not in op}
    assert unauthenticated == set(OPEN_PATHS)
    assert {"webhookSecret": []} in document["paths"]["/webhook"]["post"]["security"]
