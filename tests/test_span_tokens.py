"""Tokens and spans: training and prediction read character spans through one tokeniser."""
from __future__ import annotations

from backend.model.span_tokens import spans_to_tags, tag_runs, tags_to_spans, tokenize

TEXT = "Add Pre-Party to Cita Romántica at 06:05 ."


def words(text: str) -> list[str]:
    return [text[a:b] for a, b in tokenize(text)]


def test_tokenizer_keeps_inner_hyphens_colons_and_accents():
    assert words(TEXT) == ["Add", "Pre-Party", "to", "Cita", "Romántica", "at", "06:05", "."]


def test_span_on_token_boundaries_round_trips_through_tags():
    offsets = tokenize(TEXT)
    spans = [(4, 13, "track"), (17, 31, "playlist")]
    tags = spans_to_tags(offsets, spans)
    assert tags == ["O", "B-track", "O", "B-playlist", "I-playlist", "O", "O", "O"]
    assert tags_to_spans(offsets, tags) == spans


def test_span_cut_mid_token_is_widened_to_whole_tokens():
    offsets = tokenize(TEXT)
    # "ita Romá": starts inside "Cita", ends inside "Romántica"
    tags = spans_to_tags(offsets, [(18, 26, "playlist")])
    assert tags_to_spans(offsets, tags) == [(17, 31, "playlist")]


def test_span_over_white_space_only_is_dropped():
    offsets = tokenize("a  b")
    assert spans_to_tags(offsets, [(1, 3, "x")]) == ["O", "O"]


def test_overlapping_spans_keep_the_one_that_starts_first():
    offsets = tokenize(TEXT)
    tags = spans_to_tags(offsets, [(17, 21, "city"), (17, 31, "playlist"), (22, 40, "other")])
    assert tags_to_spans(offsets, tags) == [(17, 31, "playlist")]


def test_span_outside_the_text_is_ignored_not_an_error():
    assert spans_to_tags(tokenize("short"), [(50, 60, "x")]) == ["O"]


def test_stray_inside_tag_starts_an_entity():
    assert tag_runs(["O", "I-a", "I-a", "B-b", "I-a"]) == [(1, 3, "a"), (3, 4, "b"), (4, 5, "a")]


def test_iob1_tags_read_back_as_the_same_entities_with_fewer_distinct_tags():
    from backend.model.span_tokens import runs_to_tags, tag_runs

    runs = [(0, 2, "PER"), (2, 3, "PER"), (4, 5, "LOC")]  # two PER entities side by side
    iob1 = runs_to_tags(runs, 6, "iob1")
    assert iob1 == ["I-PER", "I-PER", "B-PER", "O", "I-LOC", "O"]
    assert tag_runs(iob1) == tag_runs(runs_to_tags(runs, 6, "bio")) == runs
