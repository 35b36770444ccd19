"""One typed settings object, read once from the environment and passed down explicitly.

Handlers never read ``os.environ``: ``create_app(settings)`` receives everything, so tests and
the CLI can build an app with any configuration without touching global state. Every value is
parsed into its type here, once (the mix into a ``SliceMix``, class lists into tuples, the
failure rule into a :class:`FailureField`), and checked against its bounds and the other
settings when the object is built: a bad value stops ``labelqueue serve``, ``labelqueue worker``
and ``create_app`` with a :class:`SettingsError` naming the environment variable, instead of
failing later in a request or a background job.
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from selection.mix import SliceMix

PREFIX = "LABELQUEUE_"

#: Upper bound of a batch, globally (``LABELQUEUE_BATCH_SIZE``) and per project (extra params).
MAX_BATCH_SIZE = 10_000
MAX_BATCH_TOKENS = 10_000_000


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
    def parse(cls, raw: str) -> FailureField:
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
    #: ``/webhook`` is under basic auth like every other endpoint but ``/health``; an admin whose
    #: Label Studio cannot send credentials in the webhook URL opts out here (then set a secret).
    webhook_skip_basic_auth: bool = False
    #: Without ``LABEL_STUDIO_URL``, the Label Studio hosts (``host`` or ``host:port``, comma-
    #: separated) that ``/setup``'s ``hostname`` may name; any other is refused.
    allowed_ls_hosts: str = ""
    uncertainty_measure: str = "margin"
    #: The sequence measure a span model is fitted to score by, for ``/predict`` and the pool
    #: alike (``selection/sequence_uncertainty.py``); it takes effect at the next retrain.
    span_uncertainty_measure: str = "mnlp"
    min_new_annotations: int = 10
    #: Label Studio sends the annotation webhook before its transaction commits; a retrain that
    #: reads labels at once can miss the newest one (seen with RQ workers that start in ~10 ms).
    retrain_settle_seconds: float = 1.0
    #: Trailing labels: after this many seconds without a new annotation, labels still below
    #: ``min_new_annotations`` are trained on (the last labels of a batch); 0 turns it off.
    trailing_quiet_seconds: float = 30.0
    classifier: str | None = None
    #: The span model's factory for ``<Labels>`` projects (``backend/model/span_model.py``).
    span_tagger: str | None = None
    seed: int = 0
    batch_size: int = 100
    #: A span project's batch also holds at most this many tokens (0: no token budget).
    batch_tokens: int = 0
    #: The mix for projects that do not set their own (``extra_params``); unset (None), batches
    #: follow the share schedule (``selection.scheduled_mix``).
    mix: SliceMix | None = field(default=None, metadata={"parse": "parse_mix"})
    failure_field: FailureField | None = field(default=None, metadata={"parse": "FailureField.parse"})
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
    high_impact_classes: tuple[str, ...] = field(default=(), metadata={"parse": "class_list"})
    failure_mode_classes: tuple[str, ...] = field(default=(), metadata={"parse": "class_list"})
    rare_class_threshold: int = 10
    auto_adjust_mix: bool = False
    #: Project folders one data dir may hold; ``/setup`` for one more is refused.
    max_projects: int = 1000
    #: Signs model files (``backend/model_key.py``); else the key file (default
    #: ``~/.config/labelqueue/model.key``, created at first start).
    model_key: str | None = field(default=None, metadata={"secret": True})
    model_key_file: Path | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Read settings from ``environ`` (default ``os.environ``); ``overrides`` win."""
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            name = env_name(f.name)
            if name in environ and environ[name] != "":
                raw = environ[name]
                values[f.name] = raw if "parse" in f.metadata else _convert(name, raw, f.type)
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]

    def __post_init__(self) -> None:
        """Parse the structured values given as text (environment, CLI, tests), then validate."""
        for f in fields(self):
            raw = getattr(self, f.name)
            if "parse" in f.metadata and isinstance(raw, str):
                object.__setattr__(self, f.name, PARSERS[f.metadata["parse"]](raw) if raw.strip() else f.default)
        self.validate()

    def validate(self) -> None:
        """Bounds of each value and rules between values; fail at start-up, not in a retrain."""
        from selection.sequence_uncertainty import SEQUENCE_MEASURES
        from selection.uncertainty import MEASURES

        for name, allowed in (("uncertainty_measure", MEASURES), ("span_uncertainty_measure", SEQUENCE_MEASURES)):
            if getattr(self, name) not in allowed:
                raise SettingsError(f"{env_name(name)}={getattr(self, name)!r} is not one of {sorted(allowed)}")
        if bool(self.basic_auth_user) != bool(self.basic_auth_password):
            raise SettingsError("set both LABELQUEUE_BASIC_AUTH_USER and LABELQUEUE_BASIC_AUTH_PASSWORD, or neither")
        for name, low, high in BOUNDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise SettingsError(f"{env_name(name)}={value!r} must be an integer from {low} to {high}")
        if self.mix is not None and not isinstance(self.mix, SliceMix):
            raise SettingsError(f"LABELQUEUE_MIX must be a slice mix or unset; got {self.mix!r}")
        if self.redis_url and not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise SettingsError("LABELQUEUE_REDIS_URL must start with redis://, rediss:// or unix://")
        if self.label_studio_url and urlsplit(self.label_studio_url).scheme not in ("http", "https"):
            raise SettingsError(f"LABEL_STUDIO_URL={mask_url(self.label_studio_url)!r} must be an http(s) URL")
        if self.cost_per_hour is not None and self.cost_per_label is not None:
            raise SettingsError("set LABELQUEUE_COST_PER_HOUR or LABELQUEUE_COST_PER_LABEL, not both")
        if not 0 < self.refill_at <= 1:
            raise SettingsError(f"{PREFIX}REFILL_AT must be a share in (0, 1]; got {self.refill_at}")
        for name in ("cost_per_hour", "cost_per_label", "agreement_gap", "retrain_settle_seconds",
                     "trailing_quiet_seconds", "gain_threshold", "stale_hours"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and 0 <= value < math.inf):
                raise SettingsError(f"{env_name(name)}={value!r} must be a finite number >= 0")
        if self.model_key is not None and len(self.model_key) < 16:
            raise SettingsError("LABELQUEUE_MODEL_KEY must be at least 16 characters")

    def public(self) -> dict[str, object]:
        """Settings safe to show in ``/metrics``: secrets are reported only as set / not set, and
        credentials in ``LABEL_STUDIO_URL`` are masked."""
        shown: dict[str, object] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("secret"):
                shown[f.name] = "set" if value else "not set"
            elif f.name == "label_studio_url":
                shown[f.name] = mask_url(value) if value else value
            elif isinstance(value, SliceMix):
                shown[f.name] = format_mix(value)
            elif isinstance(value, (Path, FailureField)):
                shown[f.name] = str(value)
            elif isinstance(value, tuple):
                shown[f.name] = list(value)
            else:
                shown[f.name] = value
        return shown


