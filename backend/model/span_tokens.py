"""One tokeniser for span labelling, and the mapping between character spans and BIO / IOB1 tags.

Training reads Label Studio spans as character offsets and prediction writes them back the same
way, so both go through :func:`tokenize` and never through a second notion of "word". The
pattern is the one ``snips_slots`` was built with: a word may hold inner apostrophes, dots,
colons, slashes and hyphens ("I'd", "06:05", "Pre-Party"); any other non-space character is a
token of its own.

Annotators select text with a mouse, so a span may start or end inside a token ("Londo" of
"London", a trailing space, a leading quote). :func:`spans_to_tags` snaps it outwards to whole
tokens: every token the span overlaps by at least one character belongs to it. A span that covers
no token (only spaces) is dropped. Spans that overlap after snapping keep the one that starts
first (the longer on a tie); overlapping entities are not served (``label_config/ner.xml``).
"""
from __future__ import annotations

import re
from collections.abc import Sequence

TOKEN = re.compile(r"\w+(?:['’.:/\-]\w+)*|[^\w\s]")

#: A character span with its entity type: ``(start, end, label)``, ``end`` exclusive.
Span = tuple[int, int, str]
#: A token's character offsets ``(start, end)``.
Offsets = tuple[int, int]


def tokenize(text: str) -> list[Offsets]:
    """Character offsets of the tokens of ``text``, in order."""
    return [m.span() for m in TOKEN.finditer(text)]


def spans_to_tags(offsets: Sequence[Offsets], spans: Sequence[Span]) -> list[str]:
    """BIO tags, one per token, for character ``spans`` snapped outwards to whole tokens."""
    taken = [False] * len(offsets)
    runs = []
    for start, end, label in sorted(spans, key=lambda s: (s[0], -(s[1] - s[0]))):
        covered = [i for i, (a, b) in enumerate(offsets) if a < end and b > start]
        if not covered or any(taken[i] for i in covered):
            continue
        for i in covered:
            taken[i] = True
        runs.append((covered[0], covered[-1] + 1, label))
    return runs_to_tags(sorted(runs), len(offsets))


def runs_to_tags(runs: Sequence[tuple[int, int, str]], n: int, scheme: str = "bio") -> list[str]:
    """``n`` tags for entities given as token runs ``(first, last + 1, label)``, not overlapping.

    ``"bio"`` marks every entity's first token ``B-``. ``"iob1"`` (Ramshaw and Marcus's original
    scheme) writes ``I-`` throughout and ``B-`` only where an entity directly follows one of the
    same type: the same spans, read back by :func:`tag_runs`, with about half as many distinct
    tags, which is what a CRF's training time grows with (squared).
    """
    if scheme not in ("bio", "iob1"):
        raise ValueError(f"unknown tag scheme {scheme!r}: 'bio' or 'iob1'")
    tags = ["O"] * n
    for first, end, label in runs:
        follows_same = first > 0 and tags[first - 1] != "O" and tags[first - 1][2:] == label
        tags[first] = f"B-{label}" if scheme == "bio" or follows_same else f"I-{label}"
        for i in range(first + 1, end):
            tags[i] = f"I-{label}"
    return tags


def tag_runs(tags: Sequence[str]) -> list[tuple[int, int, str]]:
    """Entities in a BIO sequence as token runs ``(first, last + 1, label)``.

    An ``I-`` that does not continue an entity of its type starts one (the usual lenient
    reading, as seqeval's default mode does), so a CRF that skips a ``B-`` still yields a span.
    """
    runs: list[tuple[int, int, str]] = []
    for i, tag in enumerate(tags):
        prefix, _, label = tag.partition("-")
        if prefix == "I" and runs and runs[-1][1] == i and runs[-1][2] == label:
            runs[-1] = (runs[-1][0], i + 1, label)
        elif prefix in ("B", "I"):
            runs.append((i, i + 1, label))
    return runs


def tags_to_spans(offsets: Sequence[Offsets], tags: Sequence[str]) -> list[Span]:
    """Character spans of the entities in ``tags`` (from the first token's start to the last's end)."""
    return [(offsets[a][0], offsets[b - 1][1], label) for a, b, label in tag_runs(tags)]
