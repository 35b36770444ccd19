"""The span model: a sequence tagger over our tokens, wrapped with the labels and version it learned.

The default tagger is a linear-chain CRF (``sklearn_crfsuite.CRF``, L-BFGS, ``c1 = c2 = 0.1``,
100 iterations on small labelled sets, fewer on large ones: :mod:`backend.model.crf_tagger`) over
the features of :mod:`backend.model.crf_features`. It installs from PyPI
as wheels (python-crfsuite ships them for CPython 3.8-3.13), needs no downloaded weights, trains
on 2,000 sentences in seconds on one core, and gives what active learning needs: the best
path's probability and per-token marginals.

Any tagger can replace it by dotted path (``LABELQUEUE_SPAN_TAGGER=package.module:factory``),
called with no arguments, following sklearn-crfsuite's small contract: ``fit(X, y)`` on lists
of per-token feature dicts and BIO tag lists, ``predict(X)`` giving tag lists and
``predict_marginals(X)`` giving, per token, a dict tag -> probability. A tagger with a
python-crfsuite ``tagger_`` is read through it (exact path probability, one call per sentence);
for any other, the path's log-probability is the sum of its tokens' log-marginals (exact for
independent tokens, an approximation for a CRF).
"""
from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from backend.model.crf_features import sentence_features
from backend.model.factories import build_from_factory
from backend.model.span_tokens import Offsets, Span, spans_to_tags, tokenize
from selection.sequence_uncertainty import NEEDS_MARGINALS, sequence_uncertainty

#: The measure pool scores are computed with (bench/RESULTS.md, "Entity extraction").
DEFAULT_SEQUENCE_MEASURE = "mnlp"


def default_tagger() -> Any:
    """sklearn-crfsuite's CRF with an iteration budget; imported here so a classification-only
    process never loads crfsuite."""
    from backend.model.crf_tagger import budgeted_crf

    return budgeted_crf()


def load_tagger(dotted: str | None) -> Any:
    """Build the configured tagger; ``None`` means :func:`default_tagger`."""
    return build_from_factory(dotted, default_tagger, variable="LABELQUEUE_SPAN_TAGGER",
                              methods=("fit", "predict", "predict_marginals"))


@dataclass(frozen=True)
class TaggedSentence:
    """What the tagger says about one text.

    Attributes
    ----------
    offsets : the tokens' character offsets, length n.
    tags : the best path, one BIO tag per token.
    path_logprob : log P(best path | text), <= 0.
    path_marginals : shape (n,): each token's marginal probability of its tag on the best path.
    marginals : shape (n, len(tag_names)), every tag's marginal per token; only when asked for.
    """

    offsets: list[Offsets]
    tags: list[str]
    path_logprob: float
    path_marginals: np.ndarray
    marginals: np.ndarray | None = None


