"""The README's promises that CI depends on."""
from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    blocks = re.findall(r"```(?:bash|sh)\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)
    return [block.strip() for block in blocks[:2]]


def test_ci_runs_the_readme_test_command_verbatim():
    ci_lines = (REPO / ".ci" / "run").read_text().splitlines()
    assert readme_commands()[1] in ci_lines


def test_readme_starts_with_a_run_command_and_a_test_command():
    run, test = readme_commands()
    assert "labelqueue quickstart" in run and "pytest" in test


def test_the_library_api_example_runs_and_returns_a_batch(capsys):
    text = (REPO / "README.md").read_text()
    code = re.search(r"### Library API.*?```python\n(.*?)```", text, flags=re.S).group(1)
    exec(compile(code, "README.md", "exec"), {})
    assert "uncertain" in capsys.readouterr().out
