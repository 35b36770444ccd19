"""One retrain of one project: read labels from Label Studio, fit, write a new model version.

Called only from the background scheduler (``backend/jobs/scheduler.py``), never in a request, and
always under the project's training lock so two worker processes never train the same project
at once. The training set is also written to ``labelled.json`` so a later retrain can tell how
many labels changed and selection can find the labelled set without asking Label Studio again.
"""
from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from typing import Any

from backend.labelstudio.gateway import Connections, LabelledTask
from backend.layout import StateFileError, read_state
from backend.model.labelconfig import kind_of
from backend.outcome import JobOutcome
from backend.settings import Settings
from backend.store import Manifest, ModelLoadError, ModelStore, atomic_write_json

logger = logging.getLogger(__name__)



def read_labelled(store: ModelStore, project_id: int) -> dict[int, dict[str, Any]]:
    """The training set of the model in service: task id -> {"labels", "overridden"}; empty
    before the first model. A malformed file raises :class:`StateFileError` naming it."""
    path = store.layout.labelled(project_id)
    raw = read_state(path) or {}
    try:
        labelled = {int(k): v for k, v in raw.items()}
    except ValueError:
        raise StateFileError(path, "keys are not task ids") from None
    if not all(isinstance(v, dict) and isinstance(v.get("labels"), list) for v in labelled.values()):
        raise StateFileError(path, "entries without a 'labels' list")
    return labelled


def previous_training_set(store: ModelStore, project_id: int) -> dict[int, dict[str, Any]]:
    """What the last retrain used, to count changes; an unreadable file counts every label as
    changed (the retrain rewrites it), so a damaged file heals instead of blocking training."""
    try:
        return read_labelled(store, project_id)
    except StateFileError as exc:
        logger.warning("project %s: %s; counting every label as changed", project_id, exc)
        return {}


def as_json(labels: tuple) -> list:
    """A label as ``labelled.json`` stores it: tuples become lists (spans are tuples of tuples),
    so a label read back from the file compares equal to the same label read from Label Studio."""
    return [as_json(x) if isinstance(x, tuple) else x for x in labels]


def count_changes(previous: dict[int, dict[str, Any]], current: list[LabelledTask]) -> int:
    """Tasks labelled, relabelled or unlabelled since the model in service was trained."""
    now = {t.task_id: as_json(t.labels) for t in current}
    changed = sum(1 for tid, labels in now.items() if previous.get(tid, {}).get("labels") != labels)
    return changed + sum(1 for tid in previous if tid not in now)


def model_in_service(store: ModelStore, project_id: int, manifest: Manifest | None) -> Any:
    """The model the manifest names, as a warm start for the next fit; None when there is none or
    it is refused (the retrain then starts from zero and replaces it)."""
    if manifest is None:
        return None
    try:
        return store.load(project_id, manifest)
    except ModelLoadError as exc:
        logger.warning("project %s: retraining from zero: %s", project_id, exc)
        return None


def retrain(project_id: int, *, settings: Settings, store: ModelStore, connections: Connections,
            force: bool = False, trailing: bool = False) -> JobOutcome:
    """Retrain if enough labels changed (or ``force``); caller holds the project's training lock.

    ``trailing``: the quiet period after the last annotation is over, so any changed label is
    enough (the last labels of a batch must not wait for labels that may never come).

    ``done`` when a new model version was saved; the figures: ``n_examples``, ``changed`` (labels
    since the model in service), ``waiting`` (changed labels held back by the threshold: the
    caller checks again once it is quiet), and for a new model ``seconds`` and ``classes``.
    """
    started = time.monotonic()
    gateway = connections.gateway(project_id)
    spec = gateway.spec()
    labelled = gateway.labelled(spec)
    changed = count_changes(previous_training_set(store, project_id), labelled)
    kind = kind_of(spec)
    classes = sorted({name for t in labelled for name in kind.label_names(t.labels)})

    if not force and changed < (1 if trailing else settings.min_new_annotations):
        why = (f"{changed} changed label(s) < LABELQUEUE_MIN_NEW_ANNOTATIONS={settings.min_new_annotations}"
               if changed else "no label changed since the model in service")
        return JobOutcome(project_id, False, why,
                          figures={"n_examples": len(labelled), "changed": changed, "waiting": changed})
    if len(classes) < kind.min_label_names:
        return JobOutcome(project_id, False, f"cold start: {len(classes)} distinct label(s) seen, "
                          f"need {kind.min_label_names}",
                          figures={"n_examples": len(labelled), "changed": changed})

    try:
        manifest = store.manifest(project_id)
    except StateFileError as exc:  # the new version replaces it; numbering restarts
        logger.warning("project %s: %s; it is replaced by this retrain", project_id, exc)
        manifest = None
    number = int(manifest.info.get("number", 0)) + 1 if manifest else 1
    version = f"v{number}-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}"
    model = kind.fit([t.text for t in labelled], [t.labels for t in labelled], spec, version=version,
                     estimator=getattr(settings, kind.estimator_setting),
                     previous=model_in_service(store, project_id, manifest),
                     measure=getattr(settings, kind.measure_setting) if kind.measure_setting else None)
    seconds = time.monotonic() - started
    info = {"number": number, "n_examples": len(labelled), "classes": classes,
            "trained_at": datetime.now(timezone.utc).isoformat(), "train_seconds": round(seconds, 3),
            "changed": changed}
    store.save(project_id, model, info)
    atomic_write_json(store.layout.labelled(project_id), {
        str(t.task_id): {"labels": as_json(t.labels), "overridden": t.overridden} for t in labelled})
    logger.info("project %s: trained %s on %d labels (%d changed), %d classes, in %.2fs",
                project_id, version, len(labelled), changed, len(classes), seconds)
    why = "forced" if force else ("trailing labels after a quiet period" if changed < settings.min_new_annotations
                                  else "enough new labels")
    return JobOutcome(project_id, True, why, version=version,
                      figures={"n_examples": len(labelled), "changed": changed, "seconds": seconds,
                               "classes": list(classes)})
