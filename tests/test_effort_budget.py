"""A span project's batch bounded by tokens as well as by tasks (``batch_tokens``), span labels in the cycle, and
the cached pool's lookup of texts by task id."""
from __future__ import annotations

import numpy as np
import pytest

from backend.errors import InvalidOptionError
from backend.loop.cycle import tokens_of
from backend.loop.pool_cache import CachedPool
from backend.loop.project_options import parse_extra_params, resolve_options
from backend.model.labelconfig import TaskSpec
from backend.settings import Settings
from selection.batch import Batch, BatchItem
from selection.effort_budget import within_effort_budget

SPANS = TaskSpec("label", "text", "text", ("PER",), multilabel=False, kind="spans")
CHOICES = TaskSpec("intent", "text", "text", ("a", "b"), multilabel=False)


def batch(*slices: str) -> Batch:
    items = [BatchItem(task_id=10 + rank, slice=name, rank=rank, reason={}) for rank, name in enumerate(slices, 1)]
    return Batch(items=items[::-1], counts={})  # out of rank order on purpose


def test_the_batch_is_the_longest_rank_prefix_within_the_budget():
    cut = within_effort_budget(batch("uncertain", "control", "diverse", "uncertain"), {11: 4, 12: 3, 13: 5, 14: 1}, 12)
    assert [i.rank for i in cut.items] == [1, 2, 3] and cut.counts == {"uncertain": 1, "control": 1, "diverse": 1}


def test_a_sentence_longer_than_the_budget_is_still_queued_alone():
    cut = within_effort_budget(batch("uncertain", "control"), {11: 50, 12: 2}, 10)
    assert [i.task_id for i in cut.items] == [11]


def pool(texts: list[str]) -> CachedPool:
    n = len(texts)
    return CachedPool(task_ids=np.arange(11, 11 + n, dtype=np.int64), texts=texts, embeddings=np.zeros((n, 4), np.float32),
                      flagged=np.zeros(n, bool), frequencies=np.zeros(4, np.int32), idf=np.ones(4, np.float32),
                      idf_documents=0)


def test_tokens_are_counted_by_the_span_tokeniser_and_not_at_all_for_a_classification():
    cached, composed = pool(["Ann met Bob in Oslo .", "hi"]), batch("uncertain", "control")
    assert tokens_of(composed, cached, SPANS) == {11: 6, 12: 1}
    kept = within_effort_budget(composed, tokens_of(composed, cached, CHOICES), 1).items
    assert [i.task_id for i in kept] == [11, 12]  # the whole batch


def test_batch_tokens_comes_from_extra_params_or_the_setting_and_is_checked():
    settings = Settings(batch_tokens=900)
    assert resolve_options(parse_extra_params('{"batch_tokens": 1500}'), settings).batch_tokens == 1500
    assert resolve_options(parse_extra_params(None), settings).batch_tokens == 900
    assert resolve_options(parse_extra_params(None), Settings()).batch_tokens == 0
    with pytest.raises(InvalidOptionError, match="batch_tokens"):
        resolve_options(parse_extra_params('{"batch_tokens": -5}'), settings)
    assert Settings.from_env({"LABELQUEUE_BATCH_TOKENS": "2000"}).batch_tokens == 2000


def test_a_span_sentence_with_one_span_has_no_label_column_instead_of_failing_the_cycle():
    from backend.loop.cycle import label_columns

    assert label_columns([[[0, 3, "PER"]], [], [[0, 3, "PER"], [4, 7, "PER"]]], SPANS).tolist() == [-1, -1, -1]
    assert label_columns([["b"], ["z"]], CHOICES).tolist() == [1, -1]


def test_the_pool_finds_texts_by_task_id_and_refuses_an_id_it_does_not_hold():
    cached = pool(["a b", "c", "d e f"])
    assert cached.texts_of([13, 11]) == ["d e f", "a b"]
    for missing in ([12, 14], [10]):
        with pytest.raises(KeyError):
            cached.texts_of(missing)
