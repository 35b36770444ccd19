"""The seam between the loop and what kind of labelling a project does.

A *task kind* (text classification today; span labelling, issue 16, next) owns everything that
depends on the shape of a label: which labelling configs it serves, how a label is read from an
annotation's result, how a model is fitted on labels and turned into Label Studio predictions,
and how predictions are scored against annotators on the control slice. Callers (training,
``/predict``, the gateway's annotation resolution, measurement) go through
:func:`backend.model.labelconfig.kind_of` and never look inside a label, so a second kind plugs
in by implementing :class:`TaskKind` and joining ``labelconfig.KINDS``.

A label (``Target``) is a hashable tuple, so annotators' labels can be compared and voted on
whatever the kind: label names in config order for classification, and for spans e.g.
``((start, end, label), ...)`` in character offsets.
"""
from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

#: One task's label as a kind reads it from an annotation. It may be empty where the kind says an
#: empty answer is a label (a span project's sentence with no entities).
Target = tuple[Hashable, ...]


@dataclass(frozen=True)
class TaskSpec:
    """The learning problem a labelling config describes.

    Attributes
    ----------
    kind : the :class:`TaskKind` serving it (``"classification"``).
    from_name, to_name : the control's name and the ``Text`` object it labels; they go into
        every prediction so Label Studio can attach it to the right region.
    value_key : the key in ``task["data"]`` holding the text (``$text`` -> ``"text"``).
    labels : the control's labels in config order; probability columns follow this order.
    multilabel : classification with ``choice="multiple"``: labels are independent decisions.
    """

    from_name: str
    to_name: str
    value_key: str
    labels: tuple[str, ...]
    multilabel: bool
    kind: str = "classification"


class TaskKind(Protocol):
    """What the loop asks of one kind of labelling task; see the module docstring."""

    name: str
    #: The ``Settings`` attribute naming this kind's replacement model factory.
    estimator_setting: str
    #: The ``Settings`` attribute naming the uncertainty measure this kind's model is fitted to
    #: score by; ``None`` where the measure is applied at use instead (classification).
    measure_setting: str | None
    #: Distinct label names (``label_names``) the labelled set needs before a first model.
    min_label_names: int

    def spec_of(self, interface: Any) -> TaskSpec | None:
        """The spec of a parsed config (a ``LabelInterface``) this kind serves; ``None`` when it has
        no control of this kind; ``UnsupportedConfigError`` when it has one this kind cannot serve."""

    def labels_of(self, result: list[dict[str, Any]], spec: TaskSpec) -> Target | None:
        """The label in one annotation's or prediction's ``result`` (regions of ``spec.from_name``);
        ``None`` when the result holds nothing to learn (for classification: no choice made)."""

    def result_of(self, text: str, target: Target, spec: TaskSpec) -> list[dict[str, Any]]:
        """An annotation ``result`` saying ``target`` about ``text``, as the labelling UI would store
        it: the inverse of :meth:`labels_of` (imported seed labels are written this way)."""

    def fit(self, texts: Sequence[str], targets: Sequence[Target], spec: TaskSpec, *, version: str,
            estimator: str | None, previous: Any = None, measure: str | None = None) -> Any:
        """A fitted model (``version``, ``labels`` and ``predict_proba`` as ``TrainedModel``);
        ``estimator`` is the configured factory's dotted path, ``None`` for the default;
        ``previous`` is the model in service (``None`` if none or unreadable), which a kind may
        use as the solver's starting point or ignore; ``measure`` is the setting named by
        ``measure_setting`` (``None``: the kind's default, or a kind without one)."""

    def predict(self, model: Any, texts: Sequence[str], spec: TaskSpec, measure: str) -> list[dict[str, Any]]:
        """One Label Studio prediction per text, in order: ``result`` regions, ``score``,
        ``model_version`` and our ``uncertainty`` (by the named measure)."""

    def predicted(self, model: Any, texts: Sequence[str]) -> list[tuple[Target, float]]:
        """The label and task score the model gives each text, as recorded with a queue."""

    def label_names(self, target: Target) -> tuple[str, ...]:
        """The config labels one label carries, repeats kept: the chosen labels of a
        classification, the type of every span of a span label (coverage counts these)."""

    def effort_units(self, text: str, target: Target) -> dict[str, int]:
        """What one labelled task is worth in the units its cost is also reported per (tokens and
        entities of a sentence: a long sentence costs more than a short one); empty when the
        task itself is the unit."""

    def agreement(self, rated: Sequence[Sequence[tuple[Hashable, Target]]]) -> dict[str, Any] | None:
        """Kind-specific agreement figures of tasks rated by several annotators (``None``: the
        generic percent agreement and kappa over whole labels say it all)."""

    def quality(self, pairs: Sequence[tuple[Target, Target]], labels: Sequence[str],
                rng: np.random.Generator) -> dict[str, Any] | None:
        """Figures of (annotators' label, model's prediction) pairs on control, JSON-ready
        (``n``, ``correct``, ``accuracy`` with ``low``/``high`` at least); ``None`` without pairs."""


def num(value: float | None, digits: int = 6) -> float | None:
    """JSON has no NaN: unmeasurable figures leave as null."""
    return None if value is None or math.isnan(value) else round(float(value), digits)
