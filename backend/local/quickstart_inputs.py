"""What a quickstart runs on: a labelling config and a tasks file, both checked before any
server starts.

The configs are the ones shipped in ``label_config/`` (or the user's own), validated with the
same parser the backend uses at ``/setup``, so a config the quickstart accepts is one the
backend can learn. Tasks come from CSV, JSON or JSONL; an optional label column seeds a few
annotations so the first model can train before anyone has labelled anything. For a span config
(entity extraction) that column holds each text's entities as ``{"start", "end", "label"}``
objects in character offsets.
"""
from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from backend.errors import UnsupportedConfigError
from backend.labelstudio.label_config import parse_label_config
from backend.model.labelconfig import TaskSpec, kind_of
from backend.model.span_tokens import Span

__all__ = [
    "DEMOS",
    "DEMO_LABEL_FIELD",
    "DEMO_TASKS",
    "Demo",
    "LABEL_CONFIG_DIR",
    "MULTI_LABEL_CONFIG",
    "NER_CONFIG",
    "QuickstartError",
    "SINGLE_LABEL_CONFIG",
    "TaskFileError",
    "TaskRow",
    "check_config",
    "config_with_labels",
    "describe",
    "read_task_file",
    "seed_rows",
]

#: The repository's ``label_config/``, installed as the package ``backend.label_config`` (a
#: plain ``pip install .`` carries it too, so the quickstart needs no checkout).
LABEL_CONFIG_DIR = Path(str(resources.files("backend.label_config")))
SINGLE_LABEL_CONFIG = LABEL_CONFIG_DIR / "text_classification.xml"
MULTI_LABEL_CONFIG = LABEL_CONFIG_DIR / "multi_label_text_classification.xml"
NER_CONFIG = LABEL_CONFIG_DIR / "ner.xml"
DEMO_TASKS = LABEL_CONFIG_DIR / "demo_tasks.jsonl"
#: Column of ``demo_tasks.jsonl`` holding the intent a message was written for (a list of two
#: for the deliberately ambiguous ones); used only to seed annotations, never imported.
DEMO_LABEL_FIELD = "demo_intent"
#: Separates several labels in one CSV cell (JSON and JSONL use a list).
CSV_LABEL_SEPARATOR = "|"


@dataclass(frozen=True)
class Demo:
    """A demo project: config, tasks, and the column with the labels the tasks were written with."""

    config: Path
    tasks: Path
    label_field: str
    title: str
    #: The ``--seed-per-label`` default of this ``--task``: a sentence holds several entity types,
    #: so 2 per type would be 4 sentences, too few for a tagger's first guesses to be worth seeing.
    seed_per_label: int


#: The demo of each ``--task``: support messages to sort into intents, and order and support notes
#: of a (made-up) hardware distributor to mark people, companies, places, products and dates in.
DEMOS = {
    "classification": Demo(SINGLE_LABEL_CONFIG, DEMO_TASKS, DEMO_LABEL_FIELD, "labelqueue demo", 2),
    "ner": Demo(NER_CONFIG, LABEL_CONFIG_DIR / "demo_ner_tasks.jsonl", "demo_entities", "labelqueue NER demo", 4),
}


class QuickstartError(RuntimeError):
    """The quickstart cannot go on; the message says what to do."""


class TaskFileError(ValueError):
    """A tasks file we cannot read; the message names the file and the line or row."""


@dataclass(frozen=True)
class TaskRow:
    """One task to import: its ``data`` for Label Studio and the label its file gave it.

    ``labels`` is the label as the task kind reads one: label names for classification, the
    text's ``(start, end, type)`` spans for span labelling. It is empty when the file has no label
    column or the cell is empty; the label column itself is never part of ``data``, so
    annotators cannot see it.
    """

    data: dict[str, Any]
    labels: tuple[str, ...] | tuple[Span, ...] = ()


