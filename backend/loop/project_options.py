"""Per-project selection options, set by the admin in Label Studio's model connection.

Label Studio sends the connection's *Extra params* (JSON) to ``/setup``; labelqueue reads
``{"batch_size": 100, "mix": {"uncertain": 0.55, "diverse": 0.25, "failure": 0.15,
"control": 0.05}, "control_overlap": 2, "batch_tokens": 1500}`` from it (``control_overlap``:
annotators asked to label each control task, for agreement on a random sample; default 1, no
overlap; ``batch_tokens``: a span project's batch also holds at most that many tokens, 0 for no
token budget). Missing keys fall back to ``LABELQUEUE_BATCH_SIZE`` / ``LABELQUEUE_MIX`` /
``LABELQUEUE_BATCH_TOKENS``; with neither mix set, batches follow
the share schedule (:meth:`ProjectOptions.mix_at`). An automatic lowering of the uncertain
share (``backend/loop/mix_adjustment.py``) applies on top of the mix. The options are
remembered on disk (only when they change, so ``/setup`` stays cheap) because selection runs
in the background, possibly in another worker process.
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, replace

from backend.errors import InvalidOptionError
from backend.layout import StateFileError, read_state
from backend.loop.mix_adjustment import effective_mix
from backend.settings import MAX_BATCH_SIZE, MAX_BATCH_TOKENS, Settings
from backend.store import ModelStore, atomic_write_json
from selection.mix import SliceMix, scheduled_mix

MAX_CONTROL_OVERLAP = 10


@dataclass(frozen=True)
class ProjectOptions:
    batch_size: int
    #: None: no mix was set, so each batch follows the share schedule.
    mix: SliceMix | None
    control_overlap: int = 1
    #: A span project's batch holds at most this many tokens (0: no token budget).
    batch_tokens: int = 0

    def mix_at(self, labelled: int, classes: int) -> SliceMix:
        """The mix of a batch composed with ``labelled`` labels over ``classes`` classes: the
        configured one, else the schedule's point (``selection.scheduled_mix``)."""
        return self.mix if self.mix is not None else scheduled_mix(labelled, classes)


def parse_extra_params(raw: object) -> dict:
    """Label Studio stores extra params as JSON; they may arrive as a dict, a string or null."""
    if raw in (None, ""):
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except (ValueError, RecursionError):  # RecursionError: nested too deeply to parse
            raise InvalidOptionError("extra_params is not valid JSON", field="extra_params") from None
    if not isinstance(raw, dict):
        raise InvalidOptionError("extra_params must be a JSON object", field="extra_params")
    return {k: raw[k] for k in ("batch_size", "mix", "control_overlap", "batch_tokens") if k in raw}


def resolve_options(params: dict, settings: Settings) -> ProjectOptions:
    """Validate per-project params against the global defaults; ``InvalidOptionError`` naming the field."""
    size = params.get("batch_size", settings.batch_size)
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_BATCH_SIZE:
        raise InvalidOptionError(f"batch_size must be an integer from 1 to {MAX_BATCH_SIZE}; got {size!r}",
                       field="extra_params.batch_size")
    mix = settings.mix
    if "mix" in params:
        if not isinstance(params["mix"], dict):
            raise InvalidOptionError("mix must be an object of slice shares", field="extra_params.mix")
        try:
            mix = SliceMix.from_mapping(params["mix"])
        except ValueError as exc:
            raise InvalidOptionError(str(exc), field="extra_params.mix") from None
    overlap = params.get("control_overlap", 1)
    if isinstance(overlap, bool) or not isinstance(overlap, int) or not 1 <= overlap <= MAX_CONTROL_OVERLAP:
        raise InvalidOptionError(f"control_overlap must be an integer from 1 to {MAX_CONTROL_OVERLAP}; got {overlap!r}",
                       field="extra_params.control_overlap")
    tokens = params.get("batch_tokens", settings.batch_tokens)
    if isinstance(tokens, bool) or not isinstance(tokens, int) or not 0 <= tokens <= MAX_BATCH_TOKENS:
        raise InvalidOptionError(f"batch_tokens must be an integer from 0 (no token budget) to {MAX_BATCH_TOKENS}; "
                                 f"got {tokens!r}", field="extra_params.batch_tokens")
    return ProjectOptions(batch_size=size, mix=mix, control_overlap=overlap, batch_tokens=tokens)


class ProjectOptionsStore:
    def __init__(self, settings: Settings, store: ModelStore):
        self.settings = settings
        self.store = store
        self._seen: dict[int, dict] = {}
        self._lock = threading.Lock()

    def remember(self, project_id: int, extra_params: object) -> ProjectOptions:
        """Validate ``/setup``'s extra params and keep them; ``/setup`` is what creates a project."""
        params = parse_extra_params(extra_params)
        options = resolve_options(params, self.settings)
        with self._lock:
            if self._seen.get(project_id) == params and self.store.exists(project_id):
                return options
        self.store.create_project(project_id)
        atomic_write_json(self.store.layout.options(project_id), params)
        with self._lock:
            self._seen[project_id] = params
        return options

    def get(self, project_id: int) -> ProjectOptions:
        options = self.admin_options(project_id)
        return replace(options, mix=effective_mix(self.store, project_id, options.mix))

    def admin_options(self, project_id: int) -> ProjectOptions:
        """What the admin set, before any automatic mix adjustment."""
        path = self.store.layout.options(project_id)
        params = read_state(path) or {}
        try:
            return resolve_options(params, self.settings)
        except InvalidOptionError as exc:
            raise StateFileError(path, exc.message) from None
