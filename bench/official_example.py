"""The official Label Studio scikit-learn text classifier, reproduced as a speed baseline.

Mirrors, behaviour for behaviour, ``label_studio_ml/examples/sklearn_text_classifier/model.py``
and the request handling of ``label_studio_ml/api.py`` / ``model.py`` / ``cache.py`` in
HumanSignal/label-studio-ml-backend (the 2.x ``LabelStudioMLBase`` API), written from reading
them, not copied:

* the model: ``make_pipeline(TfidfVectorizer(ngram_range=(1, 3),
  token_pattern=r"(?u)\\b\\w\\w+\\b|\\w"), LogisticRegression(C=10))``, labels sorted by name;
* every request builds a new model object: it parses the label config with the SDK's
  ``LabelInterface``, compares the config with the one in a SQLite key-value cache and sets
  ``model_version`` there (``setup``); ``predict`` reads ``model_version`` from that cache for
  every task (an ``lru_cache`` in front of SQLite, cleared by every write);
* the fitted pipeline lives in a module global ``_model``, loaded from ``MODEL_DIR/model.pkl``
  by the first request of a process (no lock); with ``EXAMPLE_RELOAD=1`` it is re-read from
  disk on every request instead (what a fresh worker, or the older examples, pay);
* ``/webhook`` trains *inside the request*: it reads the labelled tasks (the real example asks
  Label Studio; here a local ``tasks.json`` stands in, so Label Studio I/O is not counted),
  skips unless ``len(tasks) % START_TRAINING_EACH_N_UPDATES == 0`` (or ``START_TRAINING``),
  fits, and pickles over ``model.pkl`` in place.

Two differences favour the baseline and are deliberate: responses are plain dicts instead of
the pydantic ``ModelResponse``, and request/response bodies are not logged (the example's
docker-compose runs at ``LOG_LEVEL=DEBUG``, which logs every body).

Serve with gunicorn, as the example's Dockerfile does::

    EXAMPLE_MODEL_DIR=/tmp/example gunicorn --chdir . 'bench.official_example:create_app()'
"""

from __future__ import annotations

import json
import os
import pickle
import sqlite3
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from flask import Flask, jsonify, request
from label_studio_sdk._extensions.label_studio_tools.core.label_config import parse_config
from label_studio_sdk.label_interface import LabelInterface
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline

START_TRAINING_EACH_N_UPDATES = 10
INITIAL_MODEL_VERSION = "0.0.1"
TRAIN_EVENTS = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATION_DELETED", "START_TRAINING")

_model: Pipeline | None = None  # the example's process-wide model, unguarded on purpose


def example_pipeline() -> Pipeline:
    """The example's estimator (``get_model(blank=True)``)."""
    return make_pipeline(TfidfVectorizer(ngram_range=(1, 3), token_pattern=r"(?u)\b\w\w+\b|\w"),
                         LogisticRegression(C=10.0))


class SqliteCache:
    """The example's key-value cache: one SQLite connection per call, ``lru_cache`` on reads."""

    def __init__(self, path: Path):
        self.path = str(path)
        self.lock = threading.Lock()
        with self.lock, sqlite3.connect(self.path) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS cache (project_id TEXT NOT NULL, "
                         "key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (project_id, key))")
        self.get = lru_cache(maxsize=100)(self._get)

    def _get(self, project_id: str, key: str) -> str | None:
        with self.lock, sqlite3.connect(self.path) as conn:
            row = conn.execute("SELECT value FROM cache WHERE project_id = ? AND key = ?",
                               (project_id, key)).fetchone()
        return None if row is None else row[0]

    def set(self, project_id: str, key: str, value: str) -> None:
        with self.lock, sqlite3.connect(self.path) as conn:
            conn.execute("REPLACE INTO cache (project_id, key, value) VALUES (?, ?, ?)",
                         (project_id, key, value))
        self.get.cache_clear()