@dataclass
class SpanModel:
    """A fitted tagger plus the config's entity types, in the shape the store and loop expect.

    ``tag_names`` are the tagger's BIO tags (marginal columns follow them). ``predict_proba``
    is the pool-scoring seam shared with classification (``backend/model/scoring.py``, the RQ
    fan-out): see its docstring.
    """

    version: str
    labels: tuple[str, ...]
    tagger: Any
    tag_names: tuple[str, ...]
    n_examples: int
    measure: str = DEFAULT_SEQUENCE_MEASURE
    multilabel: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)
    _lock: Any = field(default_factory=threading.Lock, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def tag(self, texts: Sequence[str], *, marginals: bool = False) -> list[TaggedSentence]:
        """Tokenise and tag each text; ``marginals`` adds every tag's marginal per token (about
        three times the cost of the best path alone). Serialised: a python-crfsuite tagger holds
        one sentence at a time."""
        offsets = [tokenize(t) for t in texts]
        features = [sentence_features([t[a:b] for a, b in o], false_flags=False) for t, o in zip(texts, offsets)]
        with self._lock:
            raw = _crfsuite_paths(self.tagger, features, self.tag_names, marginals)
            if raw is None:
                raw = _generic_paths(self.tagger, features, self.tag_names)
        return [TaggedSentence(o, *r) for o, r in zip(offsets, raw)]

    def scored(self, texts: Sequence[str]) -> tuple[list[TaggedSentence], np.ndarray]:
        """The texts tagged, and their uncertainty by the model's own measure: what ``/predict``
        and the pool both score by (marginals are computed only when the measure reads them)."""
        tagged = self.tag(texts, marginals=self.measure in NEEDS_MARGINALS)
        return tagged, self.uncertainty(tagged)

    def uncertainty(self, tagged: Sequence[TaggedSentence], measure: str | None = None) -> np.ndarray:
        """Sequence uncertainty of tagged sentences in [0, 1] by ``measure`` (default: the model's);
        entropy measures need sentences tagged with ``marginals=True``."""
        measure = measure or self.measure
        full = [s.marginals for s in tagged] if measure in NEEDS_MARGINALS else None
        if full is not None and any(m is None for m in full):
            raise ValueError(f"measure {measure!r} needs sentences tagged with marginals=True")
        return sequence_uncertainty(np.array([s.path_logprob for s in tagged]),
                                    np.array([len(s.offsets) for s in tagged]), measure, full)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Pool scores for selection, shape (n, 2): ``(1 - u / 2, u / 2)`` for the uncertainty ``u``.

        Selection scores a pool from a probability matrix. This two-column encoding makes every
        classification measure rank sentences exactly by ``u`` (margin and least confidence
        return ``u`` itself, entropy is increasing in it), so the uncertain slice, its band and
        duplicate suppression, and every pool scorer work unchanged for spans.
        """
        u = self.scored(texts)[1] if texts else np.zeros(0)
        return np.column_stack([1.0 - u / 2.0, u / 2.0])


def _crfsuite_paths(tagger: Any, features: list[list[dict]], names: tuple[str, ...], full: bool):
    """Best paths, exact path log-probabilities and marginals through a python-crfsuite ``tagger_``."""
    engine = getattr(tagger, "tagger_", None)
    if engine is None or not hasattr(engine, "probability"):
        return None
    out = []
    for xseq in features:
        if not xseq:
            out.append(([], 0.0, np.zeros(0), np.zeros((0, len(names))) if full else None))
            continue
        engine.set(xseq)
        tags = list(engine.tag())
        logp = min(float(np.log(max(engine.probability(tags), 1e-300))), 0.0)
        path = np.array([engine.marginal(tag, t) for t, tag in enumerate(tags)])
        marginals = np.array([[engine.marginal(name, t) for name in names] for t in range(len(xseq))]) if full else None
        out.append((tags, logp, path, marginals))
    return out


def _generic_paths(tagger: Any, features: list[list[dict]], names: tuple[str, ...]):
    """Best paths and marginals from ``predict`` / ``predict_marginals``; path log-probability as
    the sum of the path's log-marginals."""
    rows = [i for i, x in enumerate(features) if x]
    out: list[tuple] = [([], 0.0, np.zeros(0), np.zeros((0, len(names))))] * len(features)
    if not rows:
        return out
    paths = tagger.predict([features[i] for i in rows])
    margins = tagger.predict_marginals([features[i] for i in rows])
    for i, tags, per_token in zip(rows, paths, margins):
        marginals = np.array([[float(m.get(name, 0.0)) for name in names] for m in per_token])
        picked = np.array([float(m.get(tag, 0.0)) for m, tag in zip(per_token, tags)])
        out[i] = (list(tags), float(np.sum(np.log(np.maximum(picked, 1e-300)))), picked, marginals)
    return out


def fit_span_model(texts: Sequence[str], targets: Sequence[Sequence[Span]], *, labels: tuple[str, ...],
                   version: str, tagger: str | None = None, measure: str = DEFAULT_SEQUENCE_MEASURE) -> SpanModel:
    """Fit a fresh tagger on texts and their character spans (snapped to tokens, see span_tokens).

    Spans of types not in ``labels`` are dropped (a label renamed or removed in the config).
    """
    known = set(labels)
    features, tags = [], []
    for text, spans in zip(texts, targets):
        offsets = tokenize(text)
        if not offsets:
            continue
        features.append(sentence_features([text[a:b] for a, b in offsets]))
        tags.append(spans_to_tags(offsets, [s for s in spans if s[2] in known]))
    model = load_tagger(tagger)
    model.fit(features, tags)
    names = _tag_names(model, tags)
    return SpanModel(version=version, labels=labels, tagger=model, tag_names=names, n_examples=len(texts),
                     measure=measure)


def _tag_names(tagger: Any, tags: list[list[str]]) -> tuple[str, ...]:
    """The tagger's tag set: ``classes_`` when it has one, else every tag seen in training."""
    classes = getattr(tagger, "classes_", None)
    seen = classes if classes is not None else sorted({t for seq in tags for t in seq})
    return tuple(str(c) for c in seen)
