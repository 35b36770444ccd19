"""Queue order: slices interleaved so every prefix carries the mix."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from selection.interleave import interleave, spread


def test_every_item_appears_once_in_slice_order():
    merged = interleave({"a": [1, 2, 3], "b": ["x"], "c": []})
    assert sorted(merged, key=str) == sorted([("a", 1), ("a", 2), ("a", 3), ("b", "x")], key=str)
    assert [item for name, item in merged if name == "a"] == [1, 2, 3]


def test_largest_slice_opens_the_queue():
    assert interleave({"small": [0], "large": [1, 2, 3]})[0][0] == "large"


def test_single_control_item_sits_inside_the_queue_not_at_an_end():
    groups = {
        "uncertain": list(range(11)),
        "diverse": list(range(5)),
        "failure": list(range(3)),
        "control": [0],
    }
    names = [name for name, _ in interleave(groups)]
    assert 0 < names.index("control") < len(names) - 1


def test_control_items_are_spread_evenly():
    groups = {
        "uncertain": list(range(55)),
        "diverse": list(range(25)),
        "failure": list(range(15)),
        "control": list(range(5)),
    }
    positions = [rank for rank, (name, _) in enumerate(interleave(groups)) if name == "control"]
    gaps = [b - a for a, b in zip(positions, positions[1:])]
    assert min(gaps) >= 15


@settings(max_examples=100, deadline=None)
@given(sizes=st.lists(st.integers(0, 40), min_size=1, max_size=4))
def test_every_prefix_holds_each_slice_within_one_item_of_its_share(sizes):
    groups = {f"s{i}": list(range(size)) for i, size in enumerate(sizes)}
    merged = interleave(groups)
    total = sum(sizes)
    seen = dict.fromkeys(groups, 0)
    for t, (name, _) in enumerate(merged, start=1):
        seen[name] += 1
        for slice_name, items in groups.items():
            assert abs(seen[slice_name] - t * len(items) / total) <= 1 + 1e-9


@settings(max_examples=100, deadline=None)
@given(others=st.integers(0, 200), controls=st.integers(1, 12))
def test_spread_puts_a_control_item_in_the_first_ten_and_keeps_the_rest_in_order(others, controls):
    merged = [("uncertain", i) for i in range(others)]
    merged[::7] = [("control", -1)] * len(merged[::7])  # wherever interleave happened to put some
    merged += [("control", j) for j in range(controls)]
    placed = spread(merged, "control", 10)
    names = [name for name, _ in placed]
    assert sorted(placed, key=str) == sorted(merged, key=str)
    assert names.index("control") < 10
    assert [item for name, item in placed if name != "control"] == [item for name, item in merged if name != "control"]


def test_spread_spaces_control_evenly_in_a_default_batch():
    merged = [("uncertain", i) for i in range(95)] + [("control", j) for j in range(5)]
    positions = [p for p, (name, _) in enumerate(spread(merged, "control", 10)) if name == "control"]
    assert positions == [9, 29, 49, 69, 89]
