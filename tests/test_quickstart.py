"""What the quickstart runs on, checked without starting any server: the shipped configs and demo
data, reading tasks files, building configs from labels, choosing seed annotations, and the
command's refusals. The quickstart itself, servers and all, is driven in tests/test_e2e_browser.py.
"""
from __future__ import annotations

import json
from collections import Counter

import pytest

from backend.cli import main
from backend.errors import UnsupportedConfigError
from backend.local.quickstart_inputs import (
    DEMO_LABEL_FIELD,
    DEMO_TASKS,
    LABEL_CONFIG_DIR,
    SINGLE_LABEL_CONFIG,
    TaskFileError,
    TaskRow,
    check_config,
    config_with_labels,
    read_task_file,
    seed_rows,
)
from backend.local.quickstart_servers import new_run_dir

IMAGE_CONFIG = """<View><Image name="image" value="$image"/>
  <RectangleLabels name="box" toName="image"><Label value="car"/></RectangleLabels></View>"""


@pytest.fixture(scope="module")
def demo() -> list[TaskRow]:
    return read_task_file(DEMO_TASKS, label_field=DEMO_LABEL_FIELD)


def test_every_shipped_config_is_supported_and_its_sample_task_fits_it():
    configs = sorted(LABEL_CONFIG_DIR.glob("*.xml"))
    assert len(configs) >= 2
    for config in configs:
        spec = check_config(config.read_text())
        samples = json.loads(config.with_suffix(".sample.json").read_text())
        assert samples and all(task["data"][spec.value_key].strip() for task in samples), config.name


def test_demo_data_is_a_few_hundred_distinct_short_messages(demo):
    texts = [row.data["text"] for row in demo]
    assert 250 <= len(texts) <= 400
    assert len(set(texts)) == len(texts)
    assert all(5 <= len(text) <= 160 for text in texts)
    assert all(DEMO_LABEL_FIELD not in row.data for row in demo), "the demo label must not reach Label Studio"


def test_demo_intents_are_the_shipped_config_choices_with_one_rare_and_some_ambiguous(demo):
    labels = check_config(SINGLE_LABEL_CONFIG.read_text()).labels
    clear = Counter(row.labels[0] for row in demo if len(row.labels) == 1)
    ambiguous = [row.labels for row in demo if len(row.labels) == 2]
    assert set(clear) == set(labels)
    assert sorted(clear.values())[0] <= 15 < sorted(clear.values())[1], f"one rare intent expected: {clear}"
    assert len(ambiguous) >= 10
    assert all(set(pair) <= set(labels) and pair[0] != pair[1] for pair in ambiguous)


def test_seeds_are_the_first_rows_of_each_label_and_never_ambiguous_ones(demo):
    spec = check_config(SINGLE_LABEL_CONFIG.read_text())
    seeds = seed_rows(demo, spec, per_label=2)
    assert Counter(demo[i].labels[0] for i in seeds) == {label: 2 for label in spec.labels}
    assert all(len(demo[i].labels) == 1 for i in seeds)
    for index in seeds:
        label = demo[index].labels
        assert sum(1 for row in demo[:index] if row.labels == label) < 2


def test_seeds_skip_labels_the_config_does_not_have():
    spec = check_config(config_with_labels(["yes", "no"]))
    rows = [TaskRow({"text": "a"}, ("maybe",)), TaskRow({"text": "b"}, ("yes",)), TaskRow({"text": "c"}, ())]
    assert seed_rows(rows, spec, per_label=5) == [1]


def test_config_from_labels_has_exactly_those_choices():
    spec = check_config(config_with_labels(["refund", "delivery", "refund", " other "]))
    assert spec.labels == ("refund", "delivery", "other")
    assert not spec.multilabel


def test_multi_label_config_from_labels_allows_several_choices():
    assert check_config(config_with_labels(["a", "b", "c"], multilabel=True)).multilabel


def test_config_from_fewer_than_two_labels_is_refused():
    with pytest.raises(UnsupportedConfigError, match="at least two distinct labels"):
        config_with_labels(["only", "only"])


