"""Backend side of selection: pool cache, failure flags, per-project options, scoring split."""
from __future__ import annotations

import json

import numpy as np
import pytest

from backend.errors import InvalidOptionError
from backend.loop.cycle import cycle_seed, label_columns, score_pool
from backend.loop.failures import FailureLog
from backend.loop.pool_cache import CachedPool, PoolCache
from backend.loop.project_options import parse_extra_params, resolve_options
from backend.model.classifier import fit_model
from backend.model.features import embed_texts
from backend.model.labelconfig import TaskSpec
from backend.model.scoring import LocalScorer
from backend.settings import FailureField, Settings, SettingsError
from backend.store import ModelStore
from backend.web.errors import ApiError
from backend.web.ids import parse_task_ids
from selection.mix import COLD_MIX, WARM_MIX, SliceMix, scheduled_mix

SPEC = TaskSpec("intent", "text", "text", ("pos", "neg"), multilabel=False)


def task(tid: int, text: object, **extra) -> dict:
    return {"id": tid, "data": {"text": text, **extra}, "meta": {}}


def test_pool_cache_extends_by_id_and_survives_reload(tmp_path):
    cache = PoolCache(ModelStore(tmp_path), seed=0, failure_field=FailureField.parse("data.source=prod"))
    pool = cache._extend(CachedPool.empty(), [task(3, "b"), task(1, "a", source="prod"), task(2, 7)], SPEC)
    cache.save(1, pool)
    loaded = cache.load(1)
    assert loaded.task_ids.tolist() == [1, 3]  # task 2 has no string text
    assert loaded.texts == ["a", "b"] and loaded.flagged.tolist() == [True, False]
    assert loaded.embeddings.shape == (2, 256) and loaded.embeddings.dtype == np.float32


def test_pool_cache_ignores_tasks_it_already_has(tmp_path):
    cache = PoolCache(ModelStore(tmp_path), seed=0, failure_field=None)
    pool = cache._extend(CachedPool.empty(), [task(1, "a")], SPEC)
    assert cache._extend(pool, [task(1, "a"), task(2, "b")], SPEC).task_ids.tolist() == [1, 2]


def test_pool_cache_is_rebuilt_when_failure_rule_changes(tmp_path):
    store = ModelStore(tmp_path)
    first = PoolCache(store, seed=0, failure_field=None)
    first.save(1, first._extend(CachedPool.empty(), [task(1, "a")], SPEC))
    assert len(PoolCache(store, seed=0, failure_field=FailureField.parse("meta.bad=true")).load(1).task_ids) == 0


def test_failure_field_matches_data_and_meta_values():
    assert FailureField.parse("data.source=production_error").matches({"data": {"source": "production_error"}})
    assert FailureField.parse("meta.flagged=true").matches({"meta": {"flagged": True}})
    assert not FailureField.parse("data.source=x").matches({"data": {}})
    with pytest.raises(SettingsError):
        FailureField.parse("source=x")


def test_failure_log_accumulates_flags_once(tmp_path):
    log = FailureLog(ModelStore(tmp_path))
    assert log.add(5, [3, 4], source="api") == 2
    assert log.add(5, [4, 9], source="cli") == 1
    assert sorted(log.read(5)) == [3, 4, 9] and log.read(5)[9]["source"] == "cli"


@pytest.mark.parametrize("raw", [None, [], [0], [1, "2"], [True], "1,2"])
def test_failure_task_ids_are_validated(raw):
    with pytest.raises(ApiError):
        parse_task_ids(raw)


def test_project_options_come_from_extra_params_with_global_fallback():
    settings = Settings(batch_size=50)
    options = resolve_options(parse_extra_params('{"mix": {"uncertain": 0.6, "diverse": 0.2, '
                                                 '"failure": 0.1, "control": 0.1}}'), settings)
    assert options.batch_size == 50 and options.mix.uncertain == 0.6
    assert resolve_options(parse_extra_params(None), settings).mix == settings.mix


