"""Access control: basic auth on everything but /health, a shared secret on /webhook."""
from __future__ import annotations

import base64
import logging

import pytest

from backend.settings import Settings, SettingsError
from backend.web.app import create_app

USER, PASSWORD, SECRET = "labelstudio", "s3cret-pass", "hook-secret-value"


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture()
def client(tmp_path):
    settings = Settings(data_dir=tmp_path, basic_auth_user=USER, basic_auth_password=PASSWORD)
    return create_app(settings).test_client()


def test_health_stays_open_for_label_studios_check(client):
    assert client.get("/health").status_code == 200


@pytest.mark.parametrize("method, path", [("post", "/setup"), ("post", "/predict"), ("get", "/metrics"),
                                          ("get", "/"), ("get", "/projects/1/queue"),
                                          ("post", "/projects/1/failures")])
def test_every_other_endpoint_requires_basic_auth(client, method, path):
    response = getattr(client, method)(path, json={})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_wrong_password_is_refused_and_right_one_accepted(client):
    assert client.get("/metrics", headers=basic(USER, "nope")).status_code == 401
    assert client.get("/metrics", headers=basic(USER, PASSWORD)).status_code == 200


WEBHOOK = {"action": "PROJECT_UPDATED", "project": {"id": 1}}


def test_webhook_is_under_basic_auth_like_every_other_endpoint(client):
    assert client.post("/webhook", json=WEBHOOK).status_code == 401
    assert client.post("/webhook", json=WEBHOOK, headers=basic(USER, "nope")).status_code == 401
    assert client.post("/webhook", json=WEBHOOK, headers=basic(USER, PASSWORD)).status_code == 200


def test_webhook_skips_basic_auth_only_when_the_admin_opts_out(tmp_path):
    settings = Settings(data_dir=tmp_path, basic_auth_user=USER, basic_auth_password=PASSWORD,
                        webhook_skip_basic_auth=True)
    client = create_app(settings).test_client()
    assert client.post("/webhook", json=WEBHOOK).status_code == 200
    assert client.get("/metrics").status_code == 401  # the opt-out is for /webhook only


def test_webhook_with_basic_auth_and_secret_needs_both(tmp_path):
    settings = Settings(data_dir=tmp_path, basic_auth_user=USER, basic_auth_password=PASSWORD, webhook_secret=SECRET)
    client = create_app(settings).test_client()
    assert client.post("/webhook", json=WEBHOOK, headers=basic(USER, PASSWORD)).status_code == 401
    assert client.post("/webhook", json=WEBHOOK, headers={"X-Labelqueue-Secret": SECRET}).status_code == 401
    both = {**basic(USER, PASSWORD), "X-Labelqueue-Secret": SECRET}
    assert client.post("/webhook", json=WEBHOOK, headers=both).status_code == 200


def test_webhook_requires_the_secret_header_when_configured(tmp_path):
    client = create_app(Settings(data_dir=tmp_path, webhook_secret=SECRET)).test_client()
    body = {"action": "PROJECT_UPDATED", "project": {"id": 1}}
    assert client.post("/webhook", json=body).status_code == 401
    assert client.post("/webhook", json=body, headers={"X-Labelqueue-Secret": "guess"}).status_code == 401
    assert client.post("/webhook", json=body, headers={"X-Labelqueue-Secret": SECRET}).status_code == 200


def test_refusals_are_logged_without_payload_or_secrets(tmp_path, caplog):
    client = create_app(Settings(data_dir=tmp_path, basic_auth_user=USER, basic_auth_password=PASSWORD,
                                 webhook_secret=SECRET)).test_client()
    with caplog.at_level(logging.DEBUG):
        client.post("/predict", json={"tasks": [{"data": {"text": "private customer text"}}]},
                    headers=basic(USER, "wrong-password-attempt"))
        client.post("/webhook", json={"action": "X", "project": {"id": 1}},
                    headers={**basic(USER, PASSWORD), "X-Labelqueue-Secret": "bad"})
    logged = caplog.text
    assert "401 POST /predict" in logged
    for secret in ("private customer text", "wrong-password-attempt", PASSWORD, SECRET):
        assert secret not in logged


def test_metrics_never_show_secrets(tmp_path):
    settings = Settings(data_dir=tmp_path, basic_auth_user=USER, basic_auth_password=PASSWORD,
                        webhook_secret=SECRET, label_studio_api_key="ls-token-123")
    body = create_app(settings).test_client().get("/metrics", headers=basic(USER, PASSWORD)).get_data(as_text=True)
    for secret in (PASSWORD, SECRET, "ls-token-123"):
        assert secret not in body


def test_half_configured_basic_auth_is_a_settings_error():
    with pytest.raises(SettingsError):
        Settings.from_env({"LABELQUEUE_BASIC_AUTH_USER": "only-user"})


@pytest.mark.parametrize("path", ["/metrics%0a2026-12-02 10:00:00,000 INFO forged: admin logged in",
                                  "/metrics%0d%0aforged", "/metrics%1b[31mred", "/metrics%c2%85next-line"])
def test_refusals_log_the_path_escaped_so_it_cannot_forge_lines_or_colour_the_terminal(client, caplog, path):
    with caplog.at_level(logging.WARNING, logger="backend.web.auth"):
        assert client.get(path).status_code == 401
    (record,) = [r for r in caplog.records if r.name == "backend.web.auth"]
    line = record.getMessage()
    assert line.startswith("401 GET /metrics")
    assert line.isascii() and line.isprintable()
