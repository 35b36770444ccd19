"""The batch mix: what share of each batch goes to each slice, and how slots are counted.

A batch has four slices. ``uncertain`` and ``diverse`` teach the model, ``failure`` chases
known production mistakes, and ``control`` is a uniform sample that keeps the accuracy
estimate honest. :class:`SliceMix` holds the shares; :func:`allocate` turns them into whole
slot counts for one batch, given how many candidates each slice can actually supply.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from selection.errors import InvalidMixError

__all__ = ["COLD_MIX", "SLICES", "WARM_MIX", "SliceMix", "allocate", "redistribute", "scheduled_mix"]

SLICES: tuple[str, ...] = ("uncertain", "diverse", "failure", "control")

# Slices that may take slots another slice cannot fill, highest priority first. Failure is
# absent on purpose: extra failure slots cannot be invented from ordinary pool items.
_RECEIVERS: tuple[str, ...] = ("uncertain", "diverse", "control")


@dataclass(frozen=True)
class SliceMix:
    """Share of each batch given to each slice; shares are in [0, 1] and sum to 1.

    Raises
    ------
    InvalidMixError
        If a share is not a number in [0, 1] or the shares do not sum to 1 (within 1e-6).
    """

    uncertain: float = 0.55
    diverse: float = 0.25
    failure: float = 0.15
    control: float = 0.05

    def __post_init__(self) -> None:
        shares = asdict(self)
        for name, share in shares.items():
            if isinstance(share, bool) or not isinstance(share, (int, float)):
                raise InvalidMixError(f"share {name!r} must be a number; got {share!r}")
            if not (math.isfinite(share) and 0.0 <= share <= 1.0):
                raise InvalidMixError(f"share {name!r} must be in [0, 1]; got {share}")
        total = sum(shares.values())
        if abs(total - 1.0) > 1e-6:
            listed = ", ".join(f"{name}={share:g}" for name, share in shares.items())
            raise InvalidMixError(
                f"slice shares must sum to 1; got {listed} (sum {total:g}). "
                "Adjust them, e.g. uncertain=0.55, diverse=0.25, failure=0.15, control=0.05"
            )

    @classmethod
    def from_mapping(cls, shares: Mapping[str, object]) -> SliceMix:
        """Build a mix from settings or JSON, e.g. ``{"uncertain": 0.7, "diverse": 0.3}``.

        Slices left out get share 0, so a mapping must list every slice it wants; numeric
        strings such as ``"0.5"`` are accepted because environment variables are strings.

        Raises
        ------
        InvalidMixError
            On unknown slice names, non-numeric shares, or any :class:`SliceMix` violation.
        """
        unknown = sorted(set(shares) - set(SLICES))
        if unknown:
            raise InvalidMixError(f"unknown slice(s) {unknown}; valid slices are {list(SLICES)}")
        values: dict[str, float] = {}
        for name in SLICES:
            raw = shares.get(name, 0.0)
            try:
                values[name] = float(raw)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                raise InvalidMixError(f"share {name!r} must be a number; got {raw!r}") from None
        return cls(**values)

    def share(self, name: str) -> float:
        """Share of slice ``name`` (one of :data:`SLICES`)."""
        return float(getattr(self, name))


def _largest_remainder(weights: Mapping[str, float], total: int) -> dict[str, int]:
    """Split ``total`` whole slots in proportion to ``weights`` (positive sum).

    Floors first, then the leftover slots go to the largest fractional parts; ties go to
    the key that comes first in ``weights``, which callers order by priority.
    """
    weight_sum = sum(weights.values())
    quotas = {name: total * weight / weight_sum for name, weight in weights.items()}
    counts = {name: math.floor(quota) for name, quota in quotas.items()}
    order = sorted(weights, key=lambda name: -round(quotas[name] - counts[name], 9))
    for name in order[: total - sum(counts.values())]:
        counts[name] += 1
    return counts


def allocate(
    mix: SliceMix,
    batch_size: int,
    available: Mapping[str, int],
    *,
    pool_size: int | None = None,
) -> dict[str, int]:
    """Turn the mix into slot counts for one batch.

    The rule, in order:

    1. The batch holds ``total = min(batch_size, pool_size)`` items. All slices draw from
       one shared pool, so ``pool_size`` defaults to the largest value in ``available``.
    2. ``share * total`` is rounded by largest remainder (ties favour uncertain, diverse,
       failure, control in that order), so counts sum to ``total``.
    3. Control gets at least one slot when its share is > 0, ``total >= 2`` and a control
       candidate exists, taken from the slice whose rounded count most exceeds its exact
       quota; otherwise small batches would silently stop measuring the model.
    4. A slice with fewer candidates than slots keeps what it can fill and hands the
       shortfall to uncertain, diverse and control in proportion to their shares (largest
       remainder, ties in that order; by priority alone if those shares are all 0), repeated
       until placed or nobody has room. Failure never receives slots: failures cannot be
       invented. Control is only ever capped by its own candidates, never given away.

    Parameters
    ----------
    mix : SliceMix
    batch_size : int
        Requested batch size, >= 0.
    available : mapping of slice name to int
        How many distinct candidates each slice can supply; missing slices supply 0.
    pool_size : int, optional
        Number of distinct selectable items across all slices.

    Returns
    -------
    dict of slice name to int
        One entry per slice in :data:`SLICES` order.
    """
    if batch_size < 0:
        raise ValueError(f"batch_size must be >= 0; got {batch_size}")
    unknown = sorted(set(available) - set(SLICES))
    if unknown:
        raise ValueError(
            f"unknown slice(s) {unknown} in available; valid slices are {list(SLICES)}"
        )
    capacity = {name: int(available.get(name, 0)) for name in SLICES}
    if any(value < 0 for value in capacity.values()):
        raise ValueError(f"available counts must be >= 0; got {capacity}")
    total = min(batch_size, max(capacity.values()) if pool_size is None else pool_size)
    if total <= 0:
        return {name: 0 for name in SLICES}

    counts = _largest_remainder({name: mix.share(name) for name in SLICES}, total)
    if mix.control > 0 and total >= 2 and capacity["control"] >= 1 and counts["control"] == 0:
        donor = max(
            (name for name in SLICES if name != "control" and counts[name] > 0),
            key=lambda name: round(counts[name] - mix.share(name) * total, 9),
        )
        counts[donor] -= 1
        counts["control"] = 1

    shortfall = 0
    for name in SLICES:
        if counts[name] > capacity[name]:
            shortfall += counts[name] - capacity[name]
            counts[name] = capacity[name]
    room = {name: capacity[name] - counts[name] for name in _RECEIVERS}
    for name, extra in redistribute(mix, shortfall, room).items():
        counts[name] += extra
    return counts


def redistribute(mix: SliceMix, slots: int, room: Mapping[str, int]) -> dict[str, int]:
    """Hand ``slots`` that one slice cannot fill to the slices that can take more.

    Receivers are uncertain, diverse and control (never failure), each limited by its
    ``room``; slots are split in proportion to their shares by largest remainder, ties and
    all-zero shares resolved in that priority order, and the split is repeated until every
    slot is placed or no receiver has room left.

    Parameters
    ----------
    mix : SliceMix
    slots : int
        Slots to place, >= 0.
    room : mapping of slice name to int
        Extra slots each slice can still fill; slices not listed receive nothing.

    Returns
    -------
    dict of slice name to int
        Extra slots per receiver in ``room``; they sum to at most ``slots``.
    """
    extras = {name: 0 for name in _RECEIVERS if name in room}
    while slots > 0:
        open_slices = [name for name in extras if room[name] > extras[name]]
        if not open_slices:
            break
        weights = {name: mix.share(name) for name in open_slices}
        if sum(weights.values()) == 0:
            weights = {open_slices[0]: 1.0}
        for name, extra in _largest_remainder(weights, slots).items():
            given = min(extra, room[name] - extras[name])
            extras[name] += given
            slots -= given
    return extras


#: Shares while the labelled set is small and at steady state; see :func:`scheduled_mix`.
COLD_MIX = SliceMix(uncertain=0.50, diverse=0.30, failure=0.15, control=0.05)
WARM_MIX = SliceMix(uncertain=0.60, diverse=0.20, failure=0.15, control=0.05)
#: Labels per class at which the schedule reaches :data:`WARM_MIX`.
WARM_LABELS_PER_CLASS = 10.0


def scheduled_mix(labelled: int, classes: int) -> SliceMix:
    """The default mix for a labelled set of ``labelled`` items over ``classes`` classes.

    With few labels per class the model's uncertainty is poorly calibrated and whole regions
    are unlabelled, so coverage is worth more: the schedule starts at :data:`COLD_MIX`
    (uncertain 50 %, diverse 30 %) and moves linearly to :data:`WARM_MIX` (uncertain 60 %,
    diverse 20 %) at :data:`WARM_LABELS_PER_CLASS` labels per class. Failure (15 %) and
    control (5 %) stay fixed, and every point stays inside the product's bands (uncertain
    50-60 %, diverse 20-30 %, failure 10-20 %, small control). Measured in bench/RESULTS.md.
    """
    if classes < 1:
        raise ValueError(f"classes must be >= 1; got {classes}")
    progress = min(1.0, max(0.0, labelled / (WARM_LABELS_PER_CLASS * classes)))
    diverse = round(COLD_MIX.diverse + progress * (WARM_MIX.diverse - COLD_MIX.diverse), 4)
    return SliceMix(
        uncertain=round(1.0 - diverse - WARM_MIX.failure - WARM_MIX.control, 4),
        diverse=diverse,
        failure=WARM_MIX.failure,
        control=WARM_MIX.control,
    )
