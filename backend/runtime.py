"""The long-lived objects one backend process needs, built once by ``create_app``.

Kept in ``app.extensions`` instead of module globals so tests can run several apps with
different data dirs side by side.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from backend.labelstudio import Connections
from backend.scheduler import AfterRetrain, RetrainScheduler
from backend.settings import Settings
from backend.store import ModelCache, ModelStore
from backend.training import TrainOutcome, read_labelled, retrain


@dataclass
class Runtime:
    settings: Settings
    store: ModelStore
    models: ModelCache
    connections: Connections
    scheduler: RetrainScheduler = field(init=False)

    @classmethod
    def build(cls, settings: Settings, after: list[AfterRetrain] | None = None) -> "Runtime":
        store = ModelStore(settings.data_dir, keep_versions=settings.keep_model_versions)
        rt = cls(settings=settings, store=store, models=ModelCache(store),
                 connections=Connections(settings, store))
        rt.scheduler = RetrainScheduler(rt.retrain_locked, threads=settings.train_threads, after=after)
        return rt

    def retrain_locked(self, project_id: int, force: bool) -> TrainOutcome:
        """Retrain under the project's file lock, so other worker processes wait their turn."""
        with self.store.training_lock(project_id):
            return retrain(project_id, settings=self.settings, store=self.store,
                           connections=self.connections, force=force)

    def metrics(self) -> dict[str, Any]:
        projects: dict[str, Any] = {}
        training = self.scheduler.snapshot()
        for project_id in self.known_projects() | set(training):
            manifest = self.store.manifest(project_id)
            labelled = read_labelled(self.store, project_id)
            per_class: dict[str, int] = {}
            for item in labelled.values():
                for label in item["labels"]:
                    per_class[label] = per_class.get(label, 0) + 1
            projects[str(project_id)] = {
                "model_version": manifest.version if manifest else None,
                "model": manifest.info if manifest else None,
                "labels": {"total": len(labelled), "per_class": per_class,
                           "overridden": sum(1 for i in labelled.values() if i.get("overridden"))},
                "training": training.get(project_id, {"state": "idle (this worker)"}),
            }
        return {"projects": projects, "settings": self.settings.public()}

    def known_projects(self) -> set[int]:
        root = self.store.data_dir / "projects"
        return {int(p.name) for p in root.iterdir() if p.name.isdigit()} if root.exists() else set()
