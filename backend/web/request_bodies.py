"""The JSON bodies the HTTP edge accepts, as pydantic models: handlers validate with these, and
``/openapi.json`` is generated from them (``backend/web/openapi.py``).

Each field is checked by the edge's own parser (``backend/web/ids.py``, ``parse_label_config``,
``task_texts``, ...), wired in with a plain validator, so a refusal is the app's 4xx JSON
error, worded as before (an :class:`~backend.errors.ApiError` is not a ``ValueError``, so it
passes through pydantic unchanged), and pydantic's own type errors never reach a caller. The
``json_schema_input_type`` of each validator is what the document shows a caller may send.

A required field that is absent is handed to its parser as ``null`` (:class:`RequestBody`), so
"missing" reads the same as it always did instead of pydantic's "Field required". Fields are
checked in declaration order, so the first problem reported is the one reported before.

Label Studio 1.23's bodies are those of ``label_studio/ml/api_connector.py`` (``MLApi.setup``,
``_prep_prediction_req``, ``train``) and of its webhooks (``label_studio/webhooks``).
"""
from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, ValidationInfo, field_validator, model_validator

from backend.labelstudio.label_config import parse_label_config
from backend.measure.cycles_db import Feedback
from backend.model.labelconfig import TaskSpec
from backend.model.predict import task_texts
from backend.web.errors import ApiError
from backend.web.ids import MAX_ID, MAX_IDS_PER_CALL, bounded_id, parse_task_ids, project_id_of

#: What Label Studio sends as ``project`` to ML endpoints (``"<id>.<created-timestamp>"``) or
#: elsewhere (a plain id); the document says so, the parser (``project_id_of``) decides.
ProjectKeyInput = Annotated[int, Field(ge=1, le=MAX_ID)] | Annotated[
    str, Field(pattern=r"^[0-9]{1,10}(\.[0-9]+)?$", description="'<id>' or '<id>.<created-timestamp>'")]
ProjectKey = Annotated[int, PlainValidator(project_id_of, json_schema_input_type=ProjectKeyInput)]

LabelConfig = Annotated[TaskSpec, PlainValidator(
    parse_label_config, json_schema_input_type=Annotated[str, Field(
        min_length=1, description="the project's labelling config (XML): a <Choices> on a <Text value=\"$field\">")])]

#: A field the edge takes as it comes and hands on (its consumer validates it further, or ignores it).
Passed = Annotated[Any, PlainValidator(lambda value: value)]

MAX_TEXT = 100_000
MAX_LABELS = 1_000

#: The config and project key of the document's examples: what Label Studio 1.23 sends.
EXAMPLE_CONFIG = ('<View><Text name="text" value="$text"/><Choices name="intent" toName="text" choice="single">'
                  '<Choice value="card_arrival"/><Choice value="exchange_rate"/></Choices></View>')
EXAMPLE_PROJECT = "3.1767225600"


def examples(*bodies: dict[str, Any]) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": list(bodies)})


class RequestBody(BaseModel):
    """A JSON object body. Unknown fields are ignored: Label Studio sends more than we read."""

    model_config = ConfigDict(extra="ignore", arbitrary_types_allowed=True, populate_by_name=False)

    @model_validator(mode="before")
    @classmethod
    def absent_is_null(cls, data: Any) -> Any:
        """Hand a missing required field to its parser as ``null``: the parser words the error."""
        if not isinstance(data, dict):
            return data
        required = {f.alias or name: None for name, f in cls.model_fields.items() if f.is_required()}
        return required | data

    @classmethod
    def parse(cls, body: dict[str, Any], **context: Any):
        """``body`` validated, or the :class:`ApiError` of its first problem."""
        return cls.model_validate(body, context=context)


class LabelStudioParams(BaseModel):
    """``params`` of ``/predict`` and ``/train``: the project's task-data credentials and the
    interactive context. Not read: tasks carry their text inline."""

    login: str | None = None
    password: str | None = None
    context: dict[str, Any] | None = None


