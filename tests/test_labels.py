"""Resolving Label Studio annotations into training labels."""
from __future__ import annotations

from backend.labelstudio.gateway import labelled_task, resolve_annotations
from backend.loop.training import count_changes
from backend.model.labelconfig import TaskSpec

SINGLE = TaskSpec("intent", "text", "text", ("a", "b", "c"), multilabel=False)
MULTI = TaskSpec("topics", "text", "text", ("a", "b", "c"), multilabel=True)
SPANS = TaskSpec("label", "text", "text", ("PER", "ORG"), multilabel=False, kind="spans")


def annotation(choices, *, id=1, updated="2026-01-01T00:00:00Z", cancelled=False, from_name="intent"):
    return {"id": id, "updated_at": updated, "was_cancelled": cancelled,
            "result": [{"from_name": from_name, "to_name": "text", "type": "choices",
                        "value": {"choices": choices}}]}


def test_majority_of_annotators_wins():
    votes = [annotation(["a"], id=1), annotation(["b"], id=2, updated="2026-02-01"), annotation(["a"], id=3)]
    assert resolve_annotations(votes, SINGLE) == ("a",)


def test_tie_goes_to_the_latest_annotation():
    votes = [annotation(["a"], id=1, updated="2026-01-01"), annotation(["b"], id=2, updated="2026-03-01")]
    assert resolve_annotations(votes, SINGLE) == ("b",)


def test_choices_not_in_the_config_are_not_learned():
    assert resolve_annotations([annotation(["zzz"])], SINGLE) is None


def test_multilabel_keeps_the_whole_label_set_in_config_order():
    assert resolve_annotations([annotation(["c", "a"], from_name="topics")], MULTI) == ("a", "c")


def test_cancelled_annotations_are_skipped():
    task = {"id": 5, "data": {"text": "hi"}, "annotations": [annotation(["a"], cancelled=True)]}
    assert labelled_task(task, SINGLE) is None


def test_override_is_recorded_when_annotator_disagrees_with_latest_prediction():
    prediction = {"id": 9, "created_at": "2026-01-02", "result": annotation(["b"])["result"]}
    task = {"id": 5, "data": {"text": "hi"}, "annotations": [annotation(["a"])], "predictions": [prediction]}
    assert labelled_task(task, SINGLE).overridden is True


def test_empty_cold_start_prediction_is_not_an_override():
    task = {"id": 5, "data": {"text": "hi"}, "annotations": [annotation(["a"])],
            "predictions": [{"id": 9, "result": []}]}
    assert labelled_task(task, SINGLE).overridden is False


def span_annotation(*spans, id=1, updated="2026-01-01T00:00:00Z"):
    return {"id": id, "updated_at": updated, "was_cancelled": False,
            "result": [{"from_name": "label", "to_name": "text", "type": "labels",
                        "value": {"start": a, "end": b, "labels": [label]}} for a, b, label in spans]}


def test_a_span_annotation_without_spans_is_learned_as_no_entities():
    task = {"id": 5, "data": {"text": "see you tomorrow"}, "annotations": [span_annotation()]}
    assert labelled_task(task, SPANS).labels == ()


def test_no_entities_is_a_vote_like_any_other_span_set():
    votes = [span_annotation(id=1), span_annotation((0, 3, "PER"), id=2, updated="2026-02-01"),
             span_annotation(id=3)]
    assert resolve_annotations(votes, SPANS) == ()


def test_a_span_annotation_whose_spans_were_all_dropped_is_not_learned():
    renamed = span_annotation((0, 3, "COMPANY"))  # a type since removed from the config
    assert resolve_annotations([renamed], SPANS) is None


def test_an_empty_classification_annotation_is_still_no_label():
    empty = {"id": 1, "updated_at": "2026-01-01", "result": []}
    assert resolve_annotations([empty], SINGLE) is None
    assert resolve_annotations([empty, annotation(["b"], id=2)], SINGLE) == ("b",)


def test_count_changes_sees_new_relabelled_and_removed_tasks():
    previous = {1: {"labels": ["a"]}, 2: {"labels": ["b"]}, 3: {"labels": ["c"]}}
    def task(tid, label):
        return labelled_task(
            {"id": tid, "data": {"text": "t"}, "annotations": [annotation([label])]}, SINGLE)
    current = [task(1, "a"), task(2, "c"), task(4, "a")]  # 2 relabelled, 4 new, 3 removed
    assert count_changes(previous, current) == 3


def test_spans_added_where_the_model_predicted_none_are_an_override():
    predicted_nothing = {"id": 9, "created_at": "2026-01-01", "result": []}
    task = {"id": 6, "data": {"text": "Ann works at Acme"}, "annotations": [span_annotation((0, 3, "PER"))],
            "predictions": [predicted_nothing]}
    assert labelled_task(task, SPANS).overridden is True
