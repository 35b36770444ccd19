"""The span model: a CRF over our tokens, fitted on Label Studio spans, predicting ``labels`` regions."""
from __future__ import annotations

import json
import pickle
import random

import numpy as np
import pytest

from backend.labelstudio.gateway import LabelledTask
from backend.labelstudio.label_config import parse_label_config
from backend.loop.queue_record import QueuedTask
from backend.loop.training import as_json, count_changes
from backend.model.labelconfig import kind_of
from backend.model.span_model import SpanModel, load_tagger
from backend.settings import SettingsError
from selection.sequence_uncertainty import sequence_uncertainty
from selection.uncertainty import least_confidence, margin

CONFIG = """<View><Labels name="label" toName="text"><Label value="city"/><Label value="cuisine"/></Labels>
<Text name="text" value="$text"/></View>"""
CITIES = ["Paris", "Lyon", "Berlin", "Madrid", "Oslo", "Boston", "Denver", "Austin"]
CUISINES = ["thai", "sushi", "pizza", "tapas", "ramen", "curry"]
TEMPLATES = ["book a {c} place in {t} tonight", "find {c} near {t}", "any good {c} restaurants in {t} ?",
             "I want {c} food in {t}"]


def sentence(rng: random.Random) -> tuple[str, tuple]:
    template, cuisine, city = rng.choice(TEMPLATES), rng.choice(CUISINES), rng.choice(CITIES)
    text = template.format(c=cuisine, t=city)
    a, b = text.index(cuisine), text.index(city)
    return text, tuple(sorted([(a, a + len(cuisine), "cuisine"), (b, b + len(city), "city")]))


@pytest.fixture(scope="module")
def spec():
    return parse_label_config(CONFIG)


@pytest.fixture(scope="module")
def model(spec):
    rng = random.Random(0)
    texts, targets = zip(*(sentence(rng) for _ in range(60)))
    return kind_of(spec).fit(texts, targets, spec, version="v1", estimator=None)


def test_predictions_are_labels_regions_with_span_and_task_scores(model, spec):
    text = "find ramen near Oslo"
    [prediction] = kind_of(spec).predict(model, [text], spec, "margin")
    assert prediction["model_version"] == "v1"
    assert 0.0 <= prediction["score"] <= 1.0 and 0.0 <= prediction["uncertainty"] <= 1.0
    regions = {(r["value"]["text"], r["value"]["labels"][0]) for r in prediction["result"]}
    assert regions == {("ramen", "cuisine"), ("Oslo", "city")}
    for region in prediction["result"]:
        assert (region["from_name"], region["to_name"], region["type"]) == ("label", "text", "labels")
        assert text[region["value"]["start"]:region["value"]["end"]] == region["value"]["text"]
        assert 0.0 < region["score"] <= 1.0


def test_a_model_scores_by_the_measure_it_was_fitted_with_in_predictions_and_the_pool(spec):
    """LABELQUEUE_SPAN_UNCERTAINTY_MEASURE reaches the model at its fit; the classification
    setting given to predict (here "margin") does not apply to spans."""
    rng = random.Random(0)
    texts, targets = zip(*(sentence(rng) for _ in range(60)))
    pool = ["find thai in Lyon", "book a sushi place in Austin tonight", "xyzzy quux Lyonnais"]
    found = {}
    for measure in ("least_confidence", "mnlp", "mean_entropy", "max_entropy"):
        model = kind_of(spec).fit(texts, targets, spec, version="v1", estimator=None, measure=measure)
        assert model.measure == measure
        tagged = model.tag(pool, marginals=True)
        expected = sequence_uncertainty(np.array([s.path_logprob for s in tagged]),
                                        np.array([len(s.offsets) for s in tagged]), measure,
                                        [s.marginals for s in tagged])
        predicted = [p["uncertainty"] for p in kind_of(spec).predict(model, pool, spec, "margin")]
        assert predicted == pytest.approx(expected, abs=1e-6), measure
        assert margin(model.predict_proba(pool)) == pytest.approx(expected), measure
        found[measure] = tuple(np.round(expected, 6))
    assert len(set(found.values())) == 4  # four measures, four different scorings


def test_empty_text_gets_an_empty_prediction_not_an_error(model, spec):
    [prediction] = kind_of(spec).predict(model, ["   "], spec, "mnlp")
    assert prediction["result"] == [] and prediction["uncertainty"] == 0.0


def test_spans_cut_mid_token_train_without_error_and_predict_whole_tokens(spec):
    rng = random.Random(1)
    texts, targets = [], []
    for _ in range(40):
        text, spans = sentence(rng)
        texts.append(text)
        targets.append(tuple((a + 1, b - 1, label) for a, b, label in spans))  # "ari" of "Paris"
    model = kind_of(spec).fit(texts, targets, spec, version="v1", estimator=None)
    [(spans, _)] = kind_of(spec).predicted(model, ["find sushi near Paris"])
    assert (16, 21, "city") in spans


