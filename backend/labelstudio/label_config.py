"""Parsing a Label Studio labelling config into the learning problem it describes.

Parsing goes through ``label_studio_sdk.label_interface.LabelInterface`` so we accept exactly
what Label Studio accepts; each task kind (``KINDS`` in ``backend/model/labelconfig.py``) then
says whether it serves the config. Today that is one ``Choices`` control bound to one ``Text``
object (single choice or ``choice="multiple"``), or one ``Labels`` control on one ``Text`` (span
labelling, ``backend/model/spans.py``); anything else is refused with a message naming
what is missing, because a backend that silently predicts nothing is worse than a clear error.
The SDK's parser lives here, in the Label Studio gateway, so ``backend/model`` stays free of it.
"""
from __future__ import annotations

import functools

from label_studio_sdk.label_interface import LabelInterface

from backend.errors import UnsupportedConfigError
from backend.model import labelconfig
from backend.model.task_kind import TaskSpec

__all__ = ["parse_label_config"]


def parse_label_config(xml: object) -> TaskSpec:
    """The learning problem of a config, or an ``UnsupportedConfigError`` saying what is missing."""
    if not isinstance(xml, str) or not xml.strip():
        raise UnsupportedConfigError("label config must be the project's XML config as a non-empty string",
                                     field="label_config")
    return _parse(xml)


@functools.lru_cache(maxsize=256)
def _parse(xml: str) -> TaskSpec:
    """Parse once per distinct config: Label Studio re-sends it with every request."""
    try:
        interface = LabelInterface(xml)
    except Exception as exc:  # the SDK raises several parser exception types
        raise UnsupportedConfigError(f"label config is not valid XML: {exc}",
                                     field="label_config") from None
    for kind in labelconfig.KINDS:
        spec = kind.spec_of(interface)
        if spec is not None:
            return spec
    found = sorted({c.tag for c in interface.controls}) or ["no controls"]
    raise UnsupportedConfigError(
        "label config has no <Choices> control bound to a <Text value=\"$field\"> object, nor a <Labels> "
        "control for span labelling; "
        f"found: {', '.join(found)}. Supported: single- or multi-label text classification and "
        "span labelling (see label_config/ in the labelqueue repository)",
        field="label_config",
    )
