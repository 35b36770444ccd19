"""The span model's token features: what the CRF sees of a word and its neighbours."""
from __future__ import annotations

from backend.model.crf_features import sentence_features, word_shape


def test_word_shapes_collapse_repeated_character_classes():
    assert [word_shape(w) for w in ("London", "06:05", "iPhone", "ABC-12")] == ["Xx", "d:d", "xXx", "X-d"]


def test_a_token_sees_its_neighbours_and_the_sentence_edges():
    first, middle, last = sentence_features(["Book", "a", "Table"])
    assert first["-1:edge"] is True and first["-2:edge"] is True and "bigram-1" not in first
    assert middle["-1:lower"] == "book" and middle["+1:lower"] == "table" and middle["bigram+1"] == "a|table"
    assert last["+1:edge"] is True and last["bigram-1"] == "a|table"


def test_flags_describe_the_word_form():
    paris, at, ten = sentence_features(["Paris", "at", "10"])
    assert (paris["title"], at["title"], ten["digit"], ten["has_digit"], ten["upper"]) == (True, False, True, True, False)


def test_tagging_features_leave_out_only_the_flags_that_do_not_hold():
    words = ["Book", "a", "table", "at", "Luigi's", "for", "8"]
    full, lean = sentence_features(words), sentence_features(words, false_flags=False)
    assert lean == [{k: v for k, v in token.items() if v is not False} for token in full]
    assert sum(map(len, lean)) < 0.85 * sum(map(len, full))
