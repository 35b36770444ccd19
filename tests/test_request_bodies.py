"""The request models keep the edge's own refusals: a missing or mistyped field gets the parser's
message and field, never pydantic's "Field required" or a ValidationError (a 500)."""
from __future__ import annotations

import pytest

from backend.errors import InvalidInputError
from backend.web.errors import ApiError
from backend.web.request_bodies import (
    EXAMPLE_CONFIG,
    FailuresRequest,
    FeedbackRequest,
    PredictRequest,
    SetupRequest,
    WebhookRequest,
)

FEEDBACK = {"known": ("a", "b"), "version_in_service": "v3"}


def refusal(model, body, **context) -> ApiError | InvalidInputError:
    """The edge's own refusals and the domain's input errors (both mapped to 4xx in app.py)."""
    with pytest.raises((ApiError, InvalidInputError)) as refused:
        model.parse(body, **context)
    return refused.value


@pytest.mark.parametrize(("model", "body", "context", "field", "words"), [
    (SetupRequest, {}, {}, "project", "project id"),
    (SetupRequest, {"project": "3.17"}, {}, "label_config", "non-empty string"),
    (PredictRequest, {"project": 3, "label_config": EXAMPLE_CONFIG}, {"max_tasks": 10}, "tasks", "list of task"),
    (PredictRequest, {"project": 3, "label_config": EXAMPLE_CONFIG, "tasks": [{}] * 11}, {"max_tasks": 10},
     "tasks", "limit is 10"),
    (WebhookRequest, {"project": {"id": 3}}, {}, "action", "'action' string"),
    (WebhookRequest, {"action": "ANNOTATION_CREATED", "project": {"id": True}}, {}, "project.id", "project id"),
    (FailuresRequest, {}, {}, "task_ids", "non-empty list"),
    (FeedbackRequest, {"predicted": "a", "correct": "b"}, FEEDBACK, "task_id", "or 'text'"),
    (FeedbackRequest, {"task_id": 1, "model_version": None, "predicted": "a", "correct": "b"}, FEEDBACK,
     "model_version", "non-empty string"),
    (FeedbackRequest, {"task_id": 1, "correct": "b"}, FEEDBACK, "predicted", "label or a non-empty list"),
    (FeedbackRequest, {"task_id": 1, "predicted": "a", "correct": "zzz"}, FEEDBACK, "correct", "does not know"),
])
def test_missing_or_bad_fields_get_the_parsers_refusal(model, body, context, field, words):
    refused = refusal(model, body, **context)
    assert refused.field == field and words in refused.message


def test_an_absent_model_version_is_the_one_in_service():
    item = FeedbackRequest.parse({"text": "hi", "predicted": "a", "correct": ["b", "a"]}, **FEEDBACK).feedback()
    assert item.model_version == "v3" and item.predicted == ("a",) and item.correct == ("a", "b")


def test_label_studio_bodies_parse_to_what_the_handlers_use():
    setup = SetupRequest.parse({"project": "3.1767225600", "schema": EXAMPLE_CONFIG, "extra_params": '{"batch_size": 5}'})
    assert setup.project == 3 and setup.extra_params == '{"batch_size": 5}'
    predict = PredictRequest.parse({"project": "3.1", "label_config": EXAMPLE_CONFIG, "params": "anything",
                                    "tasks": [{"id": 1, "data": {"text": "card"}}]}, max_tasks=10)
    assert predict.texts == ["card"] and predict.label_config.labels == ("card_arrival", "exchange_rate")
    assert WebhookRequest.parse({"action": "START_TRAINING", "project": {"id": 4, "title": "t"}}).project_id == 4
