"""``labelqueue quickstart --task ner`` checked without starting any server: the demo's sentences
and entities, reading entities from a tasks file, span configs from entity types, seed sentences
and the annotations they are imported with, and the refusals. The running quickstart is driven
in tests/test_e2e_browser.py."""
from __future__ import annotations

import argparse
import json
from collections import Counter

import pytest

from backend.cli import build_parser, main
from backend.local.quickstart import _task, options_from_args
from backend.local.quickstart_inputs import (
    DEMOS,
    NER_CONFIG,
    SINGLE_LABEL_CONFIG,
    TaskFileError,
    TaskRow,
    check_config,
    config_with_labels,
    read_task_file,
    seed_rows,
)
from backend.model.labelconfig import kind_of
from backend.model.span_tokens import tokenize

NER_DEMO = DEMOS["ner"]


@pytest.fixture(scope="module")
def demo() -> list[TaskRow]:
    return read_task_file(NER_DEMO.tasks, label_field=NER_DEMO.label_field, spans=True)


def quickstart_args(*arguments: str) -> argparse.Namespace:
    return build_parser().parse_args(["quickstart", "--no-browser", *arguments])


def test_demo_sentences_are_distinct_and_their_entities_fall_on_whole_tokens(demo):
    texts = [row.data["text"] for row in demo]
    assert 200 <= len(texts) <= 400 and len(set(texts)) == len(texts)
    assert all(NER_DEMO.label_field not in row.data for row in demo), "the demo entities must not reach Label Studio"
    for row in demo:
        starts = {a for a, _ in tokenize(row.data["text"])}
        ends = {b for _, b in tokenize(row.data["text"])}
        assert all(a in starts and b in ends for a, b, _ in row.labels), row.data["text"]
        assert all(x[1] <= y[0] for x, y in zip(row.labels, row.labels[1:])), "entities must not overlap"


def test_demo_uses_every_entity_type_of_the_shipped_config_and_has_sentences_without_any(demo):
    spec = check_config(NER_CONFIG.read_text())
    types = Counter(label for row in demo for _, _, label in row.labels)
    assert set(types) == set(spec.labels) and min(types.values()) >= 50
    assert sum(1 for row in demo if not row.labels) >= 5


def test_ner_seeds_cover_each_type_and_are_imported_as_the_span_annotations_they_read_back_as(demo):
    spec = check_config(NER_CONFIG.read_text())
    seeds = seed_rows(demo, spec, per_label=2)
    covered = Counter(label for i in seeds for label in {s[2] for s in demo[i].labels})
    assert all(covered[label] >= 2 for label in spec.labels) and len(seeds) <= 2 * len(spec.labels)
    for index in seeds:
        result = _task(demo[index], spec, annotated=True)["annotations"][0]["result"]
        assert {region["type"] for region in result} == {"labels"}
        assert kind_of(spec).labels_of(result, spec) == demo[index].labels
        assert all(r["value"]["text"] == demo[index].data["text"][r["value"]["start"]:r["value"]["end"]]
                   for r in result)


def test_classification_seeds_are_imported_as_the_choices_they_read_back_as():
    spec = check_config(SINGLE_LABEL_CONFIG.read_text())
    row = TaskRow({"text": "Where is my card?"}, (spec.labels[0],))
    result = _task(row, spec, annotated=True)["annotations"][0]["result"]
    assert kind_of(spec).labels_of(result, spec) == (spec.labels[0],)


def test_span_config_from_entity_types_has_exactly_those_types():
    spec = check_config(config_with_labels(["DRUG", "DOSE", "DRUG"], spans=True))
    assert spec.kind == "spans" and spec.labels == ("DRUG", "DOSE")
    assert check_config(config_with_labels(["DRUG"], spans=True)).labels == ("DRUG",)


