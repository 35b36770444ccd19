"""One typed settings object, read once from the environment and passed down explicitly.

Handlers never read ``os.environ``: ``create_app(settings)`` receives everything, so tests and
the CLI can build an app with any configuration without touching global state.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:
    from selection.mix import SliceMix

PREFIX = "LABELQUEUE_"


class SettingsError(ValueError):
    """A setting has a value we cannot use; the message names the variable."""


@dataclass(frozen=True)
class FailureField:
    """``LABELQUEUE_FAILURE_FIELD``: tasks whose ``data.<key>`` or ``meta.<key>`` equals a value
    are production failures (e.g. ``data.source=production_error``)."""

    section: str
    key: str
    value: str

    @classmethod
    def parse(cls, raw: str) -> "FailureField":
        path, sep, value = raw.partition("=")
        section, dot, key = path.strip().partition(".")
        if not sep or not dot or section not in ("data", "meta") or not key:
            raise SettingsError(f"LABELQUEUE_FAILURE_FIELD={raw!r} must look like "
                                "'data.<key>=<value>' or 'meta.<key>=<value>'")
        return cls(section, key, value.strip())

    def matches(self, task: Mapping[str, object]) -> bool:
        found = (task.get(self.section) or {}).get(self.key)  # type: ignore[union-attr]
        if isinstance(found, bool):
            found = "true" if found else "false"
        return found is not None and str(found) == self.value

    def __str__(self) -> str:
        return f"{self.section}.{self.key}={self.value}"


def default_data_dir() -> Path:
    """The per-user data directory (XDG on Linux), so a plain ``labelqueue serve`` just works."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "labelqueue"


