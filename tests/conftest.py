"""Fixtures: a real Label Studio server and a real ``labelqueue serve``, both on 127.0.0.1.

Label Studio takes 20-40 s to start (migrations on a fresh data dir), so it is started once per
test session; each end-to-end test creates its own project. Both servers log to files in the
session's temp dir, and their tails are reported when a fixture fails to start.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Iterator

import pytest

from hypothesis import settings as hypothesis_settings

from backend.local_label_studio import LocalServer, StartupError, start_backend, start_label_studio

# CI replays the same generated examples every run (a landing must not depend on luck);
# developers' runs keep exploring new ones.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("LABELQUEUE_DATASETS", REPO.parent / "shared" / "datasets"))


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    try:
        server = start_label_studio(tmp_path_factory.mktemp("label-studio"))
    except StartupError as exc:
        pytest.fail(str(exc))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def backend(label_studio: LocalServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """``labelqueue serve`` with two gunicorn workers, retraining after every label."""
    env = {"LABELQUEUE_MIN_NEW_ANNOTATIONS": "1", "LABELQUEUE_FAILURE_FIELD": "data.source=production_error"}
    try:
        server = start_backend(tmp_path_factory.mktemp("labelqueue"), label_studio=label_studio,
                               workers=2, env=env)
    except StartupError as exc:
        pytest.fail(str(exc))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def ls_client(label_studio: LocalServer):
    from label_studio_sdk import LabelStudio

    return LabelStudio(base_url=label_studio.url, api_key=label_studio.token, timeout=300)


def read_banking77(split: str) -> list[dict[str, str]]:
    path = DATASETS / "banking77" / f"{split}.csv"
    if not path.exists():
        pytest.fail(f"{path} is missing: the end-to-end tests read banking77 from ../shared/datasets")
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="session")
def banking77() -> dict[str, list[dict[str, str]]]:
    return {"train": read_banking77("train"), "test": read_banking77("test")}
