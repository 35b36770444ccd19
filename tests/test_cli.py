"""The ``labelqueue`` command line (commands that need no Label Studio)."""
from __future__ import annotations

import argparse

import pytest

from backend.cli import HelpFormatter, build_parser, main
from backend.loop.failures import FailureLog
from backend.store import ModelStore


def test_failures_add_flags_tasks_in_the_data_dir(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LABELQUEUE_DATA_DIR", str(tmp_path))
    assert main(["failures", "add", "--project", "4", "--task-ids", "10", "11"]) == 0
    assert sorted(FailureLog(ModelStore(tmp_path)).read(4)) == [10, 11]
    assert "2 task(s) newly flagged" in capsys.readouterr().out


def test_invalid_setting_exits_with_a_message_not_a_traceback(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LABELQUEUE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LABELQUEUE_UNCERTAINTY_MEASURE", "vibes")
    with pytest.raises(SystemExit) as exit_info:
        main(["failures", "add", "--project", "4", "--task-ids", "1"])
    assert exit_info.value.code == 2
    assert "LABELQUEUE_UNCERTAINTY_MEASURE" in capsys.readouterr().err


def command_parsers(parser: argparse.ArgumentParser, name: str = "labelqueue"):
    """``labelqueue`` and every (sub)command's parser, with its command line."""
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command, sub in action.choices.items():
                yield from command_parsers(sub, f"{name} {command}")


def test_help_of_every_command_is_plain_text(capsys):
    for name, parser in command_parsers(build_parser()):
        text = parser.format_help()
        assert "`" not in text and ":class:" not in text, name
        assert parser.description, f"{name} --help has no description"


def test_every_option_has_help_and_shows_its_default():
    for name, parser in command_parsers(build_parser()):
        formatter = HelpFormatter(name)
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            assert action.help, f"{name} {action.dest} has no help"
            if not action.required and action.option_strings:
                shown = formatter._get_help_string(action) % {"default": action.default}
                assert "default" in shown and "[" not in shown, f"{name} {action.dest}: {shown}"


TWO_CHOICES = """<View>
  <Text name="text" value="$text"/>
  <Choices name="intent" toName="text"><Choice value="a"/><Choice value="b"/></Choices>
  <Choices name="tone" toName="text"><Choice value="calm"/><Choice value="angry"/></Choices>
</View>"""
PER_REGION = """<View>
  <Text name="text" value="$text"/>
  <Choices name="intent" toName="text" perRegion="true"><Choice value="a"/><Choice value="b"/></Choices>
</View>"""


@pytest.mark.parametrize("config, why", [
    (TWO_CHOICES, "2 <Choices> controls bound to text"),
    (PER_REGION, "perRegion"),
])
def test_check_config_refuses_what_the_backend_does_not_support_and_says_why(tmp_path, capsys, config, why):
    path = tmp_path / "config.xml"
    path.write_text(config)
    assert main(["check-config", str(path)]) == 1
    out = capsys.readouterr().out
    assert "config.xml: not supported" in out and why in out


def test_setup_refuses_a_config_check_config_refuses():
    from backend.errors import UnsupportedConfigError
    from backend.labelstudio.label_config import parse_label_config

    with pytest.raises(UnsupportedConfigError, match="learns exactly one"):
        parse_label_config(TWO_CHOICES)


@pytest.mark.parametrize("arguments, message", [
    (["select", "--project", "0"], "argument --project: project id must be an integer from 1 to 2147483647"),
    (["report", "--project", "99999999999"], "argument --project: project id must be an integer"),
    (["failures", "add", "--project", "1", "--task-ids", "3", "-4"], "argument --task-ids: a task id is an integer"),
    (["select", "--project", "1", "--size", "0"], "argument --size: must be a whole number of at least 1"),
    (["serve", "--workers", "none"], "argument --workers: must be a whole number of at least 1"),
])
def test_ids_and_counts_out_of_range_are_refused_before_anything_runs(tmp_path, monkeypatch, capsys, arguments,
                                                                       message):
    monkeypatch.setenv("LABELQUEUE_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(SystemExit) as exit_:
        main(arguments)
    assert exit_.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "data").exists()
