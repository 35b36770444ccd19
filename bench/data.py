"""banking77 as the benchmarks use it: texts, integer labels, and a Label Studio config.

The data set lives outside the repository (``../shared/datasets`` next to the repo) and is read
in place, never copied. Labels are integers indexing ``categories.json`` so arrays stay small and
every strategy, annotator and metric agrees on one label order.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backend.local.quickstart_inputs import config_with_labels

#: Where the shared data sets live when the repo sits next to ``shared/``.
DEFAULT_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
REPO_ROOT = Path(__file__).resolve().parents[1]


class DatasetMissingError(FileNotFoundError):
    """The banking77 files are not where ``--datasets`` points."""


@dataclass(frozen=True)
class Split:
    """One split: ``texts[i]`` has label ``labels[i]`` (index into ``Banking77.categories``)."""

    texts: list[str]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, rows: np.ndarray) -> Split:
        """The rows ``rows`` of this split, in that order."""
        return Split([self.texts[int(i)] for i in rows], self.labels[rows])


@dataclass(frozen=True)
class Banking77:
    """Train (the unlabelled pool in simulation) and test (held out), with the 77 intents."""

    train: Split
    test: Split
    categories: tuple[str, ...]


def _read_split(path: Path, index: dict[str, int], column: str = "category") -> Split:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return Split([row["text"] for row in rows],
                 np.array([index[row[column]] for row in rows], dtype=np.int64))


#: Data sets the benchmarks know: folder name -> label column of its CSV files.
LABEL_COLUMNS = {"banking77": "category", "hwu64_scenarios": "label"}


def load_dataset(name: str, datasets: Path = DEFAULT_DATASETS) -> Banking77:
    """Read ``<datasets>/<name>/{train,test}.csv`` and ``categories.json``.

    ``name`` is a key of :data:`LABEL_COLUMNS` (the data sets share one layout and differ in
    the label column's name).

    Raises
    ------
    DatasetMissingError
        If the folder or one of its files is missing; the message names the path and the flag.
    """
    if name not in LABEL_COLUMNS:
        raise ValueError(f"unknown data set {name!r}; choose one of {sorted(LABEL_COLUMNS)}")
    folder = Path(datasets) / name
    for file in ("train.csv", "test.csv", "categories.json"):
        if not (folder / file).is_file():
            raise DatasetMissingError(
                f"{folder / file} not found; point --datasets at the folder holding {name}/")
    categories = tuple(json.loads((folder / "categories.json").read_text(encoding="utf-8")))
    index = {label: i for i, label in enumerate(categories)}
    column = LABEL_COLUMNS[name]
    return Banking77(_read_split(folder / "train.csv", index, column),
                     _read_split(folder / "test.csv", index, column), categories)


def load_banking77(datasets: Path = DEFAULT_DATASETS) -> Banking77:
    """Read ``<datasets>/banking77/{train,test}.csv`` and ``categories.json``.

    Raises
    ------
    DatasetMissingError
        If the folder or one of its files is missing; the message names the path and the flag.
    """
    folder = Path(datasets) / "banking77"
    for name in ("train.csv", "test.csv", "categories.json"):
        if not (folder / name).is_file():
            raise DatasetMissingError(
                f"{folder / name} not found; point --datasets at the folder holding banking77/")
    categories = tuple(json.loads((folder / "categories.json").read_text(encoding="utf-8")))
    index = {name: i for i, name in enumerate(categories)}
    return Banking77(_read_split(folder / "train.csv", index),
                     _read_split(folder / "test.csv", index), categories)


def label_config_xml(labels: tuple[str, ...]) -> str:
    """The repo's single-label text config with ``labels`` as its choices: built from the shipped
    template by the product's own function, so the benchmark exercises the documented config."""
    return config_with_labels(labels)
