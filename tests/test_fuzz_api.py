"""Property-based fuzzing of the HTTP surface: no input may produce a 5xx.

Payloads are generated around the shapes Label Studio really sends (tasks with ``data``,
``project`` as ``"<id>.<ts>"``, label configs, webhook actions) with every field free to be
missing, mistyped or hostile. Each endpoint gets ``CASES`` examples; the total is printed.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend.model.classifier import fit_model
from backend.settings import Settings
from backend.web.app import create_app

CASES = 250
CONFIG = (Path(__file__).resolve().parents[1] / "label_config" / "text_classification.xml").read_text()
LABELS = ("card_arrival", "lost_or_stolen_card", "exchange_rate", "balance_not_updated",
          "refund_not_showing_up", "other")
ran: dict[str, int] = {}

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=30))
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=12)
projects = st.one_of(st.just("3.1700000000"), st.just(3), st.text(max_size=12), json_values)
configs = st.one_of(st.just(CONFIG), st.just("<View/>"), st.text(max_size=40), json_values,
                    st.just('<View><Text name="t" value="$t"/><Choices name="c" toName="t">'
                            '<Choice value="a"/></Choices></View>'))
task_data = st.dictionaries(st.sampled_from(["text", "txt", "meta", ""]), json_values | st.text(), max_size=3)
tasks = st.lists(st.one_of(st.fixed_dictionaries({"id": st.integers(), "data": task_data}), json_values),
                 max_size=5)
actions = st.sampled_from(["ANNOTATION_CREATED", "PROJECT_UPDATED", "START_TRAINING", "TASKS_DELETED",
                           "", "annotation_created"]) | st.text(max_size=10) | json_values


def optional(**fields):
    """A dict strategy where each field may be missing."""
    return st.fixed_dictionaries({}, optional=fields)


BODIES = {
    "/setup": optional(project=projects, schema=configs, hostname=json_values, access_token=json_values,
                       extra_params=json_values),
    "/predict": optional(project=projects, label_config=configs, tasks=tasks | json_values, params=json_values),
    "/webhook": optional(action=actions, project=st.one_of(projects, st.fixed_dictionaries({"id": projects}))),
    "/projects/3/failures": optional(task_ids=st.lists(json_values, max_size=4) | json_values),
    "/train": optional(project=projects),
}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("fuzz")
    app = create_app(Settings(data_dir=data_dir, label_studio_url="http://127.0.0.1:9", label_studio_api_key="x",
                              select_after_retrain=False))
    model = fit_model(["card not here", "lost card", "rate euro", "balance"],
                      [("card_arrival",), ("lost_or_stolen_card",), ("exchange_rate",), ("balance_not_updated",)],
                      labels=LABELS, multilabel=False, version="v1-fuzz")
    app.extensions["labelqueue"].store.save(3, model, {"number": 1})
    yield app.test_client()
    app.extensions["labelqueue"].close()  # its retrain and pool-sync threads would outlive the run
    print(f"\nfuzzed HTTP cases: {sum(ran.values())} ({ran})")


def check(response, path: str) -> None:
    ran[path] = ran.get(path, 0) + 1
    assert response.status_code < 500, (path, response.status_code, response.get_data(as_text=True)[:300])
    assert response.is_json


@pytest.mark.parametrize("path", sorted(BODIES))
def test_structured_payloads_never_cause_a_5xx(client, path):
    @settings(max_examples=CASES, deadline=None, suppress_health_check=list(HealthCheck))
    @given(body=BODIES[path])
    def run(body):
        check(client.post(path, json=body), path)

    run()


@settings(max_examples=CASES, deadline=None, suppress_health_check=list(HealthCheck))
@given(path=st.sampled_from(sorted(BODIES)), raw=st.binary(max_size=200),
       content_type=st.sampled_from(["application/json", "text/plain", "", "application/json; charset=latin-1"]))
def test_raw_bytes_never_cause_a_5xx(client, path, raw, content_type):
    check(client.post(path, data=raw, content_type=content_type), path + " (raw)")


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(path=st.text(alphabet="/abcdefghijklmnopqrstuvwxyz0123456789-_.%", max_size=30),
       method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]))
def test_unknown_routes_and_methods_get_json_4xx(client, path, method):
    response = client.open("/" + path.lstrip("/"), method=method, data=json.dumps({}),
                           content_type="application/json")
    check(response, "routes")
