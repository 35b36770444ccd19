"""The default tagger's iteration budget: full optimisation while a fit is cheap, bounded work after."""
from __future__ import annotations

from backend.model import crf_tagger
from backend.model.crf_tagger import MAX_ITERATIONS, MIN_ITERATIONS, budgeted_crf, iterations_for

SENTENCES = [[{"w": "Maria"}, {"w": "flies"}, {"w": "to"}, {"w": "Lyon"}], [{"w": "Call"}, {"w": "Tom"}]]
TAGS = [["B-PERSON", "O", "O", "B-LOCATION"], ["O", "B-PERSON"]]


def test_iterations_fall_with_the_work_of_one_iteration_between_the_bounds():
    small, middle, large = iterations_for(2_000, 50), iterations_for(9_300, 69), iterations_for(18_500, 69)
    assert small == MAX_ITERATIONS and large == MIN_ITERATIONS and MIN_ITERATIONS < middle < MAX_ITERATIONS
    assert iterations_for(10**7, 79) == MIN_ITERATIONS and iterations_for(0, 0) == MAX_ITERATIONS


def test_a_small_fit_is_crfsuites_default_optimiser():
    tagger = budgeted_crf().fit(SENTENCES, TAGS)
    assert tagger.max_iterations == MAX_ITERATIONS and tagger.num_memories is None
    assert tagger.predict(SENTENCES[:1])[0][0] == "B-PERSON"


def test_a_fit_over_budget_is_shortened_with_more_correction_pairs(monkeypatch):
    monkeypatch.setattr(crf_tagger, "WORK_BUDGET", 1.0)
    tagger = budgeted_crf().fit(SENTENCES, TAGS)
    assert tagger.max_iterations == MIN_ITERATIONS and tagger.num_memories == crf_tagger.LBFGS_MEMORY
