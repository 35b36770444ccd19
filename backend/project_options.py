"""Per-project selection options, set by the admin in Label Studio's model connection.

Label Studio sends the connection's *Extra params* (JSON) to ``/setup``; labelqueue reads
``{"batch_size": 100, "mix": {"uncertain": 0.55, "diverse": 0.25, "failure": 0.15,
"control": 0.05}}`` from it. Missing keys fall back to ``LABELQUEUE_BATCH_SIZE`` /
``LABELQUEUE_MIX``. The options are remembered on disk (only when they change, so ``/setup``
stays cheap) because selection runs in the background, possibly in another worker process.
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass

from backend.errors import ApiError
from backend.settings import Settings
from backend.store import ModelStore, atomic_write_json
from selection.mix import SliceMix

MAX_BATCH_SIZE = 10_000


@dataclass(frozen=True)
class ProjectOptions:
    batch_size: int
    mix: SliceMix


def parse_extra_params(raw: object) -> dict:
    """Label Studio stores extra params as JSON; they may arrive as a dict, a string or null."""
    if raw in (None, ""):
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise ApiError("extra_params is not valid JSON", field="extra_params") from None
    if not isinstance(raw, dict):
        raise ApiError("extra_params must be a JSON object", field="extra_params")
    return {k: raw[k] for k in ("batch_size", "mix") if k in raw}


def resolve_options(params: dict, settings: Settings) -> ProjectOptions:
    """Validate per-project params against the global defaults; 400 with the field on error."""
    size = params.get("batch_size", settings.batch_size)
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_BATCH_SIZE:
        raise ApiError(f"batch_size must be an integer from 1 to {MAX_BATCH_SIZE}; got {size!r}",
                       field="extra_params.batch_size")
    mix = settings.slice_mix()
    if "mix" in params:
        if not isinstance(params["mix"], dict):
            raise ApiError("mix must be an object of slice shares", field="extra_params.mix")
        try:
            mix = SliceMix.from_mapping(params["mix"])
        except ValueError as exc:
            raise ApiError(str(exc), field="extra_params.mix") from None
    return ProjectOptions(batch_size=size, mix=mix)


class ProjectOptionsStore:
    def __init__(self, settings: Settings, store: ModelStore):
        self.settings = settings
        self.store = store
        self._seen: dict[int, dict] = {}
        self._lock = threading.Lock()

    def remember(self, project_id: int, extra_params: object) -> ProjectOptions:
        params = parse_extra_params(extra_params)
        options = resolve_options(params, self.settings)
        with self._lock:
            if self._seen.get(project_id) == params:
                return options
            self._seen[project_id] = params
        atomic_write_json(self.store.project_dir(project_id) / "options.json", params)
        return options

    def get(self, project_id: int) -> ProjectOptions:
        try:
            params = json.loads((self.store.project_dir(project_id) / "options.json").read_text())
        except (OSError, ValueError):
            params = {}
        return resolve_options(params, self.settings)
