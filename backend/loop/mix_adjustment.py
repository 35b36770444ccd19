"""The uncertain share lowered automatically (``LABELQUEUE_AUTO_ADJUST_MIX``), on top of the admin's mix.

The admin's mix arrives with every ``/setup`` (the model connection's extra params) and is
rewritten to ``options.json``; an automatic change written there would be undone by the next
``/setup``. The change therefore lives in its own file, ``projects/<id>/mix_adjustment.json``,
together with the admin mix it was derived from. :func:`effective_mix` applies it only while
the admin's mix is still that one: when the admin sets a new mix, theirs wins.
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict

from backend.store import ModelStore, atomic_write_json
from selection.mix import SliceMix

logger = logging.getLogger(__name__)

FILE_NAME = "mix_adjustment.json"


def effective_mix(store: ModelStore, project_id: int, admin_mix: SliceMix) -> SliceMix:
    """The automatically adjusted mix if it was derived from ``admin_mix``, else ``admin_mix``."""
    try:
        saved = json.loads((store.project_dir(project_id) / FILE_NAME).read_text())
        if SliceMix.from_mapping(saved["base"]) == admin_mix:
            return SliceMix.from_mapping(saved["mix"])
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.warning("project %s: ignoring unreadable %s: %s", project_id, FILE_NAME, exc)
    return admin_mix


def save_adjustment(store: ModelStore, project_id: int, admin_mix: SliceMix, mix: SliceMix) -> None:
    atomic_write_json(store.project_dir(project_id) / FILE_NAME, {"base": asdict(admin_mix), "mix": asdict(mix)})
