"""Is the loop selecting the wrong work? Plain rules over per-cycle figures, and the mix change
they suggest.

Every rule reads only numbers the report also shows, so an admin can check a warning by eye.
Control figures come from a handful of items per cycle and are noisy; the rules therefore ask
for a pattern that lasts ``patience`` cycles rather than reacting to one cycle.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from selection.metrics import weighted_slope
from selection.mix import SliceMix

__all__ = [
    "UNCERTAIN_RANGE",
    "CycleSignals",
    "LoopThresholds",
    "LoopWarning",
    "loop_warnings",
    "lowered_mix",
]

#: The recommended range for the uncertain share; automatic lowering never leaves it.
UNCERTAIN_RANGE = (0.50, 0.60)
#: Share moved from uncertain to diverse per automatic change.
MIX_STEP = 0.05
#: Fewer multiply-labelled items than this in a slice make its agreement too noisy to compare.
MIN_AGREEMENT_ITEMS = 5
#: Rise in accuracy on the uncertain and failure slices that counts as "rising".
EDGE_RISE = 0.05


@dataclass(frozen=True)
class CycleSignals:
    """The figures of one cycle the rules look at; None where the cycle could not measure it.

    ``labels`` is the training-set size of the cycle's model; ``*_n`` count the items behind
    an accuracy, used as weights when fitting a trend.
    """

    cycle: int
    labels: int = 0
    control_accuracy: float | None = None
    control_n: int = 0
    edge_accuracy: float | None = None
    edge_n: int = 0
    uncertain_agreement: float | None = None


@dataclass(frozen=True)
class LoopThresholds:
    """``gain_per_label`` is in accuracy (0..1) per label; the settings state it per 100 labels
    in percentage points, which is ``gain_per_label * 10_000``."""

    gain_per_label: float
    patience: int
    agreement_gap: float
    rare_class: int
    high_impact: tuple[str, ...] = ()


@dataclass(frozen=True)
class LoopWarning:
    code: str
    message: str
    suggestion: str
    cycles: list[int] = field(default_factory=list)


def _measured(values: Sequence[float | None]) -> bool:
    return all(v is not None and not math.isnan(v) for v in values)


def low_gain(signals: Sequence[CycleSignals], limits: LoopThresholds) -> LoopWarning | None:
    """Over the last ``patience`` cycles, control accuracy rose less per label than the threshold.

    The rate is the slope of control accuracy against training labels fitted through the last
    ``patience + 1`` measured cycles, weighted by control items: with a handful of control
    items per cycle, single-cycle gains swing by tens of points and a rule on them would fire
    at random. The per-cycle gains remain in the report.
    """
    window = [s for s in signals if _measured([s.control_accuracy]) and s.control_n][-(limits.patience + 1):]
    if len(window) < limits.patience + 1:
        return None
    rate = weighted_slope([s.labels for s in window], [s.control_accuracy for s in window],
                          [s.control_n for s in window])
    if rate is None or rate >= limits.gain_per_label:
        return None
    return LoopWarning(
        "low_gain",
        f"Gain per label has stayed below {limits.gain_per_label * 10_000:.2f} accuracy points per 100 labels "
        f"for the last {limits.patience} cycles: from cycle {window[0].cycle} to {window[-1].cycle} "
        f"({window[-1].labels - window[0].labels} labels) control accuracy moved {rate * 10_000:+.2f} points "
        "per 100 labels (fitted trend).",
        "Consider stopping: more labels are not improving the model on the control slice. Or change the "
        "mix (more diverse, fewer uncertain items) and watch the next cycles.",
        [s.cycle for s in window])


def noisy_uncertain_labels(signals: Sequence[CycleSignals], uncertain: tuple[float, int], control: tuple[float, int],
                           limits: LoopThresholds) -> LoopWarning | None:
    """Agreement on the uncertain slice falls cycle after cycle, or sits far below control's.

    ``uncertain`` and ``control`` are (percent agreement, items) over the whole project.
    """
    (u_value, u_items), (c_value, c_items) = uncertain, control
    if u_items >= MIN_AGREEMENT_ITEMS and c_items >= MIN_AGREEMENT_ITEMS and c_value - u_value >= limits.agreement_gap:
        return LoopWarning(
            "noisy_uncertain_labels",
            f"Annotators agree on {u_value:.0%} of uncertain items ({u_items} items) but on {c_value:.0%} of "
            f"control items ({c_items}): labels on the uncertain slice are much noisier.",
            "Lower the uncertain share (recommended: 50-60 %) or give uncertain items to experienced annotators.")
    recent = [s for s in signals if _measured([s.uncertain_agreement])][-(limits.patience + 1):]
    values = [s.uncertain_agreement for s in recent]
    if len(recent) == limits.patience + 1 and all(b < a for a, b in zip(values, values[1:])):
        return LoopWarning(
            "noisy_uncertain_labels",
            f"Agreement on the uncertain slice fell in each of the last {limits.patience} cycles "
            f"({' -> '.join(f'{v:.0%}' for v in values)}): labels are getting noisier.",
            "Lower the uncertain share (recommended: 50-60 %).",
            [s.cycle for s in recent])
    return None


def edge_case_overfit(signals: Sequence[CycleSignals], limits: LoopThresholds) -> LoopWarning | None:
    """Accuracy rises on the uncertain and failure slices but not on the random control slice.

    Both trends are fitted through the last ``patience + 1`` cycles that measured both,
    weighted by items, and compared across the window's labels.
    """
    both = [s for s in signals if _measured([s.edge_accuracy, s.control_accuracy]) and s.edge_n and s.control_n]
    both = both[-(limits.patience + 1):]
    if len(both) < limits.patience + 1:
        return None
    x = [s.labels for s in both]
    edge_rate = weighted_slope(x, [s.edge_accuracy for s in both], [s.edge_n for s in both])
    control_rate = weighted_slope(x, [s.control_accuracy for s in both], [s.control_n for s in both])
    if edge_rate is None or control_rate is None:
        return None
    span = x[-1] - x[0]
    edge, control = edge_rate * span, control_rate * span
    if edge < EDGE_RISE or control > 0:
        return None
    return LoopWarning(
        "edge_case_overfit",
        f"From cycle {both[0].cycle} to {both[-1].cycle} accuracy rose {edge * 100:+.0f} points on the uncertain "
        f"and failure slices but moved {control * 100:+.0f} points on control (fitted trends): the loop may be "
        "overfitting to edge cases.",
        "Give the diverse and control slices a larger share so the model keeps learning the common cases.",
        [s.cycle for s in both])


def uncovered_high_impact(labels_per_class: dict[str, int], limits: LoopThresholds) -> LoopWarning | None:
    short = {c: labels_per_class.get(c, 0) for c in limits.high_impact if labels_per_class.get(c, 0) < limits.rare_class}
    if not short:
        return None
    listed = ", ".join(f"{c} ({n})" for c, n in short.items())
    return LoopWarning(
        "uncovered_high_impact",
        f"High-impact classes with fewer than {limits.rare_class} labels: {listed}.",
        "Flag production failures of these classes or import more examples of them so the failure and "
        "diverse slices can find them.")


def loop_warnings(signals: Sequence[CycleSignals], *, uncertain_agreement: tuple[float, int],
                  control_agreement: tuple[float, int], labels_per_class: dict[str, int],
                  limits: LoopThresholds) -> list[LoopWarning]:
    """Every warning that applies now, most actionable first."""
    found = [low_gain(signals, limits),
             noisy_uncertain_labels(signals, uncertain_agreement, control_agreement, limits),
             edge_case_overfit(signals, limits),
             uncovered_high_impact(labels_per_class, limits)]
    return [w for w in found if w is not None]


def lowered_mix(mix: SliceMix) -> SliceMix | None:
    """The mix with ``MIX_STEP`` less uncertain share (given to diverse), kept within
    :data:`UNCERTAIN_RANGE`; None when it cannot go lower."""
    low, high = UNCERTAIN_RANGE
    target = round(max(low, min(mix.uncertain - MIX_STEP, high)), 9)
    if target >= mix.uncertain:
        return None
    return SliceMix(uncertain=target, diverse=round(mix.diverse + mix.uncertain - target, 9),
                    failure=mix.failure, control=mix.control)
