"""Token features for the span model: what a linear-chain CRF sees of each word.

Domain text (product codes, drug names, street names) is full of words no training set holds,
so besides the lower-cased word the features describe its form: a short word shape ("Xxxx",
"dd:dd"), 2- and 3-character prefixes and suffixes, casing and digit flags, and the same few
facts about the words at positions -2..+2, plus bigrams with the neighbours. These are the
features of the ``snips_slots`` reference CRF (its README), so our figures are comparable.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

_SHAPE = (re.compile(r"[A-Z]"), "X"), (re.compile(r"[a-z]"), "x"), (re.compile(r"\d"), "d")
_REPEATS = re.compile(r"(.)\1+")

#: Relative positions whose words are features of a token.
WINDOW = (-2, -1, 1, 2)

Features = dict[str, float | str | bool]


def word_shape(word: str) -> str:
    """``"London" -> "Xx"``, ``"06:05" -> "d:d"``: character classes with repeats collapsed."""
    shape = word
    for pattern, char in _SHAPE:
        shape = pattern.sub(char, shape)
    return _REPEATS.sub(r"\1", shape)


def _flags(false_flags: bool, *named: tuple[str, bool]) -> tuple[tuple[str, bool], ...]:
    """``named`` flags, without the false ones unless ``false_flags`` (see :func:`sentence_features`)."""
    return tuple(flag for flag in named if false_flags or flag[1])


@functools.lru_cache(maxsize=200_000)
def _own(word: str, false_flags: bool) -> tuple[tuple[str, Any], ...]:
    """A word's own features; cached (documented cache: words repeat, and this is most of the cost)."""
    lower = word.lower()
    return (("bias", 1.0), ("lower", lower), ("shape", word_shape(word)), ("prefix2", lower[:2]),
            ("prefix3", lower[:3]), ("suffix2", lower[-2:]), ("suffix3", lower[-3:]),
            *_flags(false_flags, ("title", word.istitle()), ("upper", word.isupper()), ("digit", word.isdigit()),
                    ("has_digit", any(c.isdigit() for c in word))),
            ("length", min(len(word), 12)))


@functools.lru_cache(maxsize=200_000)
def _context(word: str, offset: int, false_flags: bool) -> tuple[tuple[str, Any], ...]:
    """What a token sees of the word ``offset`` positions away; cached like :func:`_own`."""
    return ((f"{offset:+d}:lower", word.lower()), *_flags(false_flags, (f"{offset:+d}:title", word.istitle())),
            (f"{offset:+d}:shape", word_shape(word)))


_EDGE = {offset: ((f"{offset:+d}:edge", True),) for offset in WINDOW}


def sentence_features(words: Sequence[str], *, false_flags: bool = True) -> list[Features]:
    """One feature dict per word (python-crfsuite's input format: string keys, str/float values).

    ``false_flags=False`` leaves out the flags that do not hold, for tagging only. A false flag
    is an attribute of value 0: it adds nothing to any path's score, so the tags and
    probabilities are the same, and crfsuite skips a quarter of its attribute lookups (tagging
    is ~15 % faster). Training keeps them: the model they give is the one measured in
    bench/RESULTS.md (fitting without them changed the optimiser's path and cost 0.7 pp of F1
    at the tagger's budgeted iteration count).
    """
    lowered = [w.lower() for w in words]
    n = len(words)
    out = []
    for i, word in enumerate(words):
        features: Features = dict(_own(word, false_flags))
        for offset in WINDOW:
            j = i + offset
            features.update(_context(words[j], offset, false_flags) if 0 <= j < n else _EDGE[offset])
        if i > 0:
            features["bigram-1"] = f"{lowered[i - 1]}|{lowered[i]}"
        if i + 1 < n:
            features["bigram+1"] = f"{lowered[i]}|{lowered[i + 1]}"
        out.append(features)
    return out