def check_config(xml: str) -> TaskSpec:
    """The learning problem ``xml`` describes, or ``UnsupportedConfigError`` saying what is not
    supported. Thin on purpose: the backend's own parser is the single source of truth."""
    return parse_label_config(xml)


def describe(spec: TaskSpec) -> str:
    """One line an admin can check against what they meant to build."""
    if spec.kind == "spans":
        return (f"span labelling (entity extraction) of data.{spec.value_key} with {len(spec.labels)} entity types "
                f"({', '.join(spec.labels)}); <Labels name=\"{spec.from_name}\"> on <Text name=\"{spec.to_name}\">")
    kind = "multi-label" if spec.multilabel else "single-label"
    return (f"{kind} text classification of data.{spec.value_key} into {len(spec.labels)} labels "
            f"({', '.join(spec.labels)}); <Choices name=\"{spec.from_name}\"> on <Text name=\"{spec.to_name}\">")


def config_with_labels(labels: Sequence[str], *, multilabel: bool = False, spans: bool = False) -> str:
    """The shipped single-label, multi-label or span config with ``labels`` as its choices (entity
    types for ``spans``).

    Only the ``<Choice>`` (``<Label>``) children change (the template's leading comment is
    dropped). Raises ``UnsupportedConfigError`` for fewer than two distinct labels (one entity type).
    """
    distinct = list(dict.fromkeys(label.strip() for label in labels if label.strip()))
    if len(distinct) < (1 if spans else 2):
        needed = "an entity type to mark" if spans else "two distinct labels"
        raise UnsupportedConfigError(f"need at least {needed} to learn anything; got {distinct}", field="labels")
    template = NER_CONFIG if spans else MULTI_LABEL_CONFIG if multilabel else SINGLE_LABEL_CONFIG
    control_tag, option_tag = ("Labels", "Label") if spans else ("Choices", "Choice")
    root = ET.fromstring(template.read_text())
    control = root.find(control_tag)
    if control is None:  # the shipped templates always have one; guard against edits to them
        raise UnsupportedConfigError(f"{template} has no <{control_tag}> element to fill", field="label_config")
    for old in list(control):
        control.remove(old)
    for value in distinct:
        ET.SubElement(control, option_tag, {"value": value})
    return ET.tostring(root, encoding="unicode")


def read_task_file(path: Path, *, text_field: str = "text", label_field: str | None = None,
                   spans: bool = False) -> list[TaskRow]:
    """Tasks from ``path``: ``.csv`` (header row), ``.json`` (a list) or ``.jsonl`` (one object
    per line). JSON objects may be flat or Label Studio's ``{"data": {...}}`` shape.

    Every row needs a non-empty string in ``text_field``. ``label_field``, if given, is split
    off into ``TaskRow.labels``: a string, a list of strings, or ``a|b`` in CSV; with ``spans``,
    a list of ``{"start": int, "end": int, "label": str}`` (``"labels": [str]`` as Label Studio
    writes it also does), JSON text in a CSV cell.
    """
    if not path.is_file():
        raise TaskFileError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        records = _csv_records(path)
    elif suffix == ".jsonl":
        records = _jsonl_records(path)
    elif suffix == ".json":
        records = _json_records(path)
    else:
        raise TaskFileError(f"{path}: unknown file type {suffix or '(none)'!r}; use .csv, .json or .jsonl")
    rows = [_row(path, where, record, text_field, label_field, spans) for where, record in records]
    if not rows:
        raise TaskFileError(f"{path}: no tasks in the file")
    return rows


def seed_rows(rows: Sequence[TaskRow], spec: TaskSpec, per_label: int) -> list[int]:
    """Indexes of the rows to import already annotated: the first ``per_label`` rows of each
    label (entity type, for spans), in file order, whose labels the config knows (one label for a
    single-label config).

    File order makes the seed set reproducible; rows with a label the config lacks, or with
    several labels under a single-label config (ambiguous on purpose), are never seeded.
    """
    taken: dict[str, int] = {label: 0 for label in spec.labels}
    chosen = []
    for index, row in enumerate(rows):
        names = set(kind_of(spec).label_names(row.labels))
        if not names or not names <= taken.keys():
            continue
        if spec.kind == "classification" and not spec.multilabel and len(row.labels) != 1:
            continue
        if all(taken[name] >= per_label for name in names):
            continue
        for name in names:
            taken[name] += 1
        chosen.append(index)
    return chosen


