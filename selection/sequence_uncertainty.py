"""Uncertainty of a sequence labeller about whole sentences, as small pure functions.

A linear-chain model (a CRF) gives two things per sentence: the log-probability of its best tag
path, and per-token marginals (the probability of each tag at each position). The measures
below turn them into one score per sentence in ``[0, 1]``, higher meaning less sure, so they
plug into the uncertain slice exactly like the classification measures of
:mod:`selection.uncertainty`:

* ``least_confidence``: ``1 - P(y* | x)``, the chance the best path is wrong somewhere. Grows
  with sentence length, since a long sentence has more places to be wrong (and costs more).
* ``mnlp``: maximum normalised log-probability (Shen et al. 2017, "Deep active learning for
  named entity recognition"): ``log P(y* | x) / n`` for ``n`` tokens, reported as
  ``1 - exp(log P(y* | x) / n)``, one minus the geometric-mean per-token confidence of the
  path. Normalising by length removes least confidence's pull towards long sentences.
* ``mean_entropy`` / ``max_entropy``: the mean or largest per-token marginal entropy, each
  divided by ``log K`` for ``K`` tags.

:func:`total_token_entropy` (the sum over tokens, unnormalised) is the classic baseline that
favours long sentences most; it is not in ``[0, 1]`` and is kept for benchmarks.

A sentence without tokens has nothing to label and scores 0.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from selection.errors import InvalidArrayError, UnknownMeasureError

__all__ = ["NEEDS_MARGINALS", "SEQUENCE_MEASURES", "least_confidence", "max_entropy", "mean_entropy", "mnlp",
           "sequence_uncertainty", "token_entropy", "total_token_entropy"]

Marginals = Sequence[np.ndarray]


def _logprob(path_logprob: np.ndarray) -> np.ndarray:
    values = np.asarray(path_logprob, dtype=np.float64)
    if values.ndim != 1:
        raise InvalidArrayError(f"path_logprob must be 1-D (n_sentences,); got shape {values.shape}")
    if np.isnan(values).any() or (values > 1e-9).any():
        raise ValueError("path_logprob holds log-probabilities, which are <= 0 and not NaN")
    return np.minimum(values, 0.0)


def token_entropy(marginals: np.ndarray) -> np.ndarray:
    """Entropy of each token's tag distribution over ``log K``: (n_tokens, K) -> (n_tokens,)."""
    p = np.asarray(marginals, dtype=np.float64)
    if p.ndim != 2:
        raise InvalidArrayError(f"marginals must be 2-D (n_tokens, n_tags); got shape {p.shape}")
    if p.shape[1] < 2:
        return np.zeros(p.shape[0])
    p = np.clip(p, 0.0, None)
    p = p / np.maximum(p.sum(axis=1, keepdims=True), 1e-300)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=1)
    return np.clip(h / np.log(p.shape[1]), 0.0, 1.0)


def least_confidence(path_logprob: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``1 - P(y* | x)`` per sentence; (n,), (n,) -> (n,)."""
    lc = 1.0 - np.exp(_logprob(path_logprob))
    return np.where(np.asarray(lengths) > 0, lc, 0.0)


def mnlp(path_logprob: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``1 - exp(log P(y* | x) / n)`` per sentence (Shen et al. 2017); (n,), (n,) -> (n,)."""
    n = np.asarray(lengths, dtype=np.float64)
    logp = _logprob(path_logprob)
    if n.shape != logp.shape:
        raise InvalidArrayError(f"lengths has shape {n.shape} but path_logprob has {logp.shape}")
    return np.where(n > 0, 1.0 - np.exp(logp / np.maximum(n, 1.0)), 0.0)


def mean_entropy(marginals: Marginals) -> np.ndarray:
    """Mean normalised token entropy per sentence; n arrays (n_tokens_i, K) -> (n,)."""
    return np.array([float(token_entropy(m).mean()) if len(m) else 0.0 for m in marginals])


def max_entropy(marginals: Marginals) -> np.ndarray:
    """Largest normalised token entropy per sentence: its single most doubtful token."""
    return np.array([float(token_entropy(m).max()) if len(m) else 0.0 for m in marginals])


def total_token_entropy(marginals: Marginals) -> np.ndarray:
    """Sum of (unnormalised, nats) token entropies per sentence; unbounded, for benchmarks."""
    k = [np.asarray(m).shape[1] if np.asarray(m).ndim == 2 else 2 for m in marginals]
    return np.array([float(token_entropy(m).sum() * np.log(max(kk, 2))) if len(m) else 0.0
                     for m, kk in zip(marginals, k)])


#: The bounded measures by name: (path_logprob, lengths, marginals) -> (n,) in [0, 1].
SEQUENCE_MEASURES: dict[str, Callable[[np.ndarray, np.ndarray, Marginals | None], np.ndarray]] = {
    "least_confidence": lambda logp, n, m: least_confidence(logp, n),
    "mnlp": lambda logp, n, m: mnlp(logp, n),
    "mean_entropy": lambda logp, n, m: mean_entropy(m),
    "max_entropy": lambda logp, n, m: max_entropy(m),
}
#: The measures that read per-token marginals (the others need only the best path).
NEEDS_MARGINALS = frozenset({"mean_entropy", "max_entropy"})


def sequence_uncertainty(path_logprob: np.ndarray, lengths: np.ndarray, measure: str,
                         marginals: Marginals | None = None) -> np.ndarray:
    """The named measure of :data:`SEQUENCE_MEASURES` for n sentences; shape (n,).

    ``marginals`` (n arrays of shape (n_tokens_i, K)) is needed only by :data:`NEEDS_MARGINALS`:
    computing them costs a tagger several times more than the best path.
    """
    try:
        fn = SEQUENCE_MEASURES[measure]
    except KeyError:
        raise UnknownMeasureError(
            f"unknown sequence uncertainty measure {measure!r}; choose one of {sorted(SEQUENCE_MEASURES)}"
        ) from None
    logp, n = np.asarray(path_logprob, dtype=np.float64), np.asarray(lengths)
    if n.shape != logp.shape:
        raise InvalidArrayError(f"lengths has shape {n.shape} but path_logprob has {logp.shape}")
    if measure in NEEDS_MARGINALS:
        if marginals is None:
            raise ValueError(f"measure {measure!r} reads per-token marginals; none were given")
        if len(marginals) != len(logp):
            raise InvalidArrayError(f"{len(marginals)} marginal arrays for {len(logp)} sentences")
    return fn(logp, n, marginals)