def test_entities_read_from_jsonl_and_csv_in_either_shape(tmp_path):
    (tmp_path / "t.jsonl").write_text(json.dumps({"text": "Take aspirin daily", "e": [
        {"start": 13, "end": 18, "label": "FREQ"}, {"start": 5, "end": 12, "labels": ["DRUG"]}]}) + "\n"
        + json.dumps({"text": "Nothing here"}) + "\n")
    rows = read_task_file(tmp_path / "t.jsonl", label_field="e", spans=True)
    assert [r.labels for r in rows] == [((5, 12, "DRUG"), (13, 18, "FREQ")), ()]
    (tmp_path / "t.csv").write_text('text,e\nTake aspirin,"[{""start"": 5, ""end"": 12, ""label"": ""DRUG""}]"\n')
    assert read_task_file(tmp_path / "t.csv", label_field="e", spans=True)[0].labels == ((5, 12, "DRUG"),)


@pytest.mark.parametrize("entities, message", [
    ([{"start": 5, "end": 99, "label": "DRUG"}], r"line 1, 'e', entity 1: start and end must be .* <= 12"),
    ([{"start": 5, "end": 5, "label": "DRUG"}], r"0 <= start < end"),
    ([{"start": "5", "end": 12, "label": "DRUG"}], r"got start='5'"),
    ([{"start": 5, "end": 12}], r"needs its entity type"),
    (["DRUG"], r"expected an object with start, end and label, got str"),
    ({"start": 5}, r"must be a list"),
    ("[not json", r"must be a JSON list"),
])
def test_bad_entities_are_refused_naming_the_line_and_entity(tmp_path, entities, message):
    (tmp_path / "t.jsonl").write_text(json.dumps({"text": "Take aspirin", "e": entities}) + "\n")
    with pytest.raises(TaskFileError, match=message):
        read_task_file(tmp_path / "t.jsonl", label_field="e", spans=True)


def test_task_ner_runs_the_ner_demo(monkeypatch, tmp_path):
    monkeypatch.setenv("LABELQUEUE_DATA_DIR", str(tmp_path))
    options = options_from_args(quickstart_args("--task", "ner"))
    assert check_config(options.config).kind == "spans" and options.title == NER_DEMO.title
    assert sum(1 for row in options.rows if row.labels) >= 200
    assert options.seed_per_label == 4 and options_from_args(quickstart_args()).seed_per_label == 2
    assert options_from_args(quickstart_args("--task", "ner", "--seed-per-label", "1")).seed_per_label == 1


def test_task_ner_builds_its_config_from_the_entity_column_of_your_tasks(monkeypatch, tmp_path):
    monkeypatch.setenv("LABELQUEUE_DATA_DIR", str(tmp_path))
    (tmp_path / "notes.jsonl").write_text(json.dumps({"text": "Take aspirin", "e": [
        {"start": 5, "end": 12, "label": "DRUG"}]}) + "\n")
    options = options_from_args(quickstart_args("--task", "ner", "--tasks", str(tmp_path / "notes.jsonl"),
                                                "--label-field", "e"))
    assert check_config(options.config).labels == ("DRUG",)
    assert options.rows[0].labels == ((5, 12, "DRUG"),)


def test_a_span_config_alone_makes_a_span_project(monkeypatch, tmp_path):
    monkeypatch.setenv("LABELQUEUE_DATA_DIR", str(tmp_path))
    options = options_from_args(quickstart_args("--config", str(NER_CONFIG), "--tasks", str(NER_DEMO.tasks),
                                                "--label-field", NER_DEMO.label_field))
    assert any(row.labels for row in options.rows)
    assert all(isinstance(span, tuple) for row in options.rows for span in row.labels)


@pytest.mark.parametrize("arguments, message", [
    (["--task", "ner", "--config", str(SINGLE_LABEL_CONFIG)], "--task ner does not fit"),
    (["--task", "classification", "--config", str(NER_CONFIG)], "--task classification does not fit"),
    (["--task", "ner", "--multi-label"], "every span has one entity type"),
    (["--task", "ner", "--tasks", "{plain}"], "say entity types to mark"),
])
def test_quickstart_ner_refuses_bad_input_before_starting_anything(tmp_path, monkeypatch, capsys, arguments,
                                                                  message):
    monkeypatch.setenv("LABELQUEUE_DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "plain.csv").write_text("text\nhello\n")
    assert main(["quickstart", "--no-browser", *(a.format(plain=tmp_path / "plain.csv") for a in arguments)]) == 2
    assert message in capsys.readouterr().out
    assert not (tmp_path / "data").exists(), "nothing may be started or written for bad input"
