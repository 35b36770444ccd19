"""The control slice: a uniform draw that cannot see the model."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from selection.control import select_control


def test_draws_the_requested_number_of_distinct_ids_from_the_input():
    ids = np.arange(100, 200)
    drawn = select_control(ids, 10, np.random.default_rng(0))
    assert len(set(drawn.tolist())) == 10 and set(drawn.tolist()) <= set(ids.tolist())


def test_draw_does_not_depend_on_the_order_ids_arrive_in():
    ids = np.arange(1000)
    shuffled = np.random.default_rng(5).permutation(ids)
    np.testing.assert_array_equal(
        select_control(ids, 20, np.random.default_rng(1)),
        select_control(shuffled, 20, np.random.default_rng(1)),
    )


def test_every_id_is_equally_likely():
    hits = np.zeros(10)
    for seed in range(2000):
        hits[select_control(np.arange(10), 1, np.random.default_rng(seed))] += 1
    assert hits.min() > 150 and hits.max() < 250


def test_control_takes_no_model_inputs():
    assert list(inspect.signature(select_control).parameters) == ["task_ids", "count", "rng"]


def test_count_larger_than_the_pool_is_rejected():
    with pytest.raises(ValueError, match="control count"):
        select_control(np.arange(3), 4, np.random.default_rng(0))
