"""Queue order: interleave the slices so every prefix of the queue carries the mix.

Annotators work from the top of the queue and often stop early, so the first 20 items must
already hold roughly 5 % control, 15 % failure and so on; and control items must be spread
out rather than bunched, so nothing about their position gives them away.
"""

from __future__ import annotations

from typing import Mapping, Sequence, TypeVar

__all__ = ["interleave"]

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
