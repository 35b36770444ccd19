"""Pluggable model factories: a dotted path from the settings, imported and checked once.

The classifier (``LABELQUEUE_CLASSIFIER``) and the span tagger (``LABELQUEUE_SPAN_TAGGER``) are
both replaceable by any object that follows a small contract; a wrong path or an object missing
a method stops with a message naming the variable, before any training starts on it.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

from backend.settings import SettingsError


def build_from_factory(dotted: str | None, default: Callable[[], Any], *, variable: str,
                       methods: Sequence[str]) -> Any:
    """``default()`` when ``dotted`` is empty, else the factory at ``module.attr`` (or
    ``module:attr``) called with no arguments; refused unless the result has every one of ``methods``."""
    if not dotted:
        return default()
    module_name, _, attr = dotted.replace(":", ".").rpartition(".")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise SettingsError(f"{variable}={dotted!r} cannot be imported: {exc}") from None
    built = factory()
    missing = [name for name in methods if not hasattr(built, name)]
    if missing:
        raise SettingsError(f"{variable}={dotted!r} has no {'/'.join(missing)}")
    return built
