"""Turning model probabilities into the predictions Label Studio stores.

Each task gets exactly one prediction, in request order, shaped by the project's task kind
(``backend/model/task_kind.py``; for classification a ``choices`` region): ``result``, ``score``
(which Label Studio sorts and filters on), ``model_version`` and our own ``uncertainty``. Before the first model exists (fewer than two distinct labels) every task
gets the *cold-start* prediction: an empty result, score 0, model version ``untrained`` and
uncertainty 1. Label Studio accepts and stores it without logging an error (an empty
``results`` list would be logged as an error), and a retrained model's new version makes Label
Studio ask again.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from backend.errors import InvalidTasksError, TooManyTasksError
from backend.model.labelconfig import TaskSpec, kind_of

UNTRAINED_VERSION = "untrained"


def task_texts(tasks: Any, spec: TaskSpec, limit: int) -> list[str]:
    """Validate the ``tasks`` list and pull out the text each one carries."""
    if not isinstance(tasks, list):
        raise InvalidTasksError("'tasks' must be a list of task objects", field="tasks")
    if len(tasks) > limit:
        raise TooManyTasksError(f"{len(tasks)} tasks in one request; the limit is {limit} "
                                "(LABELQUEUE_MAX_TASKS_PER_PREDICT)", field="tasks")
    texts = []
    for i, task in enumerate(tasks):
        data = task.get("data") if isinstance(task, dict) else None
        if not isinstance(data, dict):
            raise InvalidTasksError(f"tasks[{i}] has no 'data' object", field=f"tasks[{i}].data")
        text = data.get(spec.value_key)
        if not isinstance(text, str):
            problem = "is missing" if text is None else f"is a {type(text).__name__}, not a string"
            raise InvalidTasksError(f"tasks[{i}].data.{spec.value_key} {problem}; the config's "
                           f"<Text name=\"{spec.to_name}\"> reads ${spec.value_key}",
                           field=f"tasks[{i}].data.{spec.value_key}")
        texts.append(text)
    return texts


def predictions(texts: Sequence[str], spec: TaskSpec, model: Any, measure: str) -> list[dict[str, Any]]:
    """One prediction per text: the task kind's, or the cold-start one while no model exists."""
    if model is None:
        return [cold_start_prediction() for _ in texts]
    return kind_of(spec).predict(model, texts, spec, measure)


def cold_start_prediction() -> dict[str, Any]:
    return {"result": [], "score": 0.0, "model_version": UNTRAINED_VERSION, "uncertainty": 1.0}