def test_csv_tasks_keep_their_columns_but_not_the_label_column(tmp_path):
    path = tmp_path / "tasks.csv"
    path.write_text("id,text,intent\n7,Where is my card?,card_arrival\n8,Refund or lost card?,refund|lost\n9,Hi,\n")
    rows = read_task_file(path, label_field="intent")
    assert [row.data for row in rows] == [{"id": "7", "text": "Where is my card?"},
                                          {"id": "8", "text": "Refund or lost card?"}, {"id": "9", "text": "Hi"}]
    assert [row.labels for row in rows] == [("card_arrival",), ("refund", "lost"), ()]


def test_json_and_jsonl_tasks_may_be_flat_or_in_label_studio_shape(tmp_path):
    (tmp_path / "tasks.json").write_text(json.dumps([{"text": "one"}, {"data": {"text": "two", "n": 2}}]))
    (tmp_path / "tasks.jsonl").write_text('{"text": "one", "y": ["a", "b"]}\n\n{"data": {"text": "two"}}\n')
    assert [r.data for r in read_task_file(tmp_path / "tasks.json")] == [{"text": "one"}, {"text": "two", "n": 2}]
    rows = read_task_file(tmp_path / "tasks.jsonl", label_field="y")
    assert [(r.data, r.labels) for r in rows] == [({"text": "one"}, ("a", "b")), ({"text": "two"}, ())]


@pytest.mark.parametrize("name, content, message", [
    ("tasks.jsonl", '{"text": "fine"}\n{"body": "no text"}\n', r"line 2: needs a non-empty text in the 'text' column"),
    ("tasks.jsonl", '{"text": "fine"}\nnot json\n', r"line 2: not valid JSON"),
    ("tasks.csv", "body\nhello\n", r"row 2: needs a non-empty text"),
    ("tasks.json", '{"text": "not a list"}', r"must hold a list of objects"),
    ("tasks.json", "[]", r"no tasks in the file"),
    ("tasks.txt", "hello\n", r"unknown file type '.txt'"),
])
def test_unreadable_tasks_files_are_refused_naming_the_place(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(TaskFileError, match=message):
        read_task_file(path)


def test_check_config_accepts_the_shipped_configs_and_explains_a_refusal(tmp_path, capsys):
    image = tmp_path / "image.xml"
    image.write_text(IMAGE_CONFIG)
    shipped = sorted(LABEL_CONFIG_DIR.glob("*.xml"))
    assert main(["check-config", *map(str, shipped)]) == 0
    assert capsys.readouterr().out.count("supported: ") == len(shipped) >= 3
    assert main(["check-config", str(SINGLE_LABEL_CONFIG), str(image)]) == 1
    out = capsys.readouterr().out
    assert "image.xml: not supported" in out and "no <Choices> control bound to a <Text" in out


@pytest.mark.parametrize("arguments, message", [
    (["--tasks", "{csv}"], "say what annotators should choose from"),
    (["--config", "{config}", "--labels", "a", "b"], "either --config or --labels"),
    (["--config", "{image}"], "no <Choices> control"),
    (["--labels", "solo"], "at least two distinct labels"),
    (["--tasks", "{missing}", "--labels", "a", "b"], "no such file"),
    (["--batch-size", "0"], "--batch-size and --retrain-after at least 1"),
])
def test_quickstart_refuses_bad_input_before_starting_anything(tmp_path, monkeypatch, capsys, arguments, message):
    monkeypatch.setenv("LABELQUEUE_DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "mine.csv").write_text("text\nhello\n")
    (tmp_path / "image.xml").write_text(IMAGE_CONFIG)
    paths = {"csv": tmp_path / "mine.csv", "config": SINGLE_LABEL_CONFIG, "image": tmp_path / "image.xml",
             "missing": tmp_path / "missing.csv"}
    assert main(["quickstart", "--no-browser", *(a.format(**paths) for a in arguments)]) == 2
    assert message in capsys.readouterr().out
    assert not (tmp_path / "data").exists(), "nothing may be started or written for bad input"


def test_every_run_gets_a_fresh_owner_only_directory(tmp_path):
    first, second = new_run_dir(tmp_path), new_run_dir(tmp_path)
    assert first != second and first.parent == second.parent == tmp_path
    assert first.stat().st_mode & 0o777 == 0o700
