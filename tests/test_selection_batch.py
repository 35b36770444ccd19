"""compose_batch: the invariants the backend and the annotators rely on."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from selection.batch import Batch, LabelledSet, Pool, Tuning, compose_batch
from selection.errors import (
    DuplicateTaskIdError,
    EmptyPoolError,
    InvalidTuningError,
    UnknownMeasureError,
)
from selection.mix import SLICES, SliceMix, allocate
from selection.uncertain import band_edge
from selection.uncertainty import uncertainty_scores

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Scenario:
    pool: Pool
    labelled: LabelledSet
    flagged: tuple[int, ...]
    exclude: tuple[int, ...]
    size: int
    mix: SliceMix
    seed: int

    def compose(self, **changes) -> Batch:
        args = {
            "flagged": self.flagged,
            "exclude": self.exclude,
            "size": self.size,
            "mix": self.mix,
            "seed": self.seed,
        } | changes
        return compose_batch(self.pool, self.labelled, **args)

    @property
    def selectable(self) -> set[int]:
        blocked = set(self.labelled.task_ids.tolist()) | set(self.exclude)
        return set(self.pool.task_ids.tolist()) - blocked


def model_outputs(rng: np.random.Generator, n: int, k: int, d: int, multilabel: bool):
    proba = rng.uniform(size=(n, k)) if multilabel else rng.dirichlet(np.ones(k), size=n)
    return proba, rng.standard_normal((n, d)).astype(np.float32)


@st.composite
def mixes(draw) -> SliceMix:
    weights = [draw(st.integers(0, 10)) for _ in SLICES]
    if sum(weights) == 0:
        weights[0] = 1
    return SliceMix(**{name: w / sum(weights) for name, w in zip(SLICES, weights)})


@st.composite
def scenarios(draw, min_pool: int = 1, dim: int | None = None, flag_all: bool = False) -> Scenario:
    n = draw(st.integers(min_pool, 40))
    k = draw(st.integers(1, 4))
    d = dim or draw(st.integers(1, 6))
    m = draw(st.integers(0, 10))
    multilabel = draw(st.booleans())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    ids = rng.choice(500, size=n, replace=False)
    labelled_ids = rng.choice(500, size=m, replace=False)  # may overlap the pool
    proba, embeddings = model_outputs(rng, n, k, d, multilabel)
    excluded = rng.choice(ids, size=draw(st.integers(0, n // 3)), replace=False)
    flagged = ids if flag_all else rng.choice(500, size=draw(st.integers(0, 6)))
    return Scenario(
        pool=Pool(ids, proba, embeddings, multilabel=multilabel),
        labelled=LabelledSet(labelled_ids, rng.standard_normal((m, d)), rng.random(m) < 0.4),
        flagged=tuple(flagged.tolist()),
        exclude=tuple(excluded.tolist()),
        size=draw(st.integers(0, 50)),
        mix=draw(mixes()),
        seed=draw(st.integers(0, 2**16)),
    )


def task_ids(batch: Batch, slice_name: str | None = None) -> list[int]:
    return [item.task_id for item in batch.items if slice_name in (None, item.slice)]


PROPERTY = settings(max_examples=75, deadline=None)


@PROPERTY
@given(scenarios())
def test_batch_holds_min_of_size_and_selectable(scenario):
    if not scenario.selectable:
        with pytest.raises(EmptyPoolError):
            scenario.compose()
        return
    assert len(scenario.compose().items) == min(scenario.size, len(scenario.selectable))


@PROPERTY
@given(scenarios())
def test_batch_never_repeats_a_task(scenario):
    if scenario.selectable:
        ids = task_ids(scenario.compose())
        assert len(ids) == len(set(ids))


@PROPERTY
@given(scenarios())
def test_labelled_and_excluded_tasks_never_appear(scenario):
    if scenario.selectable:
        assert set(task_ids(scenario.compose())) <= scenario.selectable


@PROPERTY
@given(scenarios())
def test_ranks_run_from_one_to_n_and_counts_match_the_items(scenario):
    if scenario.selectable:
        batch = scenario.compose()
        assert [item.rank for item in batch.items] == list(range(1, len(batch.items) + 1))
        assert batch.counts == {name: len(task_ids(batch, name)) for name in SLICES}


@PROPERTY
@given(scenarios())
def test_same_seed_gives_the_same_batch(scenario):
    if scenario.selectable:
        assert scenario.compose() == scenario.compose()


@PROPERTY
@given(scenarios(), st.integers(0, 2**32 - 1))
def test_control_slice_ignores_model_scores(scenario, other_seed):
    if not scenario.selectable:
        return
    n, k = scenario.pool.proba.shape
    proba, embeddings = model_outputs(
        np.random.default_rng(other_seed),
        n,
        k,
        scenario.pool.embeddings.shape[1],
        scenario.pool.multilabel,
    )
    rescored = replace(scenario, pool=replace(scenario.pool, proba=proba, embeddings=embeddings))
    assert set(task_ids(rescored.compose(), "control")) == set(
        task_ids(scenario.compose(), "control")
    )


@PROPERTY
@given(scenarios(min_pool=40, dim=16, flag_all=True))
def test_counts_follow_the_mix_within_rounding_when_every_slice_can_fill(scenario):
    batch = scenario.compose()
    total = len(batch.items)
    n = len(scenario.selectable)
    assert batch.counts == allocate(scenario.mix, scenario.size, dict.fromkeys(SLICES, n))
    for name in SLICES:
        assert abs(batch.counts[name] - scenario.mix.share(name) * total) < 1 + 1e-9


@PROPERTY
@given(scenarios(min_pool=5))
def test_without_flags_or_overrides_failure_slots_go_to_the_other_slices(scenario):
    labelled = replace(
        scenario.labelled, overridden=np.zeros(len(scenario.labelled.task_ids), dtype=bool)
    )
    plain = replace(scenario, labelled=labelled, flagged=())
    if not plain.selectable:
        return
    batch = plain.compose()
    assert batch.counts["failure"] == 0
    assert len(batch.items) == min(plain.size, len(plain.selectable))


def small_pool(n: int = 60, d: int = 8, seed: int = 0) -> tuple[Pool, LabelledSet]:
    rng = np.random.default_rng(seed)
    pool = Pool(np.arange(n), rng.dirichlet(np.ones(3), size=n), rng.standard_normal((n, d)))
    labelled = LabelledSet(
        np.arange(1000, 1010), rng.standard_normal((10, d)), np.zeros(10, dtype=bool)
    )
    return pool, labelled


def test_flagged_failures_lead_the_failure_slice_with_their_source():
    pool, labelled = small_pool()
    batch = compose_batch(pool, labelled, flagged=[7, 9, 999], size=20, seed=1)
    failures = [item for item in batch.items if item.slice == "failure"]
    assert {item.task_id for item in failures} <= {7, 9}
    assert all(item.reason == {"source": "flagged"} for item in failures)


def test_identical_ambiguous_rows_give_at_most_one_uncertain_pick():
    rng = np.random.default_rng(0)
    proba = np.vstack([np.full((30, 2), 0.5), rng.dirichlet([5.0, 1.0], size=170)])
    embeddings = np.vstack(
        [np.tile(rng.standard_normal(8), (30, 1)), rng.standard_normal((170, 8))]
    )
    pool = Pool(np.arange(200), proba, embeddings)
    labelled = LabelledSet(np.array([], dtype=np.int64), np.empty((0, 8)), np.array([], dtype=bool))
    batch = compose_batch(pool, labelled, size=40, seed=3, mix=SliceMix())
    assert batch.counts["uncertain"] == 26  # 22 of 40, plus 4 of the 6 failure slots
    assert sum(task_id < 30 for task_id in task_ids(batch, "uncertain")) <= 1


def test_all_labelled_pool_raises_empty_pool_error():
    pool, _ = small_pool(n=3)
    labelled = LabelledSet(np.arange(3), np.ones((3, 8)), np.zeros(3, dtype=bool))
    with pytest.raises(EmptyPoolError, match="all 3 pool tasks are labelled or excluded"):
        compose_batch(pool, labelled)


def test_repeated_pool_task_ids_are_rejected():
    pool, labelled = small_pool(n=4)
    with pytest.raises(DuplicateTaskIdError, match=r"\[5\]"):
        compose_batch(replace(pool, task_ids=np.array([5, 1, 5, 2])), labelled)


def test_unknown_measure_is_rejected():
    pool, labelled = small_pool()
    with pytest.raises(UnknownMeasureError):
        compose_batch(pool, labelled, measure="variance")


def test_negative_size_is_rejected():
    pool, labelled = small_pool()
    with pytest.raises(ValueError, match="size"):
        compose_batch(pool, labelled, size=-1)


def test_batch_round_trips_through_json():
    pool, labelled = small_pool()
    labelled = replace(labelled, overridden=np.ones(10, dtype=bool))
    batch = compose_batch(pool, labelled, flagged=[3], size=20, measure="entropy")
    payload = json.loads(json.dumps(batch.to_dict()))
    assert len(payload["items"]) == 20 and set(payload["counts"]) == set(SLICES)
    assert set(payload["items"][0]) == {"task_id", "slice", "rank", "reason"}


def test_first_items_of_the_queue_already_carry_the_mix():
    pool, labelled = small_pool(n=400)
    labelled = replace(labelled, overridden=np.ones(10, dtype=bool))
    first_twenty = compose_batch(pool, labelled, size=200).items[:20]
    slices = [item.slice for item in first_twenty]
    assert (
        slices.count("uncertain"),
        slices.count("diverse"),
        slices.count("failure"),
        slices.count("control"),
    ) == (11, 5, 3, 1)


@pytest.mark.parametrize(
    "knob", [{"band_factor": 0.5}, {"duplicate_similarity": -2.0}, {"max_overrides": 0}]
)
def test_out_of_range_tuning_is_rejected_naming_the_knob(knob):
    with pytest.raises(InvalidTuningError, match=next(iter(knob))):
        Tuning(**knob)


def test_selection_does_not_import_flask_or_the_label_studio_sdk():
    probe = "import sys, selection, selection.batch; print(sorted(m for m in sys.modules if m.split('.')[0] in ('flask', 'label_studio_sdk')))"
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_neighbours_of_an_override_the_model_rejects_are_not_queued_as_failures():
    pool, labelled = small_pool()
    overridden = np.zeros(10, dtype=bool)
    overridden[0] = True
    proba = np.tile([0.1, 0.8, 0.1], (10, 1))
    accepted = replace(labelled, overridden=overridden, labels=np.ones(10, dtype=np.int64), proba=proba)
    rejected = replace(accepted, labels=np.zeros(10, dtype=np.int64))
    mix = SliceMix(uncertain=0.5, diverse=0.2, failure=0.3, control=0.0)
    sources = [[item.reason.get("source") for item in compose_batch(pool, chosen, size=20, mix=mix, seed=0).items
                if item.slice == "failure"] for chosen in (accepted, rejected)]
    assert sources[0] and set(sources[0]) == {"override"}
    assert sources[1] == []


def test_override_neighbours_count_as_failures_only_as_uncertain_as_the_uncertain_band():
    """Most of the pool scores >= 0.5 here, yet only neighbours inside the uncertain slice's band
    (the top 3 x its slots) are unsure enough to be queued as failures."""
    n, d = 300, 8
    rng = np.random.default_rng(3)
    top = rng.uniform(0.34, 0.5, n)  # margins up to 0.33: every row scores >= 0.5 by margin
    proba = np.column_stack([top, 1 - top - 0.1, np.full(n, 0.1)])
    pool = Pool(np.arange(n), proba, rng.standard_normal((n, d)))
    labelled = LabelledSet(np.arange(1000, 1010), pool.embeddings[:10] + 0.01, np.ones(10, dtype=bool))
    mix = SliceMix(uncertain=0.5, diverse=0.2, failure=0.3, control=0.0)
    batch = compose_batch(pool, labelled, size=20, mix=mix, seed=0)
    scores = uncertainty_scores(proba, "margin")
    edge = band_edge(scores, 10, 3.0)  # 10 uncertain slots of 20, band factor 3 (the default)
    failures = [item.task_id for item in batch.items if item.slice == "failure"]
    assert failures and all(scores[task_id] >= edge for task_id in failures)
    assert np.mean(scores >= edge) < 0.15 and np.mean(scores >= 0.5) == 1.0
