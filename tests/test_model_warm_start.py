"""A retrain starts its solver from the model in service when it can (backend/model/classifier.py)."""
from __future__ import annotations

import numpy as np

from backend.loop.training import model_in_service
from backend.model import fit_model
from backend.store import ModelStore

WORDS = {"card": ["card", "lost", "stolen", "pin", "atm"], "top_up": ["top", "up", "balance", "add", "money"],
         "refund": ["refund", "return", "charge", "back", "wrong"]}


def corpus(n: int, seed: int) -> tuple[list[str], list[tuple[str, ...]]]:
    rng = np.random.default_rng(seed)
    classes = list(WORDS)
    labels = [classes[i % len(classes)] for i in range(n)]
    common = ["i", "my", "please", "the", "how", "do"]
    texts = [" ".join(rng.choice(WORDS[y] + common, size=6)) + f" w{rng.integers(200)}" for y in labels]
    return texts, [(y,) for y in labels]


def test_a_warm_started_retrain_predicts_like_a_cold_one_in_fewer_iterations():
    texts, targets = corpus(600, 0)
    labels = tuple(WORDS)
    previous = fit_model(texts[:500], targets[:500], labels=labels, multilabel=False, version="v1")
    cold = fit_model(texts, targets, labels=labels, multilabel=False, version="v2")
    warm = fit_model(texts, targets, labels=labels, multilabel=False, version="v2", warm_from=previous)
    probe, _ = corpus(300, 1)
    assert warm.estimator.named_steps["clf"].warm_start
    assert warm.estimator.named_steps["clf"].n_iter_[0] < cold.estimator.named_steps["clf"].n_iter_[0]
    agree = np.mean(warm.predict_proba(probe).argmax(axis=1) == cold.predict_proba(probe).argmax(axis=1))
    assert agree >= 0.98


def test_a_model_over_other_classes_does_not_seed_the_fit():
    texts, targets = corpus(300, 0)
    two = [(t, y) for t, y in zip(texts, targets) if y[0] != "refund"]
    previous = fit_model([t for t, _ in two], [y for _, y in two], labels=tuple(WORDS), multilabel=False,
                         version="v1")
    model = fit_model(texts, targets, labels=tuple(WORDS), multilabel=False, version="v2", warm_from=previous)
    assert not model.estimator.named_steps["clf"].warm_start
    assert model.trained_classes == tuple(sorted(WORDS))


def test_the_model_in_service_is_the_warm_start_and_a_refused_file_is_none(tmp_path):
    store = ModelStore(tmp_path)
    texts, targets = corpus(60, 0)
    store.create_project(1)
    manifest = store.save(1, fit_model(texts, targets, labels=tuple(WORDS), multilabel=False, version="v1"), {})
    assert model_in_service(store, 1, manifest).version == "v1"
    assert model_in_service(store, 1, None) is None
    (store.layout.models(1) / manifest.file).write_bytes(b"not a model")
    assert model_in_service(store, 1, manifest) is None
