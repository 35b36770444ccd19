"""What the HTTP edge answers to hostile input: deeply nested JSON, oversized streamed bodies,
and what ``/health`` tells a caller who has not authenticated."""
from __future__ import annotations

import base64
import io

import pytest
from label_studio_sdk.core.api_error import ApiError as LabelStudioApiError

from backend.errors import HostNotAllowedError
from backend.jobs.errors import describe_failure
from backend.jobs.scheduler import CoalescingScheduler
from backend.labelstudio.errors import LabelStudioUnavailable, translated
from backend.labelstudio.gateway import Connections, LabelStudioUnreachable
from backend.settings import Settings
from backend.store import ModelStore
from backend.web.app import create_app

CONFIG = ('<View><Text name="t" value="$text"/><Choices name="c" toName="t"><Choice value="a"/>'
          '<Choice value="b"/></Choices></View>')
JSON_ENDPOINTS = ["/setup", "/predict", "/webhook", "/train", "/projects/1/failures", "/projects/1/feedback"]
NESTED = "[" * 10_000 + "]" * 10_000


@pytest.fixture()
def client(tmp_path):
    return create_app(Settings(data_dir=tmp_path / "data", label_studio_url="http://127.0.0.1:9",
                               label_studio_api_key="x")).test_client()


@pytest.mark.parametrize("path", JSON_ENDPOINTS)
def test_deeply_nested_json_is_a_400_on_every_json_endpoint(client, path):
    response = client.post(path, data=NESTED, content_type="application/json")
    assert response.status_code == 400 and "JSON" in response.get_json()["error"]


def test_deeply_nested_extra_params_are_a_400_naming_the_field(client):
    response = client.post("/setup", json={"project": 1, "extra_params": NESTED, "schema": CONFIG})
    assert response.status_code == 400 and response.get_json()["field"] == "extra_params"


def chunked_post(client, size: int):
    return client.post("/webhook", input_stream=io.BytesIO(b" " * size), content_type="application/json",
                       headers={"Transfer-Encoding": "chunked"}, environ_overrides={"wsgi.input_terminated": True})


def test_oversized_chunked_body_is_a_413(tmp_path):
    client = create_app(Settings(data_dir=tmp_path, max_request_bytes=1000)).test_client()
    response = chunked_post(client, 5000)
    assert response.status_code == 413 and "LABELQUEUE_MAX_REQUEST_BYTES" in response.get_json()["error"]


def test_chunked_body_within_the_limit_is_read_whole(tmp_path):
    client = create_app(Settings(data_dir=tmp_path, max_request_bytes=1000)).test_client()
    body = b'{"action": "PROJECT_UPDATED", "project": {"id": 1}}'
    response = client.post("/webhook", input_stream=io.BytesIO(body), content_type="application/json",
                           headers={"Transfer-Encoding": "chunked"}, environ_overrides={"wsgi.input_terminated": True})
    assert response.status_code == 200 and response.get_json()["status"] == "ignored"


def leaky_label_studio() -> None:
    """A gateway call answered by a page that carries a session cookie and a body of its own."""
    with translated("reading the annotated tasks of project 3"):
        raise LabelStudioApiError(status_code=502, headers={"set-cookie": "sessionid=s3ss10n"},
                                  body="<html>secret page</html>")


def test_label_studio_errors_are_summarised_to_their_status_code():
    with pytest.raises(LabelStudioUnavailable) as failed:
        leaky_label_studio()
    summary = describe_failure(failed.value)
    assert "HTTP 502" in summary and "s3ss10n" not in summary and "secret page" not in summary


def test_health_shows_only_a_reason_code_and_metrics_the_summary(tmp_path):
    settings = Settings(data_dir=tmp_path, basic_auth_user="u", basic_auth_password="p")
    app = create_app(settings)
    runtime = app.extensions["labelqueue"]

    def refused(project_id, force):
        leaky_label_studio()

    runtime.retrains = CoalescingScheduler("retrain", refused, threads=1, retry_delays=(60.0,))
    runtime.retrains.request(3)
    assert runtime.retrains.wait_idle(5)
    client = app.test_client()
    health = client.get("/health")
    assert health.status_code == 200
    assert health.get_json() == {"status": "UP", "model_class": "labelqueue", "degraded": "label_studio_unreachable"}
    auth = {"Authorization": "Basic " + base64.b64encode(b"u:p").decode()}
    metrics = client.get("/metrics", headers=auth).get_data(as_text=True)
    assert "HTTP 502" in metrics
    assert "s3ss10n" not in metrics and "secret page" not in metrics


def connections(tmp_path, **settings) -> Connections:
    return Connections(Settings(data_dir=tmp_path, **settings), ModelStore(tmp_path))


@pytest.mark.parametrize("hostname", ["http://evil.example:8080", "http://127.0.0.2:8080",
                                      "http://localhost:8080/api/steal?x=1", "http://u:p@localhost:8080",
                                      "file:///etc/passwd", "http://localhost:bad"])
def test_setup_hostname_outside_the_allow_list_is_refused(tmp_path, hostname):
    found = connections(tmp_path, allowed_ls_hosts="localhost")
    with pytest.raises(HostNotAllowedError) as refused:
        found.remember(1, hostname, "token")
    assert refused.value.field == "hostname"
    with pytest.raises(LabelStudioUnreachable):
        found.resolve(1)


def test_allowed_setup_hostname_is_kept_as_scheme_and_host_only(tmp_path):
    found = connections(tmp_path, allowed_ls_hosts="localhost:8080, ls.internal")
    found.remember(1, "http://localhost:8080/", "token")
    found.remember(2, "https://LS.internal", "token")
    assert found.resolve(1).url == "http://localhost:8080" and found.resolve(2).url == "https://ls.internal"


def test_configured_url_host_is_allowed_without_a_list(tmp_path):
    found = connections(tmp_path, label_studio_url="http://ls.internal:8080")  # no API key: fallback mode
    found.remember(1, "http://ls.internal:8080", "token")
    assert found.resolve(1).url == "http://ls.internal:8080"


def test_a_remembered_host_off_the_list_is_never_called(tmp_path):
    found = connections(tmp_path, allowed_ls_hosts="localhost")
    (found.store.create_project(1) / "connection.json").write_text(
        '{"url": "http://evil.example/collect", "api_key": "t"}')  # written before the list, or planted
    with pytest.raises(LabelStudioUnreachable):
        found.resolve(1)


def test_setup_with_a_host_off_the_list_is_a_400_naming_hostname(tmp_path):
    client = create_app(Settings(data_dir=tmp_path)).test_client()
    response = client.post("/setup", json={"project": 1, "hostname": "http://evil.example", "access_token": "t",
                                           "schema": CONFIG})
    assert response.status_code == 400 and response.get_json()["field"] == "hostname"
