"""The four slices for span projects: pool scores from the sequence uncertainty, the anti-collapse
guard, overrides as changed spans, and the model's spans recorded with the queue."""
from __future__ import annotations

import random

import numpy as np
import pytest

from backend.labelstudio.gateway import labelled_task
from backend.labelstudio.label_config import parse_label_config
from backend.loop.cycle import predictions_of, score_pool
from backend.loop.pool_cache import CachedPool, PoolCache
from backend.model.labelconfig import kind_of
from backend.model.scoring import LocalScorer
from backend.store import ModelStore
from selection.batch import BatchItem, Tuning, compose_batch
from selection.mix import SliceMix

CONFIG = """<View><Labels name="label" toName="text"><Label value="city"/><Label value="cuisine"/></Labels>
<Text name="text" value="$text"/></View>"""
CITIES = ["Paris", "Lyon", "Berlin", "Madrid", "Oslo", "Boston"]
CUISINES = ["thai", "sushi", "pizza", "tapas"]


@pytest.fixture(scope="module")
def spec():
    return parse_label_config(CONFIG)


@pytest.fixture(scope="module")
def model(spec):
    rng = random.Random(0)
    texts, targets = [], []
    for _ in range(40):
        c, t = rng.choice(CUISINES), rng.choice(CITIES)
        text = f"find {c} near {t}"
        texts.append(text)
        targets.append(((5, 5 + len(c), "cuisine"), (11 + len(c), 11 + len(c) + len(t), "city")))
    return kind_of(spec).fit(texts, targets, spec, version="v1", estimator=None)


def cached(tmp_path, spec, texts):
    cache = PoolCache(ModelStore(tmp_path), seed=0, failure_field=None)
    return cache._extend(CachedPool.empty(), [{"id": i, "data": {"text": t}, "meta": {}}
                                              for i, t in enumerate(texts, 1)], spec)


POOL = ["find thai near Oslo", "find pizza near Paris", "zorp blick quux frobnicate the wibble wobble", "zorp blick quux frobnicate the wibble wobble",
        "the weather tomorrow in Reykjavik please", "find sushi near Lyon", "book me a table for two"]


def test_uncertain_slice_takes_the_least_sure_sentences_without_near_duplicates(tmp_path, spec, model):
    pool, labelled = score_pool(cached(tmp_path, spec, POOL), {}, model, spec, LocalScorer(), 1)
    u = model.uncertainty(model.tag(POOL))
    batch = compose_batch(pool, labelled, size=3, mix=SliceMix(uncertain=1.0, diverse=0.0, failure=0.0, control=0.0),
                          seed=0, measure="margin", tuning=Tuning(band_factor=1.0))
    picked = sorted(item.task_id for item in batch.items)
    duplicates = {3, 4}  # the same text twice: the guard keeps one
    assert len(duplicates & set(picked)) == 1
    ranked = [int(i) + 1 for i in np.argsort(-u) if int(i) + 1 not in (set(duplicates) - set(picked))]
    assert picked == sorted(ranked[:3])


def test_queue_records_the_models_spans_for_each_queued_task(tmp_path, spec, model):
    pool = cached(tmp_path, spec, POOL)
    recorded = predictions_of([BatchItem(1, "control", 1, {})], pool, model, spec)
    spans, score = recorded[1]
    assert set(spans) == {(5, 9, "cuisine"), (15, 19, "city")} and 0 < score <= 1


def region(start, end, label):
    return {"from_name": "label", "to_name": "text", "type": "labels",
            "value": {"start": start, "end": end, "labels": [label]}}


@pytest.mark.parametrize(("annotated", "overridden"), [
    ([region(5, 9, "cuisine"), region(15, 19, "city")], False),
    ([region(5, 9, "cuisine")], True),                          # a span removed
    ([region(5, 9, "cuisine"), region(15, 19, "cuisine")], True),  # a type changed
    ([region(5, 9, "cuisine"), region(10, 19, "city")], True),  # a boundary moved
])
def test_an_override_is_an_annotator_changing_the_models_spans(spec, annotated, overridden):
    task = {"id": 1, "data": {"text": "find thai near Oslo"},
            "annotations": [{"id": 1, "result": annotated, "updated_at": "2"}],
            "predictions": [{"id": 1, "created_at": "1", "result": [region(5, 9, "cuisine"), region(15, 19, "city")]}]}
    assert labelled_task(task, spec).overridden is overridden
