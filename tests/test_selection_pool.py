"""Pool and labelled-set validation, and which pool rows are selectable."""

from __future__ import annotations

import numpy as np
import pytest

from selection.errors import InvalidArrayError
from selection.pool import LabelledSet, Pool, selectable_rows


def make_pool(n: int = 4, ids=None) -> Pool:
    return Pool(
        np.arange(n) if ids is None else np.asarray(ids), np.full((n, 2), 0.5), np.ones((n, 3))
    )


def no_labels(d: int = 3) -> LabelledSet:
    return LabelledSet(np.array([], dtype=np.int64), np.empty((0, d)), np.array([], dtype=bool))


def test_proba_with_wrong_row_count_is_rejected_naming_it():
    with pytest.raises(InvalidArrayError, match="pool.proba has 3 rows but task_ids has 4"):
        Pool(np.arange(4), np.full((3, 2), 0.5), np.ones((4, 3)))


def test_one_dimensional_embeddings_are_rejected_naming_them():
    with pytest.raises(InvalidArrayError, match="pool.embeddings must be 2-D"):
        Pool(np.arange(4), np.full((4, 2), 0.5), np.ones(4))


def test_proba_without_columns_is_rejected():
    with pytest.raises(InvalidArrayError, match="no columns"):
        Pool(np.arange(4), np.empty((4, 0)), np.ones((4, 3)))


def test_non_integer_task_ids_are_rejected():
    with pytest.raises(InvalidArrayError, match="pool.task_ids must hold integers"):
        Pool(np.array([0.5, 1.5]), np.full((2, 2), 0.5), np.ones((2, 3)))


def test_overridden_flags_must_match_labelled_ids():
    with pytest.raises(InvalidArrayError, match="labelled.overridden"):
        LabelledSet(np.arange(3), np.ones((3, 3)), np.array([True]))


def test_invalid_array_error_is_a_value_error():
    assert issubclass(InvalidArrayError, ValueError)


def test_embedding_widths_must_agree():
    with pytest.raises(InvalidArrayError, match="width 5 but pool.embeddings has width 3"):
        selectable_rows(make_pool(), no_labels(d=5), ())


def test_labelled_and_excluded_tasks_are_not_selectable():
    labelled = LabelledSet(np.array([11]), np.ones((1, 3)), np.array([False]))
    rows = selectable_rows(make_pool(ids=[13, 11, 12, 10]), labelled, exclude=[12])
    assert rows.tolist() == [3, 0]  # task 10 then task 13, ascending by id