def _csv_records(path: Path) -> Iterable[tuple[str, dict[str, Any]]]:
    with open(path, newline="", encoding="utf-8-sig") as handle:
        for number, record in enumerate(csv.DictReader(handle), start=2):
            yield f"row {number}", dict(record)


def _jsonl_records(path: Path) -> Iterable[tuple[str, dict[str, Any]]]:
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield f"line {number}", _object(path, f"line {number}", _loads(path, f"line {number}", line))


def _json_records(path: Path) -> Iterable[tuple[str, dict[str, Any]]]:
    records = _loads(path, "the file", path.read_text(encoding="utf-8"))
    if not isinstance(records, list):
        raise TaskFileError(f"{path}: a .json tasks file must hold a list of objects")
    for number, record in enumerate(records, start=1):
        yield f"item {number}", _object(path, f"item {number}", record)


def _loads(path: Path, where: str, text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise TaskFileError(f"{path}, {where}: not valid JSON ({exc})") from None


def _object(path: Path, where: str, record: Any) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise TaskFileError(f"{path}, {where}: expected a JSON object, got {type(record).__name__}")
    return dict(record["data"]) if isinstance(record.get("data"), dict) else record


def _row(path: Path, where: str, record: dict[str, Any], text_field: str, label_field: str | None,
         spans: bool) -> TaskRow:
    text = record.get(text_field)
    if not isinstance(text, str) or not text.strip():
        raise TaskFileError(f"{path}, {where}: needs a non-empty text in the {text_field!r} column "
                            f"(found columns: {', '.join(record) or 'none'})")
    data = {key: value for key, value in record.items() if key != label_field}
    if not label_field:
        return TaskRow(data=data)
    if spans:
        return TaskRow(data=data, labels=_spans(f"{path}, {where}, {label_field!r}", record.get(label_field), text))
    return TaskRow(data=data, labels=_labels(record.get(label_field)))


def _labels(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(CSV_LABEL_SEPARATOR) if part.strip())
    if isinstance(value, list):
        return tuple(str(part).strip() for part in value if str(part).strip())
    return ()


def _spans(where: str, value: Any, text: str) -> tuple[Span, ...]:
    """A text's entities from its label cell, checked against the text, sorted by offset."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):  # a CSV cell holds them as JSON text
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise TaskFileError(f"{where}: entities must be a JSON list ({exc})") from None
    if not isinstance(value, list):
        raise TaskFileError(f"{where}: entities must be a list of {{\"start\", \"end\", \"label\"}} objects")
    return tuple(sorted(_span(f"{where}, entity {number}", item, text) for number, item in enumerate(value, 1)))


def _span(where: str, item: Any, text: str) -> Span:
    if not isinstance(item, dict):
        raise TaskFileError(f"{where}: expected an object with start, end and label, got {type(item).__name__}")
    start, end = item.get("start"), item.get("end")
    names = item.get("labels")
    label = item.get("label", names[0] if isinstance(names, list) and len(names) == 1 else None)
    if not all(isinstance(x, int) and not isinstance(x, bool) for x in (start, end)) or not 0 <= start < end <= len(text):
        raise TaskFileError(f"{where}: start and end must be character offsets with 0 <= start < end <= "
                            f"{len(text)} (the text's length); got start={start!r}, end={end!r}")
    if not isinstance(label, str) or not label.strip():
        raise TaskFileError(f"{where}: needs its entity type as \"label\": \"TYPE\" (or \"labels\": [\"TYPE\"])")
    return start, end, label.strip()
