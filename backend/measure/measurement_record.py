"""The record of one loop measurement: made by ``measure_loop`` (``backend/measure/measurement.py``),
rendered by the report (``backend/measure/report.py``), kept by the cycles database
(``backend/measure/cycles_db.py``, the ``measurements`` table) and served by the API
(``GET /projects/<id>/measurement``, the ``loop`` entry of ``/metrics``).

``to_json`` is the shape in SQLite and on the wire; ``from_json`` reads it back. The sections
below the top level (one row per cycle, agreement, coverage, ...) stay JSON-ready dicts: they
are figures to show, and their keys are documented where they are computed.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class Measurement:
    """One project's loop, measured.

    Attributes
    ----------
    project_id : the Label Studio project.
    measured_at : ISO time of the measurement.
    labels : the project's classes, in config order.
    cost_unit : what ``cost`` figures count ("annotator minutes", or money).
    thresholds : the warning limits in force (``selection.loop_warnings.LoopThresholds``).
    cycles : per cycle, oldest first: labels added, cost, control quality, gain, agreement.
    totals : cycles, labels, annotations and cost over all cycles.
    agreement : ``overall`` and ``per_slice`` agreement among annotators.
    coverage : labels and recall on control per class, and the rare-class threshold.
    failure_modes : failure-mode classes on control, and flagged production failures.
    production : per model version, error on control and on production feedback.
    warnings : the loop warnings (``code``, ``message``, ``suggestion``, ``cycles``).
    mix_changes : automatic lowerings of the uncertain share.
    """

    project_id: int
    measured_at: str
    labels: tuple[str, ...]
    cost_unit: str
    thresholds: dict[str, Any]
    cycles: tuple[dict[str, Any], ...]
    totals: dict[str, Any]
    agreement: dict[str, Any]
    coverage: dict[str, Any]
    failure_modes: dict[str, Any]
    production: tuple[dict[str, Any], ...]
    warnings: tuple[dict[str, Any], ...]
    mix_changes: tuple[dict[str, Any], ...] = ()

    @property
    def is_spans(self) -> bool:
        """A span project: its agreement figures carry span F1, its control figures entity F1."""
        return "span_f1" in self.agreement["overall"] or any("entity_f1" in row["control"]
                                                             for row in self.measured_cycles)

    @property
    def quality_name(self) -> str:
        """What control's ``accuracy`` measures: for spans, every span of a sentence right."""
        return "sentence exact match" if self.is_spans else "accuracy"

    @property
    def f1_figure(self) -> tuple[str, str]:
        """The F1 the report shows beside it, as (key in the control figures, name)."""
        return ("entity_f1", "entity F1") if self.is_spans else ("macro_f1", "macro-F1")

    @property
    def measured_cycles(self) -> list[dict[str, Any]]:
        """The cycles with labelled control items: the points of the learning curve."""
        return [row for row in self.cycles if row["control"]]

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"labels": list(self.labels), "cycles": list(self.cycles),
                               "production": list(self.production), "warnings": list(self.warnings),
                               "mix_changes": list(self.mix_changes)}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Measurement:
        known = {f.name for f in fields(cls)}
        found = {k: v for k, v in raw.items() if k in known}
        return cls(**found | {name: tuple(found.get(name) or ())
                              for name in ("labels", "cycles", "production", "warnings", "mix_changes")})

    def summary(self, job: dict[str, Any] | None) -> dict[str, Any]:
        """The ``loop`` entry of ``/metrics``; ``job`` is the measure job's state."""
        measured = self.measured_cycles
        latest = self.cycles[-1] if self.cycles else None
        return {
            "measured_at": self.measured_at, "cycles": self.totals["cycles"], "labels": self.totals["labels"],
            "cost": self.totals["cost"], "cost_unit": self.cost_unit,
            "latest_cycle": latest and {k: latest[k] for k in ("cycle", "model_version", "labels_added", "cost")},
            "control": measured[-1]["control"] | {"cycle": measured[-1]["cycle"]} if measured else None,
            "gain_points_per_100": next((r["gain_points_per_100"] for r in reversed(self.cycles)
                                         if r["gain_points_per_100"] is not None), None),
            "agreement": self.agreement["overall"],
            "warnings": [{"code": w["code"], "message": w["message"]} for w in self.warnings],
            "job": job,
        }