def env_name(field_name: str) -> str:
    """The environment variable a settings field is read from."""
    for f in fields(Settings):
        if f.name == field_name:
            return f.metadata.get("env", PREFIX + field_name.upper())
    raise KeyError(field_name)


#: Integer settings and their bounds (inclusive).
BOUNDS: tuple[tuple[str, int, int], ...] = (
    ("batch_size", 1, MAX_BATCH_SIZE), ("batch_tokens", 0, MAX_BATCH_TOKENS), ("min_new_annotations", 1, 10**9),
    ("max_request_bytes", 1, 2**40), ("max_tasks_per_predict", 1, 10**7), ("train_threads", 1, 256),
    ("keep_model_versions", 1, 1000), ("gain_patience", 1, 1000), ("rare_class_threshold", 1, 10**9),
    ("score_chunk_size", 1, 10**8), ("job_timeout", 1, 7 * 86400), ("max_projects", 1, 10**6),
    ("seed", 0, 2**63 - 1),
)


def mask_url(url: str) -> str:
    """``url`` with any ``user:password@`` replaced by ``***@``, for logs and ``/metrics``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))


def parse_mix(raw: str) -> SliceMix:
    """``"uncertain=0.6,diverse=0.2,..."`` -> :class:`SliceMix` (names and shares validated)."""
    pairs = [part.split("=", 1) for part in raw.split(",") if part.strip()]
    if any(len(pair) != 2 for pair in pairs):
        raise SettingsError(f"LABELQUEUE_MIX={raw!r} must look like 'uncertain=0.55,diverse=0.25,...'")
    try:
        return SliceMix.from_mapping({name.strip(): value.strip() for name, value in pairs})
    except ValueError as exc:
        raise SettingsError(f"LABELQUEUE_MIX={raw!r}: {exc}") from None


def format_mix(mix: SliceMix) -> str:
    """The ``LABELQUEUE_MIX`` spelling of a mix."""
    return ",".join(f"{name}={share:g}" for name, share in mix.__dict__.items())


def class_list(raw: str) -> tuple[str, ...]:
    """``"a, b,,c"`` -> ``("a", "b", "c")``."""
    return tuple(name.strip() for name in raw.split(",") if name.strip())


PARSERS: dict[str, Callable[[str], Any]] = {
    "parse_mix": parse_mix, "FailureField.parse": FailureField.parse, "class_list": class_list,
}


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