def test_pool_scores_rank_exactly_by_the_sequence_uncertainty(model):
    texts = ["find thai in Lyon", "book a sushi place in Austin tonight", "xyzzy quux Lyonnais"]
    proba = model.predict_proba(texts)
    expected = model.uncertainty(model.tag(texts))
    assert proba.shape == (3, 2)
    assert margin(proba) == pytest.approx(expected) and least_confidence(proba) == pytest.approx(expected)


def test_a_pickled_model_predicts_the_same(model, spec):
    again = pickle.loads(pickle.dumps(model))
    assert isinstance(again, SpanModel)
    text = ["any good curry restaurants in Denver ?"]
    assert kind_of(spec).predict(again, text, spec, "mnlp") == kind_of(spec).predict(model, text, spec, "mnlp")


class TokenTagger:
    """A stand-in tagger: each token's tag is the one most often seen with its lower-cased word."""

    def fit(self, X, y):
        self.table_ = {}
        for xs, ys in zip(X, y):
            for x, tag in zip(xs, ys):
                self.table_.setdefault(x["lower"], {}).setdefault(tag, 0)
                self.table_[x["lower"]][tag] += 1
        self.classes_ = sorted({t for ys in y for t in ys})
        return self

    def predict_marginals(self, X):
        out = []
        for xs in X:
            rows = []
            for x in xs:
                counts = self.table_.get(x["lower"], {"O": 1})
                total = sum(counts.values())
                rows.append({tag: counts.get(tag, 0) / total for tag in self.classes_})
            out.append(rows)
        return out

    def predict(self, X):
        return [[max(m, key=m.get) for m in rows] for rows in self.predict_marginals(X)]


def make_token_tagger() -> TokenTagger:
    return TokenTagger()


def test_any_factory_with_the_small_contract_plugs_in(spec):
    rng = random.Random(2)
    texts, targets = zip(*(sentence(rng) for _ in range(30)))
    model = kind_of(spec).fit(texts, targets, spec, version="v2", estimator=f"{__name__}:make_token_tagger")
    [prediction] = kind_of(spec).predict(model, ["find pizza near Boston"], spec, "mean_entropy")
    assert {r["value"]["text"] for r in prediction["result"]} == {"pizza", "Boston"}


def test_a_factory_without_the_contract_is_refused_by_name():
    with pytest.raises(SettingsError, match="predict_marginals"):
        load_tagger("collections:OrderedDict")


def test_unchanged_span_labels_read_back_from_labelled_json_count_as_unchanged():
    spans = ((0, 5, "city"), (10, 14, "cuisine"))
    stored = json.loads(json.dumps({"1": {"labels": as_json(spans), "overridden": False}}))
    assert count_changes({1: stored["1"]}, [LabelledTask(1, "x", spans, False)]) == 0


def test_queued_span_predictions_survive_the_queue_file():
    item = QueuedTask(7, "control", 1, {}, ((0, 5, "city"),), 0.9)
    again = QueuedTask.from_json(json.loads(json.dumps(item.to_json())))
    assert again.predicted == ((0, 5, "city"),) and hash(again.predicted)


def test_tagging_without_false_flags_gives_the_paths_and_marginals_of_the_full_features(model):
    # The model tags with false flags left out; the training features must score identically.
    from backend.model.crf_features import sentence_features
    from backend.model.span_tokens import tokenize

    texts = ["book a sushi place in Oslo tonight", "any good Thai restaurants in PARIS ?", "I want 2 pizzas"]
    tagged = model.tag(texts, marginals=True)
    full = [sentence_features([t[a:b] for a, b in tokenize(t)]) for t in texts]
    marginals = model.tagger.predict_marginals(full)
    assert [list(s.tags) for s in tagged] == [list(p) for p in model.tagger.predict(full)]
    for sentence_tagged, per_token in zip(tagged, marginals):
        expected = [[m.get(name, 0.0) for name in model.tag_names] for m in per_token]
        assert np.allclose(sentence_tagged.marginals, expected, atol=1e-9)


def test_a_retrain_fits_the_span_model_with_the_configured_sequence_measure(tmp_path, spec):
    """LABELQUEUE_SPAN_UNCERTAINTY_MEASURE reaches the model a retrain saves (the path every
    /predict and pool scoring of the project then reads)."""
    from backend.loop.training import retrain
    from backend.settings import Settings
    from backend.store import ModelStore

    rng = random.Random(2)
    labelled = [LabelledTask(i, *sentence(rng), overridden=False) for i in range(1, 31)]

    class Gateway:
        def spec(self):
            return spec

        def labelled(self, _spec):
            return labelled

    class Connections:
        def gateway(self, project_id):
            return Gateway()

    settings = Settings(data_dir=tmp_path, label_studio_url="http://127.0.0.1:9", label_studio_api_key="x",
                        span_uncertainty_measure="max_entropy", retrain_settle_seconds=0.0)
    store = ModelStore(tmp_path)
    outcome = retrain(3, settings=settings, store=store, connections=Connections())
    assert outcome.done and store.load(3, store.manifest(3)).measure == "max_entropy"
