"""What a selection cycle records: the training set of the model it scored with, not a later one."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

from backend.labelstudio.label_config import parse_label_config
from backend.loop import cycle
from backend.loop.cycle import CycleContext, run_cycle
from backend.loop.pool_cache import CachedPool, PoolCache
from backend.loop.project_options import ProjectOptions
from backend.model.classifier import fit_model
from backend.model.scoring import LocalScorer
from backend.settings import Settings
from backend.store import ModelCache, ModelStore, atomic_write_json
from selection.mix import SliceMix

CONFIG = (Path(__file__).resolve().parents[1] / "label_config" / "text_classification.xml").read_text()
TEXTS = [f"message number {i} about {'cards' if i % 2 else 'refunds'}" for i in range(1, 21)]


class Recorder:
    def __init__(self):
        self.calls: list[tuple[int, int, tuple[int, ...]]] = []

    def record_queue(self, project_id, queue, trained):
        self.calls.append((queue.cycle, queue.labelled, tuple(sorted(trained))))


@dataclass
class Written:
    tab_id: int = 1


LABELS = [line.split('"')[1] for line in CONFIG.splitlines() if "<Choice " in line]
TRAINED_FIRST = {str(t): {"labels": [LABELS[0]], "overridden": False} for t in (1, 2, 3, 4)}


def cycle_context(store: ModelStore, tmp_path: Path, recorder: Recorder) -> CycleContext:
    """Project 1 with a model on four labels and 20 cached tasks; Label Studio is never called."""
    store.create_project(1)
    store.save(1, fit_model(TEXTS[:4], [(LABELS[0],), (LABELS[1],)] * 2, labels=tuple(LABELS), multilabel=False,
                            version="v1-a"), {"number": 1})
    atomic_write_json(store.layout.labelled(1), TRAINED_FIRST)
    tasks = [{"id": i, "data": {"text": text}, "meta": {}} for i, text in enumerate(TEXTS, start=1)]
    pool = PoolCache(store, seed=0, failure_field=None)._extend(CachedPool.empty(), tasks, parse_label_config(CONFIG))
    gateway = SimpleNamespace(spec=lambda: parse_label_config(CONFIG))
    return CycleContext(
        settings=Settings(data_dir=tmp_path), store=store, models=ModelCache(store),
        connections=SimpleNamespace(gateway=lambda project_id: gateway),
        pool_cache=SimpleNamespace(sync_new=lambda gateway, spec: pool),
        failures=SimpleNamespace(read=lambda project_id: {}),
        options=SimpleNamespace(get=lambda project_id: ProjectOptions(batch_size=5, mix=SliceMix())),
        scorer=LocalScorer(), recorder=recorder)


def test_a_retrain_finishing_during_the_queue_write_is_not_recorded_in_this_cycle(tmp_path, monkeypatch):
    """The issue's cycles table: "trained on" 12/17/22/27 but "labels added" 12/5/10/0. The
    recorder used to read the training set after the write (seconds of Label Studio calls), by
    when the next retrain had replaced it, so that retrain's labels went to this cycle."""
    store = ModelStore(tmp_path)

    def write_queue_while_a_retrain_finishes(gateway, items, cycle_number, *, previous):
        atomic_write_json(store.layout.labelled(1), {**TRAINED_FIRST, "5": {"labels": [LABELS[0]],
                                                                              "overridden": False}})
        return Written()

    monkeypatch.setattr(cycle, "write_queue", write_queue_while_a_retrain_finishes)
    recorder = Recorder()
    assert run_cycle(cycle_context(store, tmp_path, recorder), 1).done
    assert recorder.calls == [(1, 4, (1, 2, 3, 4))]


def test_the_queue_is_written_and_recorded_under_the_projects_tasks_lock(tmp_path, monkeypatch):
    """The control-overlap step takes the same lock: Label Studio saves a whole task row per
    update, so its updates and the queue writer's to one task must not interleave."""
    store = ModelStore(tmp_path)
    free = threading.Event()

    def take_the_lock():
        with store.lock(1, "tasks"):
            free.set()

    class ProbingRecorder(Recorder):
        def record_queue(self, project_id, queue, trained):
            held.append(("record", not free.wait(0.3)))
            super().record_queue(project_id, queue, trained)

    def write_queue_probing_the_lock(gateway, items, cycle_number, *, previous):
        threading.Thread(target=take_the_lock, daemon=True).start()
        held.append(("write", not free.wait(0.3)))
        return Written()

    held: list[tuple[str, bool]] = []
    monkeypatch.setattr(cycle, "write_queue", write_queue_probing_the_lock)
    assert run_cycle(cycle_context(store, tmp_path, ProbingRecorder()), 1).done
    assert held == [("write", True), ("record", True)]
    assert free.wait(5)  # released once the cycle is recorded