def test_without_a_mix_setting_batches_follow_the_share_schedule():
    options = resolve_options(parse_extra_params(None), Settings())
    assert Settings().mix is None and options.mix is None
    assert options.mix_at(0, 10) == COLD_MIX and options.mix_at(1_000, 10) == WARM_MIX
    assert options.mix_at(40, 10) == scheduled_mix(40, 10)


def test_an_explicit_mix_wins_over_the_schedule_globally_and_per_project():
    settings = Settings.from_env({"LABELQUEUE_MIX": "uncertain=0.7,diverse=0.3"})
    assert resolve_options({}, settings).mix_at(0, 10) == SliceMix(0.7, 0.3, 0.0, 0.0)
    project = {"mix": {"uncertain": 0.6, "diverse": 0.2, "failure": 0.1, "control": 0.1}}
    assert resolve_options(project, Settings()).mix_at(0, 10) == SliceMix(0.6, 0.2, 0.1, 0.1)


@pytest.mark.parametrize("params, field", [({"batch_size": 0}, "extra_params.batch_size"),
                                           ({"mix": {"uncertain": 2}}, "extra_params.mix"),
                                           ({"mix": "half"}, "extra_params.mix")])
def test_invalid_project_options_name_the_field(params, field):
    with pytest.raises(InvalidOptionError) as error:
        resolve_options(params, Settings())
    assert error.value.field == field


def test_score_pool_splits_labelled_from_unlabelled_and_keeps_overrides(tmp_path):
    cache = PoolCache(ModelStore(tmp_path), seed=0, failure_field=None)
    pool = cache._extend(CachedPool.empty(), [task(i, t) for i, t in enumerate(["good", "bad", "fine", "awful"], 1)], SPEC)
    model = fit_model(["good", "bad"], [("pos",), ("neg",)], labels=("pos", "neg"), multilabel=False, version="v1")
    unlabelled, labelled = score_pool(pool, {1: {"labels": ["pos"], "overridden": True},
                                             2: {"labels": ["neg"], "overridden": False}}, model, SPEC,
                                       LocalScorer(), 1)
    assert unlabelled.task_ids.tolist() == [3, 4] and unlabelled.proba.shape == (2, 2)
    assert labelled.task_ids.tolist() == [1, 2] and labelled.overridden.tolist() == [True, False]
    assert labelled.labels.tolist() == [0, 1]  # the override filter compares these with the model
    assert np.allclose(labelled.proba[0], model.predict_proba(["good"])[0])  # scored: overridden
    assert np.allclose(labelled.proba[1], 0.5)  # not overridden: never read, not scored


def test_label_columns_are_unknown_for_multilabel_and_removed_labels():
    assert label_columns([["neg"], ["gone"], ["pos", "neg"], []], SPEC).tolist() == [1, -1, -1, -1]
    multi = TaskSpec("intent", "text", "text", ("pos", "neg"), multilabel=True)
    assert label_columns([["pos"]], multi).tolist() == [-1]


def test_cold_start_pool_scores_are_flat(tmp_path):
    cache = PoolCache(ModelStore(tmp_path), seed=0, failure_field=None)
    pool = cache._extend(CachedPool.empty(), [task(1, "a"), task(2, "b")], SPEC)
    unlabelled, _ = score_pool(pool, {}, None, SPEC, LocalScorer(), 1)
    assert np.allclose(unlabelled.proba, 0.5)


def test_cycle_seed_is_replayable_and_differs_between_cycles():
    assert cycle_seed(0, 3, 1) == cycle_seed(0, 3, 1) != cycle_seed(0, 3, 2)


def test_settings_reject_invalid_mix():
    with pytest.raises(SettingsError, match="LABELQUEUE_MIX"):
        Settings.from_env({"LABELQUEUE_MIX": "uncertain=0.5"})


def test_pool_cache_switches_whole_generations_and_keeps_two(tmp_path):
    cache = PoolCache(ModelStore(tmp_path), seed=0, failure_field=None)
    for size in (1, 2, 3):
        cache.save(5, cache._extend(CachedPool.empty(), [task(i, f"text {i}") for i in range(1, size + 1)], SPEC))
    root = tmp_path / "projects" / "5" / "pool"
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == ["g000002", "g000003"]
    loaded = cache.load(5)
    assert loaded.task_ids.tolist() == [1, 2, 3] and loaded.texts == ["text 1", "text 2", "text 3"]


