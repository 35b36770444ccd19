"""Queue order: interleave the slices so every prefix of the queue carries the mix.

Annotators work from the top of the queue and often stop early, so the first 20 items must
already hold roughly 5 % control, 15 % failure and so on; and control items must be spread
out rather than bunched, so nothing about their position gives them away. Control is then
placed by :func:`spread`: evenly, with the first one within reach (the first 10 ranks), so
every batch an annotator starts yields a control label.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

__all__ = ["interleave", "spread"]

Item = TypeVar("Item")


def interleave(groups: Mapping[str, Sequence[Item]]) -> list[tuple[str, Item]]:
    """Merge the slices with smooth weighted round-robin, weights = slice sizes.

    Each step every slice adds its weight to a running credit; the slice with the most
    credit emits its next item and pays back the total weight (ties go to the slice listed
    first). With weights equal to the slice sizes every slice is used up exactly at the end,
    and after any prefix of length ``t`` a slice of size ``w`` out of ``W`` has emitted
    about ``t * w / W`` items: within one item for up to four slices (checked by property
    test; with more slices the error can slightly exceed one).

    Parameters
    ----------
    groups : mapping of slice name to sequence
        Items of each slice, in the order they should appear within the slice.

    Returns
    -------
    list of (slice name, item), of length ``sum(len(items))``.
    """
    weights = {name: len(items) for name, items in groups.items() if len(items) > 0}
    total = sum(weights.values())
    credit = dict.fromkeys(weights, 0)
    emitted = dict.fromkeys(weights, 0)
    merged: list[tuple[str, Item]] = []
    for _ in range(total):
        for name, weight in weights.items():
            credit[name] += weight
        chosen = max(weights, key=credit.__getitem__)
        credit[chosen] -= total
        merged.append((chosen, groups[chosen][emitted[chosen]]))
        emitted[chosen] += 1
    return merged


def spread(merged: Sequence[tuple[str, Item]], name: str, first_within: int) -> list[tuple[str, Item]]:
    """Move the ``name`` items of ``merged`` to evenly spaced positions, the first one among
    the first ``first_within``; the other items keep their relative order.

    With ``c`` such items among ``n``, the spacing is ``s = n / c`` and item ``i`` goes to
    position ``round(o + i * s)`` (0-based) with offset ``o = min((s - 1) / 2, first_within - 1)``:
    centred in its stretch of the queue when that is within reach, else pulled forward.

    Parameters
    ----------
    merged : sequence of (slice name, item)
        A queue, e.g. from :func:`interleave`.
    name : str
        Slice to place (``"control"``).
    first_within : int
        The first ``name`` item lands at a position below this (>= 1).

    Returns
    -------
    list of (slice name, item), a permutation of ``merged``.
    """
    placed = [entry for entry in merged if entry[0] == name]
    others = [entry for entry in merged if entry[0] != name]
    if not placed:
        return list(merged)
    step = len(merged) / len(placed)
    offset = min((step - 1) / 2, first_within - 1)
    positions = {min(len(merged) - 1, int(offset + i * step + 0.5)): entry for i, entry in enumerate(placed)}
    rest = iter(others)
    return [positions[p] if p in positions else next(rest) for p in range(len(merged))]
