"""The default span tagger: sklearn-crfsuite's CRF with an iteration budget that follows the data.

A linear-chain CRF's L-BFGS iteration runs forward-backward over every token and every pair of
tags, so it costs about ``tokens x tags²``. A fixed iteration count therefore makes a retrain
slower in step with the labelled set. Small sets (the first hundreds of sentences, where active
learning decides most) get crfsuite's full 100 iterations; past that, the count falls so that one
fit does a bounded amount of work, down to a floor below which entity F1 drops. On ``snips_slots``
(bench/RESULTS.md, "retrain candidates") 35 iterations with 20 L-BFGS correction pairs fit 2,000
sentences in about a third of the time of 100 iterations, at entity F1 0.4 pp lower; 30 lose
1.9 pp. Where the budget allows the full 100 iterations the optimiser is crfsuite's default
(6 correction pairs), the model the active-learning benchmark measured; the extra pairs are
for the shortened runs, where they reach a lower loss in the iterations left.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sklearn_crfsuite

MAX_ITERATIONS = 100
MIN_ITERATIONS = 35
#: One fit's work in token x tag² x iterations; about 7 s of one core on the benchmark machine.
#: 2,000 snips_slots sentences (18,500 tokens, 69 tags) reach the floor, 1,000 get about 70.
WORK_BUDGET = 3.0e9
#: L-BFGS correction pairs of a shortened fit (crfsuite's default, used for full ones, is 6).
LBFGS_MEMORY = 20


def iterations_for(tokens: int, tags: int) -> int:
    """The L-BFGS iterations a fit on ``tokens`` tokens with ``tags`` distinct tags gets."""
    affordable = WORK_BUDGET / max(1, tokens * tags * tags)
    return int(min(MAX_ITERATIONS, max(MIN_ITERATIONS, affordable)))


class BudgetedCRF(sklearn_crfsuite.CRF):
    """``sklearn_crfsuite.CRF`` whose ``max_iterations`` is set by :func:`iterations_for` at each fit."""

    def fit(self, X: Sequence[Any], y: Sequence[Sequence[str]], X_dev: Any = None, y_dev: Any = None) -> BudgetedCRF:
        self.max_iterations = iterations_for(sum(map(len, y)), len({tag for tags in y for tag in tags}))
        self.num_memories = LBFGS_MEMORY if self.max_iterations < MAX_ITERATIONS else None
        return super().fit(X, y, X_dev, y_dev)


def budgeted_crf() -> BudgetedCRF:
    """The default tagger, L1 and L2 at 0.1 as the ``snips_slots`` reference settings."""
    return BudgetedCRF(algorithm="lbfgs", c1=0.1, c2=0.1, all_possible_transitions=True)