def test_pool_cache_reads_the_older_single_folder_layout(tmp_path):
    cache = PoolCache(ModelStore(tmp_path), seed=0, failure_field=None)
    cache.save(5, cache._extend(CachedPool.empty(), [task(1, "a")], SPEC))
    root = tmp_path / "projects" / "5" / "pool"
    for path in (root / "g000001").iterdir():  # as an earlier version wrote it
        path.rename(root / path.name)
    (root / "current.json").unlink()
    assert cache.load(5).task_ids.tolist() == [1]


def test_pool_embeddings_weigh_words_every_text_shares_less(tmp_path):
    cache = PoolCache(ModelStore(tmp_path), seed=0, failure_field=None)
    texts = ["how do i pay my rent", "how do i top up my card", "how do i change my pin",
             "how do i close my account", "how do i order a card", "how do i report fraud"]
    pool = cache._extend(CachedPool.empty(), [task(i, t) for i, t in enumerate(texts, 1)], SPEC)
    plain = embed_texts(texts[:2])
    # The two texts share only "how do i ... my": IDF makes them less alike than raw counts do.
    assert pool.embeddings[0] @ pool.embeddings[1] < plain[0] @ plain[1] - 0.1


def test_pool_cache_keeps_its_idf_until_the_pool_doubles(tmp_path):
    cache = PoolCache(ModelStore(tmp_path), seed=0, failure_field=None)
    first = cache._extend(CachedPool.empty(), [task(i, f"text {i} word{i}") for i in range(1, 5)], SPEC)
    assert first.idf_documents == 4
    grown = cache._extend(first, [task(5, "text five"), task(6, "text six")], SPEC)
    assert grown.idf_documents == 4 and np.array_equal(grown.idf, first.idf)
    assert np.array_equal(grown.embeddings[:4], first.embeddings)  # comparable with the cached rows
    assert grown.frequencies.sum() > first.frequencies.sum()
    doubled = cache._extend(grown, [task(7, "text seven"), task(8, "text eight")], SPEC)
    assert doubled.idf_documents == 8 and not np.array_equal(doubled.idf, first.idf)
    cache.save(1, doubled)
    loaded = cache.load(1)
    assert loaded.idf_documents == 8 and np.array_equal(loaded.embeddings, doubled.embeddings)


def test_a_pool_cache_of_unweighted_features_is_rebuilt(tmp_path):
    store = ModelStore(tmp_path)
    cache = PoolCache(store, seed=0, failure_field=None)
    cache.save(1, cache._extend(CachedPool.empty(), [task(1, "a")], SPEC))
    meta = store.layout.pool(1) / json.loads((store.layout.pool(1) / "current.json").read_text())["generation"]
    written = json.loads((meta / "meta.json").read_text())
    (meta / "meta.json").write_text(json.dumps({k: v for k, v in written.items() if k != "features"}))
    assert len(cache.load(1).task_ids) == 0


def test_every_hashed_n_gram_reaches_the_embedding():
    # A projection too sparse for 2**18 hashed n-grams drops most of them: short texts embed to
    # zero and two texts that share only a dropped word look unrelated.
    words = [f"w{i}" for i in range(2000)]  # one distinct hashed n-gram each
    embedded = embed_texts(["ok", "thanks", "no", *words])
    assert (np.abs(embedded).sum(axis=1) > 0).mean() > 0.99


def test_a_cache_of_the_earlier_projection_is_rebuilt(tmp_path):
    cache = PoolCache(ModelStore(tmp_path), seed=0, failure_field=None)
    cache.save(5, cache._extend(CachedPool.empty(), [task(1, "a")], SPEC))
    meta = tmp_path / "projects" / "5" / "pool" / "g000001" / "meta.json"
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "features": "hashed-idf-1"}))
    assert len(cache.load(5).task_ids) == 0  # empty: the next sync embeds every task again
