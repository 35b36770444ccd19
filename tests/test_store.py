"""Model files: atomic switch, signature refusal, pick-up by other workers."""
from __future__ import annotations

import hashlib
import json
import pickle
import stat

import pytest

from backend.model.classifier import fit_model
from backend.model_key import model_key, sign
from backend.settings import Settings, SettingsError
from backend.store import ModelCache, ModelLoadError, ModelStore

KEY = b"k" * 32


def tiny_model(version: str):
    return fit_model(["good", "great", "bad", "awful"], [("pos",), ("pos",), ("neg",), ("neg",)],
                     labels=("pos", "neg"), multilabel=False, version=version)


def test_saved_model_is_served_and_files_are_owner_only(tmp_path):
    store = ModelStore(tmp_path / "data", key=KEY)
    store.save(1, tiny_model("v1"), {"number": 1})
    assert ModelCache(store).current(1).version == "v1"
    assert (tmp_path / "data").stat().st_mode & 0o077 == 0
    assert all(p.stat().st_mode & 0o077 == 0 for p in (tmp_path / "data").rglob("*.pkl"))


def test_tampered_model_file_is_refused_and_previous_version_kept(tmp_path):
    store = ModelStore(tmp_path, key=KEY)
    cache = ModelCache(store)
    store.save(1, tiny_model("v1"), {})
    assert cache.current(1).version == "v1"
    manifest = store.save(1, tiny_model("v2"), {})
    (store.layout.models(1) / manifest.file).write_bytes(b"not what we wrote")
    assert cache.current(1).version == "v1"


def test_another_process_sees_a_new_version_before_its_next_prediction(tmp_path):
    writer, reader = ModelStore(tmp_path, key=KEY), ModelCache(ModelStore(tmp_path, key=KEY))
    writer.save(1, tiny_model("v1"), {})
    assert reader.current(1).version == "v1"
    writer.save(1, tiny_model("v2"), {})
    assert reader.current(1).version == "v2"


def test_old_versions_are_pruned(tmp_path):
    store = ModelStore(tmp_path, keep_versions=2, key=KEY)
    for i in range(5):
        store.save(1, tiny_model(f"v{i}"), {})
    assert len(list((store.layout.models(1)).glob("*.pkl"))) == 2
    assert json.loads((store.layout.manifest(1)).read_text())["version"] == "v4"


def test_no_partial_file_is_left_behind(tmp_path):
    store = ModelStore(tmp_path, key=KEY)
    store.save(1, tiny_model("v1"), {})
    assert not list(store.layout.project(1).rglob("*.tmp"))


def test_model_maps_probabilities_to_config_label_order(tmp_path):
    model = fit_model(["good", "bad"], [("pos",), ("neg",)], labels=("neutral", "neg", "pos"),
                      multilabel=False, version="v")
    proba = model.predict_proba(["good"])
    assert proba.shape == (1, 3) and proba[0, 0] == 0 and proba[0, 2] > proba[0, 1]


class _WritesMarker:
    """A pickle whose loading would create ``path``: the planted model of issue D9."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def plant(store: ModelStore, project_id: int, version: str, payload: bytes, signature: str) -> None:
    """Write a model file and a manifest naming it, as someone with write access to the data dir could."""
    store.layout.models(project_id).mkdir(parents=True, exist_ok=True)
    (store.layout.models(project_id) / f"{version}.pkl").write_bytes(payload)
    store.layout.manifest(project_id).write_text(json.dumps({
        "version": version, "file": f"{version}.pkl", "hmac": signature,
        "sha256": hashlib.sha256(payload).hexdigest(), "info": {}}))


def test_a_planted_pickle_with_a_matching_checksum_is_never_unpickled(tmp_path):
    store = ModelStore(tmp_path / "data", key=KEY)
    cache = ModelCache(store)
    store.save(1, tiny_model("v1"), {})
    assert cache.current(1).version == "v1"
    marker = tmp_path / "code-ran"
    payload = pickle.dumps(_WritesMarker(marker))
    plant(store, 1, "v2", payload, sign(b"not the deployment's key" * 2, payload))
    assert cache.current(1).version == "v1"
    assert not marker.exists()


def test_a_signed_but_broken_model_keeps_the_previous_version_and_is_not_read_again(tmp_path, monkeypatch):
    store = ModelStore(tmp_path, key=KEY)
    cache = ModelCache(store)
    store.save(1, tiny_model("v1"), {})
    assert cache.current(1).version == "v1"
    truncated = pickle.dumps(tiny_model("v2"))[:100]  # EOFError when unpickled
    plant(store, 1, "v2", truncated, sign(KEY, truncated))
    reads = []
    load = store.load
    monkeypatch.setattr(store, "load", lambda *args: reads.append(args) or load(*args))
    assert [cache.current(1).version for _ in range(3)] == ["v1"] * 3
    assert len(reads) == 1


def test_a_signed_object_that_is_not_a_model_is_refused(tmp_path):
    store = ModelStore(tmp_path, key=KEY)
    payload = pickle.dumps({"version": "v1"})
    plant(store, 1, "v1", payload, sign(KEY, payload))
    with pytest.raises(ModelLoadError, match="not a TrainedModel"):
        store.load(1, store.manifest(1))
    assert ModelCache(store).current(1) is None


def test_the_model_key_file_is_created_owner_only_outside_the_data_dir(tmp_path):
    key_file = tmp_path / "config" / "labelqueue" / "model.key"
    settings = Settings(data_dir=tmp_path / "data", model_key_file=key_file)
    key = model_key(settings)
    assert len(key) >= 32 and model_key(settings) == key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    with pytest.raises(SettingsError, match="inside LABELQUEUE_DATA_DIR"):
        model_key(Settings(data_dir=tmp_path / "data", model_key_file=tmp_path / "data" / "model.key"))
