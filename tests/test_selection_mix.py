"""Slice mix validation and the slot allocation rule."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from selection.errors import InvalidMixError
from selection.mix import SLICES, SliceMix, allocate, redistribute

PLENTY = 10_000


def full_pool(failure: int = PLENTY) -> dict[str, int]:
    return {"uncertain": PLENTY, "diverse": PLENTY, "failure": failure, "control": PLENTY}


@st.composite
def mixes(draw) -> SliceMix:
    weights = [draw(st.integers(0, 20)) for _ in SLICES]
    if sum(weights) == 0:
        weights[0] = 1
    return SliceMix(**{name: w / sum(weights) for name, w in zip(SLICES, weights)})


def test_slices_are_listed_in_fill_priority_vocabulary():
    assert SLICES == ("uncertain", "diverse", "failure", "control")


def test_default_mix_is_valid_and_sums_to_one():
    mix = SliceMix()
    assert (mix.uncertain, mix.diverse, mix.failure, mix.control) == (0.55, 0.25, 0.15, 0.05)


def test_share_above_one_is_rejected():
    with pytest.raises(InvalidMixError, match="'uncertain' must be in \\[0, 1\\]"):
        SliceMix(uncertain=1.5, diverse=-0.5, failure=0.0, control=0.0)


def test_negative_share_is_rejected():
    with pytest.raises(InvalidMixError, match="'diverse'"):
        SliceMix(uncertain=0.9, diverse=-0.1, failure=0.15, control=0.05)


def test_shares_not_summing_to_one_are_rejected_with_the_sum():
    with pytest.raises(InvalidMixError, match="sum to 1.*sum 1.1"):
        SliceMix(uncertain=0.65)


def test_sum_within_tolerance_is_accepted():
    SliceMix(uncertain=0.55 + 5e-7)


def test_non_numeric_share_is_rejected():
    with pytest.raises(InvalidMixError, match="must be a number"):
        SliceMix(uncertain="lots")  # type: ignore[arg-type]


def test_invalid_mix_error_is_a_value_error():
    assert issubclass(InvalidMixError, ValueError)


def test_from_mapping_reads_numeric_strings_and_zero_fills_missing_slices():
    mix = SliceMix.from_mapping({"uncertain": "0.7", "diverse": 0.3})
    assert (mix.uncertain, mix.diverse, mix.failure, mix.control) == (0.7, 0.3, 0.0, 0.0)


def test_from_mapping_rejects_unknown_slices_naming_the_valid_ones():
    with pytest.raises(InvalidMixError, match="'random'.*valid slices"):
        SliceMix.from_mapping({"uncertain": 1.0, "random": 0.0})


def test_from_mapping_rejects_non_numeric_values():
    with pytest.raises(InvalidMixError, match="'control' must be a number"):
        SliceMix.from_mapping({"uncertain": 1.0, "control": "some"})


def test_allocate_uses_largest_remainder_rounding():
    assert allocate(SliceMix(), 100, full_pool()) == {
        "uncertain": 55,
        "diverse": 25,
        "failure": 15,
        "control": 5,
    }


def test_allocate_gives_control_one_slot_in_small_batches():
    # 0.05 * 10 rounds to 0; control takes the slot uncertain was rounded up for.
    assert allocate(SliceMix(), 10, full_pool()) == {
        "uncertain": 5,
        "diverse": 3,
        "failure": 1,
        "control": 1,
    }


def test_allocate_gives_control_nothing_when_its_share_is_zero():
    mix = SliceMix(uncertain=0.6, diverse=0.25, failure=0.15, control=0.0)
    assert allocate(mix, 10, full_pool())["control"] == 0


def test_allocate_gives_control_nothing_in_a_batch_of_one():
    assert allocate(SliceMix(), 1, full_pool()) == {
        "uncertain": 1,
        "diverse": 0,
        "failure": 0,
        "control": 0,
    }


def test_allocate_hands_missing_failures_to_the_other_slices_by_share():
    counts = allocate(SliceMix(), 100, full_pool(failure=0))
    # 15 slots split 0.55 : 0.25 : 0.05 -> 9.71, 4.41, 0.88 -> 10, 4, 1 by largest remainder
    assert counts == {"uncertain": 65, "diverse": 29, "failure": 0, "control": 6}


def test_allocate_keeps_the_failures_that_exist():
    assert allocate(SliceMix(), 100, full_pool(failure=4))["failure"] == 4


def test_allocate_never_gives_failure_extra_slots():
    available = {"uncertain": 10, "diverse": 0, "failure": PLENTY, "control": 0}
    counts = allocate(SliceMix(), 100, available, pool_size=PLENTY)
    assert counts["failure"] == 15


def test_control_absorbs_slots_the_other_slices_cannot_fill():
    available = {"uncertain": 3, "diverse": 2, "failure": 0, "control": PLENTY}
    assert allocate(SliceMix(), 100, available)["control"] == 95


def test_allocate_total_is_capped_by_the_pool():
    available = {"uncertain": 7, "diverse": 7, "failure": 2, "control": 7}
    assert sum(allocate(SliceMix(), 100, available).values()) == 7


@settings(max_examples=100, deadline=None)
@given(
    mix=mixes(),
    batch_size=st.integers(0, 300),
    available=st.fixed_dictionaries({name: st.integers(0, 200) for name in SLICES}),
)
def test_control_never_loses_its_slots_to_another_slice(mix, batch_size, available):
    pool = max(available.values())
    unconstrained = allocate(mix, batch_size, {name: pool for name in SLICES})
    counts = allocate(mix, batch_size, available, pool_size=pool)
    assert counts["control"] >= min(available["control"], unconstrained["control"])


def test_allocate_rejects_unknown_slices():
    with pytest.raises(ValueError, match="unknown slice"):
        allocate(SliceMix(), 10, {"surprise": 3})


def test_redistribute_falls_back_to_priority_when_receivers_have_zero_share():
    mix = SliceMix(uncertain=0.0, diverse=0.0, failure=1.0, control=0.0)
    assert redistribute(mix, 5, {"uncertain": 3, "diverse": 10}) == {"uncertain": 3, "diverse": 2}


@settings(max_examples=100, deadline=None)
@given(mix=mixes(), batch_size=st.integers(0, 300), pool=st.integers(1, 400))
def test_counts_stay_within_one_slot_of_the_mix_when_every_slice_can_fill(mix, batch_size, pool):
    counts = allocate(mix, batch_size, {name: pool for name in SLICES})
    total = min(batch_size, pool)
    assert sum(counts.values()) == total
    for name in SLICES:
        assert abs(counts[name] - mix.share(name) * total) < 1 + 1e-9


@settings(max_examples=100, deadline=None)
@given(
    mix=mixes(),
    batch_size=st.integers(0, 300),
    available=st.fixed_dictionaries({name: st.integers(0, 200) for name in SLICES}),
)
def test_allocation_fills_min_of_batch_and_pool_without_exceeding_any_slice(
    mix, batch_size, available
):
    pool = max(available["uncertain"], available["diverse"], available["control"])
    counts = allocate(mix, batch_size, available, pool_size=pool)
    assert all(0 <= counts[name] <= available[name] for name in SLICES)
    assert counts["failure"] <= round(mix.failure * min(batch_size, pool)) + 1
    capacity = sum(available[name] for name in ("uncertain", "diverse", "control"))
    assert sum(counts.values()) == min(batch_size, pool, capacity + counts["failure"])