class SetupRequest(RequestBody):
    """``POST /setup`` (``MLApi.setup``): sent when the backend is connected and before predictions."""

    model_config = examples({"project": EXAMPLE_PROJECT, "schema": EXAMPLE_CONFIG, "hostname": "http://localhost:8080",
                             "access_token": "<token>", "extra_params": None})

    project: ProjectKey
    schema_: LabelConfig = Field(alias="schema")
    hostname: Annotated[Passed, Field(json_schema_extra={"type": ["string", "null"]},
                                      description="Label Studio's own URL (its HOSTNAME setting)")] = None
    access_token: Annotated[Passed, Field(json_schema_extra={"type": ["string", "null"]},
                                          description="the project creator's API token")] = None
    extra_params: Annotated[Passed, Field(
        json_schema_extra={"type": ["object", "string", "null"]},
        description="the connection's 'extra params': an object or its JSON text with batch_size, mix, "
                    "control_overlap")] = None


class Task(BaseModel):
    """One Label Studio task as ``/predict`` receives it; only ``data`` is read."""

    model_config = ConfigDict(extra="allow")

    id: int | None = None
    data: dict[str, Any] = Field(description="the task's data; the config's <Text value=\"$field\"> names the key")


class PredictRequest(RequestBody):
    """``POST /predict`` (``MLApi._prep_prediction_req``). Parse with ``max_tasks=`` in the context."""

    model_config = examples({"project": EXAMPLE_PROJECT, "label_config": EXAMPLE_CONFIG,
                             "tasks": [{"id": 17, "data": {"text": "my card has not arrived"}}],
                             "params": {"login": None, "password": None, "context": None}})

    project: ProjectKey
    label_config: LabelConfig
    texts: list[str] = Field(alias="tasks")
    params: LabelStudioParams | None = None

    @field_validator("texts", mode="plain", json_schema_input_type=list[Task])
    @classmethod
    def task_texts(cls, tasks: Any, info: ValidationInfo) -> list[str]:
        return task_texts(tasks, info.data["label_config"], info.context["max_tasks"])

    @field_validator("params", mode="plain", json_schema_input_type=LabelStudioParams | None)
    @classmethod
    def unread(cls, params: Any) -> None:
        """Not read (see :class:`LabelStudioParams`), so not refused whatever its shape."""
        return None


class WebhookProject(BaseModel):
    """Label Studio's project serializer in a webhook payload; only ``id`` is read."""

    model_config = ConfigDict(extra="allow")

    id: ProjectKeyInput


def webhook_project(raw: Any) -> int:
    return project_id_of(raw.get("id") if isinstance(raw, dict) else raw, field="project.id")


def webhook_action(raw: Any) -> str:
    if not isinstance(raw, str) or not raw:
        raise ApiError("webhook body needs an 'action' string", field="action")
    return raw


class WebhookRequest(RequestBody):
    """``POST /webhook``: Label Studio's webhook payloads (``ANNOTATION_CREATED`` with
    ``annotation`` and ``task``, ``TASKS_CREATED`` with ``tasks``, ...) and the ``START_TRAINING``
    call of ``MLApi.train``. Only ``action`` and the project id are read; see ``backend/web/webhook.py``."""

    model_config = examples(
        {"action": "ANNOTATION_CREATED", "project": {"id": 3, "title": "intents"},
         "task": {"id": 17, "data": {"text": "my card has not arrived"}},
         "annotation": {"id": 5, "task": 17, "result": [{"from_name": "intent", "to_name": "text", "type": "choices",
                                                        "value": {"choices": ["card_arrival"]}}]}},
        {"action": "START_TRAINING", "project": {"id": 3, "title": "intents"}})

    action: Annotated[str, PlainValidator(webhook_action, json_schema_input_type=Annotated[str, Field(
        min_length=1, description="the event, e.g. ANNOTATION_CREATED, ANNOTATIONS_DELETED, START_TRAINING, "
                                  "TASKS_CREATED, TASKS_DELETED; others are ignored")])]
    project_id: Annotated[int, Field(alias="project"), PlainValidator(
        webhook_project, json_schema_input_type=WebhookProject | ProjectKeyInput)]


class TrainRequest(RequestBody):
    """``POST /train``: the legacy call of ``MLApi.train`` (``annotations``, ``label_config`` and
    ``params`` are sent too, and not read: a retrain reads the annotations itself)."""

    model_config = examples({"project": EXAMPLE_PROJECT, "annotations": [], "label_config": EXAMPLE_CONFIG})

    project: ProjectKey


