"""Model files: atomic switch, checksum refusal, pick-up by other workers."""
from __future__ import annotations

import json

from backend.model.classifier import fit_model
from backend.store import ModelCache, ModelStore


def tiny_model(version: str):
    return fit_model(["good", "great", "bad", "awful"], [("pos",), ("pos",), ("neg",), ("neg",)],
                     labels=("pos", "neg"), multilabel=False, version=version)


def test_saved_model_is_served_and_files_are_owner_only(tmp_path):
    store = ModelStore(tmp_path / "data")
    store.save(1, tiny_model("v1"), {"number": 1})
    assert ModelCache(store).current(1).version == "v1"
    assert (tmp_path / "data").stat().st_mode & 0o077 == 0
    assert all(p.stat().st_mode & 0o077 == 0 for p in (tmp_path / "data").rglob("*.pkl"))


def test_tampered_model_file_is_refused_and_previous_version_kept(tmp_path):
    store = ModelStore(tmp_path)
    cache = ModelCache(store)
    store.save(1, tiny_model("v1"), {})
    assert cache.current(1).version == "v1"
    manifest = store.save(1, tiny_model("v2"), {})
    (store.project_dir(1) / "models" / manifest.file).write_bytes(b"not what we wrote")
    assert cache.current(1).version == "v1"


def test_another_process_sees_a_new_version_before_its_next_prediction(tmp_path):
    writer, reader = ModelStore(tmp_path), ModelCache(ModelStore(tmp_path))
    writer.save(1, tiny_model("v1"), {})
    assert reader.current(1).version == "v1"
    writer.save(1, tiny_model("v2"), {})
    assert reader.current(1).version == "v2"


def test_old_versions_are_pruned(tmp_path):
    store = ModelStore(tmp_path, keep_versions=2)
    for i in range(5):
        store.save(1, tiny_model(f"v{i}"), {})
    assert len(list((store.project_dir(1) / "models").glob("*.pkl"))) == 2
    assert json.loads((store.project_dir(1) / "current.json").read_text())["version"] == "v4"


def test_no_partial_file_is_left_behind(tmp_path):
    store = ModelStore(tmp_path)
    store.save(1, tiny_model("v1"), {})
    assert not list(store.project_dir(1).rglob("*.tmp"))


def test_model_maps_probabilities_to_config_label_order(tmp_path):
    model = fit_model(["good", "bad"], [("pos",), ("neg",)], labels=("neutral", "neg", "pos"),
                      multilabel=False, version="v")
    proba = model.predict_proba(["good"])
    assert proba.shape == (1, 3) and proba[0, 0] == 0 and proba[0, 2] > proba[0, 1]