@dataclass(frozen=True)
class Settings:
    """Everything the backend can be told; environment names are listed in the README.

    Attributes whose metadata carries ``env`` are read from that variable; the rest from
    ``LABELQUEUE_<NAME>``.
    """

    data_dir: Path = field(default_factory=default_data_dir)
    label_studio_url: str | None = field(default=None, metadata={"env": "LABEL_STUDIO_URL"})
    label_studio_api_key: str | None = field(
        default=None, metadata={"env": "LABEL_STUDIO_API_KEY", "secret": True}
    )
    basic_auth_user: str | None = None
    basic_auth_password: str | None = field(default=None, metadata={"secret": True})
    webhook_secret: str | None = field(default=None, metadata={"secret": True})
    uncertainty_measure: str = "margin"
    min_new_annotations: int = 10
    #: Label Studio sends the annotation webhook before its transaction commits; a retrain that
    #: reads labels at once can miss the newest one (seen with RQ workers that start in ~10 ms).
    retrain_settle_seconds: float = 1.0
    classifier: str | None = None
    seed: int = 0
    batch_size: int = 100
    mix: str = "uncertain=0.55,diverse=0.25,failure=0.15,control=0.05"
    failure_field: str | None = None
    select_after_retrain: bool = True
    #: Batch cadence (``backend/loop/cycle.py``): after a retrain a new batch is composed only when
    #: this share of the current one is labelled, or when the model changed and the batch is older
    #: than ``stale_hours``.
    refill_at: float = 0.8
    stale_hours: float = 24.0
    max_request_bytes: int = 64 * 1024 * 1024
    max_tasks_per_predict: int = 10_000
    train_threads: int = 2
    keep_model_versions: int = 3
    #: Scale-out (``backend/jobs/rq_jobs.py``): set ``LABELQUEUE_REDIS_URL`` and background jobs run on
    #: ``labelqueue worker`` processes instead of this process's threads. Secret because a Redis
    #: URL may carry a password.
    redis_url: str | None = field(default=None, metadata={"secret": True})
    score_chunk_size: int = 50_000
    job_timeout: int = 3600
    #: Loop measurement (backend/measure/measurement.py): label cost is annotators' time unless one of
    #: these converts it; thresholds of the report's warnings; classes the report singles out.
    cost_per_hour: float | None = None
    cost_per_label: float | None = None
    gain_threshold: float = 0.5
    gain_patience: int = 3
    agreement_gap: float = 0.15
    high_impact_classes: str = ""
    failure_mode_classes: str = ""
    rare_class_threshold: int = 10
    auto_adjust_mix: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> "Settings":
        """Read settings from ``environ`` (default ``os.environ``); ``overrides`` win."""
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            name = f.metadata.get("env", PREFIX + f.name.upper())
            if name in environ and environ[name] != "":
                values[f.name] = _convert(name, environ[name], f.type)
        values.update(overrides)
        settings = cls(**values)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def validate(self) -> None:
        """Fail at start-up, not in the middle of a retrain."""
        from selection.uncertainty import MEASURES

        if self.uncertainty_measure not in MEASURES:
            raise SettingsError(
                f"LABELQUEUE_UNCERTAINTY_MEASURE={self.uncertainty_measure!r} is not one of "
                f"{sorted(MEASURES)}"
            )
        if bool(self.basic_auth_user) != bool(self.basic_auth_password):
            raise SettingsError("set both LABELQUEUE_BASIC_AUTH_USER and LABELQUEUE_BASIC_AUTH_PASSWORD, or neither")
        self.slice_mix()
        self.failure_rule()
        for name in ("batch_size", "min_new_annotations", "max_request_bytes", "max_tasks_per_predict",
                     "train_threads", "keep_model_versions", "gain_patience", "rare_class_threshold",
                     "score_chunk_size", "job_timeout"):
            if int(getattr(self, name)) < 1:
                raise SettingsError(f"{PREFIX}{name.upper()} must be at least 1")
        if self.redis_url and not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise SettingsError("LABELQUEUE_REDIS_URL must start with redis://, rediss:// or unix://")
        if self.cost_per_hour is not None and self.cost_per_label is not None:
            raise SettingsError("set LABELQUEUE_COST_PER_HOUR or LABELQUEUE_COST_PER_LABEL, not both")
        if not 0 < self.refill_at <= 1:
            raise SettingsError(f"{PREFIX}REFILL_AT must be a share in (0, 1]; got {self.refill_at}")
        for name in ("cost_per_hour", "cost_per_label", "agreement_gap", "retrain_settle_seconds", "stale_hours"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < float("inf"):
                raise SettingsError(f"{PREFIX}{name.upper()} must be a finite number >= 0")

    def slice_mix(self) -> "SliceMix":
        """The default mix for projects that do not set their own (``extra_params``)."""
        from selection.mix import SliceMix

        try:
            return SliceMix.from_mapping(parse_mix(self.mix))
        except ValueError as exc:
            raise SettingsError(f"LABELQUEUE_MIX={self.mix!r}: {exc}") from None

    def failure_rule(self) -> FailureField | None:
        return FailureField.parse(self.failure_field) if self.failure_field else None

    def public(self) -> dict[str, object]:
        """Settings safe to show in ``/metrics``: secrets are reported only as set / not set."""
        shown: dict[str, object] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("secret"):
                shown[f.name] = "set" if value else "not set"
            else:
                shown[f.name] = str(value) if isinstance(value, Path) else value
        return shown


def parse_mix(raw: str) -> dict[str, str]:
    """``"uncertain=0.6,diverse=0.2,..."`` -> mapping; SliceMix validates names and values."""
    pairs = [part.split("=", 1) for part in raw.split(",") if part.strip()]
    if any(len(pair) != 2 for pair in pairs):
        raise SettingsError(f"LABELQUEUE_MIX={raw!r} must look like 'uncertain=0.55,diverse=0.25,...'")
    return {name.strip(): value.strip() for name, value in pairs}


def _convert(name: str, raw: str, annotation: object) -> object:
    kind = str(annotation)
    try:
        if kind == "bool":
            if raw.lower() not in ("1", "0", "true", "false", "yes", "no"):
                raise SettingsError(f"{name}={raw!r} must be true or false")
            return raw.lower() in ("1", "true", "yes")
        if "Path" in kind:
            return Path(raw).expanduser()
        if kind.startswith("int"):
            return int(raw)
        if kind.startswith("float"):
            return float(raw)
        return raw
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a valid {kind.split()[0]}") from None
