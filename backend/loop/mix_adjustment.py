"""The uncertain share lowered automatically (``LABELQUEUE_AUTO_ADJUST_MIX``), on top of the admin's mix.

The admin's mix arrives with every ``/setup`` (the model connection's extra params) and is
rewritten to ``options.json``; an automatic change written there would be undone by the next
``/setup``. The change therefore lives in its own file, ``projects/<id>/mix_adjustment.json``,
together with the admin mix it was derived from. :func:`effective_mix` applies it only while
the admin's mix is still that one: when the admin sets a new mix, theirs wins. An unreadable
file only loses the adjustment (the admin's mix applies), so it is logged and ignored.
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict

from backend.store import ModelStore, atomic_write_json
from selection.mix import SliceMix

logger = logging.getLogger(__name__)



def effective_mix(store: ModelStore, project_id: int, admin_mix: SliceMix | None) -> SliceMix | None:
    """The automatically adjusted mix if it was derived from ``admin_mix``, else ``admin_mix``.

    ``None`` is the share schedule; an adjustment made while it applied (saved with base null)
    replaces the schedule by the lowered mix until the admin sets a mix.
    """
    try:
        saved = json.loads(store.layout.mix_adjustment(project_id).read_text())
        base = None if saved["base"] is None else SliceMix.from_mapping(saved["base"])
        if base == admin_mix:
            return SliceMix.from_mapping(saved["mix"])
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.warning("project %s: ignoring unreadable %s: %s", project_id,
                       store.layout.mix_adjustment(project_id), exc)
    return admin_mix


def save_adjustment(store: ModelStore, project_id: int, admin_mix: SliceMix | None, mix: SliceMix) -> None:
    atomic_write_json(store.layout.mix_adjustment(project_id),
                      {"base": None if admin_mix is None else asdict(admin_mix), "mix": asdict(mix)})