class FailuresRequest(RequestBody):
    """``POST /projects/<id>/failures``: tasks an admin saw the model get wrong."""

    model_config = examples({"task_ids": [17, 18]})

    task_ids: Annotated[list[int], PlainValidator(parse_task_ids, json_schema_input_type=Annotated[
        list[Annotated[int, Field(ge=1, le=MAX_ID)]], Field(min_length=1, max_length=MAX_IDS_PER_CALL)])]


Labels = Annotated[str, Field(min_length=1)] | Annotated[list[Annotated[str, Field(min_length=1)]],
                                                          Field(min_length=1, max_length=MAX_LABELS)]


class FeedbackRequest(RequestBody):
    """``POST /projects/<id>/feedback``: one production outcome. Parse with ``known`` (the model's
    labels, or None before a model) and ``version_in_service`` in the context."""

    model_config = examples({"task_id": 17, "predicted": "exchange_rate", "correct": "card_arrival"},
                            {"text": "where is my card", "predicted": ["card_arrival"], "correct": ["card_arrival"]})

    NEEDS_ONE: ClassVar[str] = "give 'task_id' (a Label Studio task) or 'text' (what the model saw), or both"

    task_id: Annotated[int | None, PlainValidator(
        lambda raw: None if raw is None else bounded_id(raw, field="task_id"),
        json_schema_input_type=Annotated[int, Field(ge=1, le=MAX_ID)] | None)] = None
    text: Annotated[str | None, PlainValidator(
        lambda raw: None if raw is None else feedback_text(raw),
        json_schema_input_type=Annotated[str, Field(min_length=1, max_length=MAX_TEXT)] | None)] = None
    model_version: str = Field(default_factory=str, description="default: the version in service")
    predicted: tuple[str, ...]
    correct: tuple[str, ...]

    @model_validator(mode="before")
    @classmethod
    def version_in_service(cls, data: Any, info: ValidationInfo) -> Any:
        """An absent ``model_version`` is the one in service; an explicit ``null`` is refused."""
        if isinstance(data, dict) and "model_version" not in data:
            data = data | {"model_version": info.context["version_in_service"]}
        return data

    @field_validator("model_version", mode="plain", json_schema_input_type=Annotated[
        str, Field(min_length=1, max_length=200)])
    @classmethod
    def version(cls, raw: Any, info: ValidationInfo) -> str:
        """Checked after the task: with neither ``task_id`` nor ``text`` that is the error to report."""
        if info.data.get("task_id") is None and info.data.get("text") is None:
            raise ApiError(cls.NEEDS_ONE, field="task_id")
        if not isinstance(raw, str) or not raw.strip() or len(raw) > 200:
            raise ApiError("'model_version' must be a non-empty string (default: the version in service)",
                           field="model_version")
        return raw

    @field_validator("predicted", "correct", mode="plain", json_schema_input_type=Labels)
    @classmethod
    def labels(cls, raw: Any, info: ValidationInfo) -> tuple[str, ...]:
        return parse_labels(raw, info.field_name, info.context["known"])

    def feedback(self) -> Feedback:
        return Feedback(model_version=self.model_version, predicted=self.predicted, correct=self.correct,
                        task_id=self.task_id, text=self.text)


def feedback_text(raw: Any) -> str:
    if not isinstance(raw, str) or not raw.strip() or len(raw) > MAX_TEXT:
        raise ApiError(f"'text' must be a non-empty string of at most {MAX_TEXT} characters", field="text")
    return raw


def parse_labels(raw: object, name: str, known: tuple[str, ...] | None) -> tuple[str, ...]:
    """A label or a list of labels; checked against the model's labels when a model exists."""
    labels = [raw] if isinstance(raw, str) else raw
    if not isinstance(labels, list) or not labels or len(labels) > MAX_LABELS \
            or not all(isinstance(label, str) and label.strip() for label in labels):
        raise ApiError(f"'{name}' must be a label or a non-empty list of labels", field=name)
    unknown = sorted(set(labels) - set(known)) if known is not None else []
    if unknown:
        raise ApiError(f"'{name}' has labels the project's model does not know: {unknown[:5]}; "
                       f"known labels: {list(known)[:20]}", field=name)
    return tuple(sorted(set(labels)))