class ExampleModel:
    """One request's model object, as ``MODEL_CLASS(project_id, label_config)`` builds it."""

    def __init__(self, project_id: str, label_config: str, *, cache: SqliteCache,
                 model_dir: Path, reload: bool):
        self.project_id, self.cache, self.model_dir, self.reload = project_id, cache, model_dir, reload
        self.label_interface = LabelInterface(config=label_config)
        if self.cache.get(project_id, "label_config") != label_config:
            self.cache.set(project_id, "label_config", label_config)
            self.cache.set(project_id, "parsed_label_config", json.dumps(parse_config(label_config)))
        if not self.cache.get(project_id, "model_version"):
            self.cache.set(project_id, "model_version", INITIAL_MODEL_VERSION)
        self.cache.set(project_id, "model_version", "SklearnTextClassifier-v0.0.1")  # setup()

    def parameters(self) -> dict[str, Any]:
        from_name, to_name, value = self.label_interface.get_first_tag_occurence("Choices", "Text")
        labels = sorted(self.label_interface.get_tag(from_name).labels)
        return {"from_name": from_name, "to_name": to_name, "value": value, "labels": labels}

    def get_model(self, blank: bool = False) -> Pipeline:
        global _model
        if _model is not None and not blank and not self.reload:
            return _model
        path = self.model_dir / "model.pkl"
        if not path.exists() or blank:
            config = self.parameters()
            _model = example_pipeline()
            _model.fit(config["labels"], list(range(len(config["labels"]))))
        else:
            with path.open("rb") as handle:
                _model = pickle.load(handle)
        return _model

    def predict(self, tasks: list[dict]) -> list[dict]:
        model = self.get_model()
        config = self.parameters()
        texts = [task["data"].get(config["value"]) for task in tasks]
        probabilities = model.predict_proba(texts)
        top = np.argmax(probabilities, axis=1)
        scores = probabilities[np.arange(len(top)), top]
        return [{"result": [{"from_name": config["from_name"], "to_name": config["to_name"],
                             "type": "choices", "value": {"choices": [config["labels"][i]]}}],
                 "score": float(score), "model_version": self.cache.get(self.project_id, "model_version")}
                for i, score in zip(top, scores)]

    def fit(self, event: str) -> str:
        if event not in ("ANNOTATION_CREATED", "ANNOTATION_UPDATED", "START_TRAINING"):
            return "skipped: event"
        tasks = json.loads((self.model_dir / "tasks.json").read_text())
        if len(tasks) % START_TRAINING_EACH_N_UPDATES != 0 and event != "START_TRAINING":
            return "skipped: not a multiple of N"
        config = self.parameters()
        index = {label: i for i, label in enumerate(config["labels"])}
        texts = [task["data"][config["value"]] for task in tasks]
        targets = [index[task["annotations"][0]["result"][0]["value"]["choices"][0]] for task in tasks]
        model = self.get_model(blank=True)
        model.fit(texts, targets)
        with (self.model_dir / "model.pkl").open("wb") as handle:
            pickle.dump(model, handle)
        global _model
        _model = None
        self.get_model()
        return "trained"


def create_app(model_dir: str | None = None, reload: bool | None = None) -> Flask:
    """The example's Flask routes (``/predict``, ``/webhook``, ``/health``) over ``model_dir``."""
    directory = Path(model_dir or os.environ["EXAMPLE_MODEL_DIR"])
    reload = os.environ.get("EXAMPLE_RELOAD") == "1" if reload is None else reload
    cache = SqliteCache(directory / "cache.db")
    app = Flask("official_example")

    def model_for(project: Any, label_config: str) -> ExampleModel:
        project_id = str(project).split(".", 1)[0] if project else ""
        return ExampleModel(project_id, label_config, cache=cache, model_dir=directory, reload=reload)

    @app.post("/predict")
    def predict():
        data = request.json
        model = model_for(data.get("project"), data.get("label_config"))
        return jsonify({"results": model.predict(data.get("tasks"))})

    @app.post("/webhook")
    def webhook():
        data = request.json
        event = data.pop("action")
        if event not in TRAIN_EVENTS:
            return jsonify({"status": "Unknown event"}), 200
        model = model_for(data["project"]["id"], data["project"]["label_config"])
        return jsonify({"result": model.fit(event), "status": "ok"}), 201

    @app.get("/health")
    def health():
        return jsonify({"status": "UP", "model_class": "SklearnTextClassifier"})

    return app
