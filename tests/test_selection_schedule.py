"""The default mix schedule: more coverage with few labels per class, inside the bands."""

from __future__ import annotations

import numpy as np
import pytest

from selection.mix import COLD_MIX, WARM_LABELS_PER_CLASS, WARM_MIX, scheduled_mix


def test_an_empty_labelled_set_starts_at_the_cold_mix():
    assert scheduled_mix(0, 77) == COLD_MIX


def test_the_warm_mix_is_reached_at_the_labels_per_class_threshold_and_kept():
    classes = 18
    assert scheduled_mix(int(WARM_LABELS_PER_CLASS * classes), classes) == WARM_MIX
    assert scheduled_mix(100_000, classes) == WARM_MIX


def test_diverse_share_falls_as_labels_per_class_grow():
    shares = [scheduled_mix(labels, 20).diverse for labels in range(0, 400, 20)]
    assert shares == sorted(shares, reverse=True) and shares[0] > shares[-1]


@pytest.mark.parametrize("labels", [0, 50, 100, 385, 770, 5000])
def test_every_point_of_the_schedule_stays_inside_the_product_bands(labels):
    mix = scheduled_mix(labels, 77)
    assert 0.50 <= mix.uncertain <= 0.60
    assert 0.20 <= mix.diverse <= 0.30
    assert 0.10 <= mix.failure <= 0.20
    assert 0.0 < mix.control <= 0.10
    assert np.isclose(mix.uncertain + mix.diverse + mix.failure + mix.control, 1.0)


def test_a_schedule_needs_at_least_one_class():
    with pytest.raises(ValueError, match="classes"):
        scheduled_mix(10, 0)
