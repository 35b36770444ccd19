"""What the backend learns, read from a Label Studio labelling config.

Parsing goes through ``label_studio_sdk.label_interface.LabelInterface`` so we accept exactly
what Label Studio accepts. We support one ``Choices`` control bound to one ``Text`` object
(single choice or ``choice="multiple"``); anything else is refused with a message naming what
is missing, because a backend that silently predicts nothing is worse than a clear error.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

from label_studio_sdk.label_interface import LabelInterface

from backend.errors import UnsupportedConfigError


@dataclass(frozen=True)
class TaskSpec:
    """The learning problem a labelling config describes.

    Attributes
    ----------
    from_name, to_name : the ``Choices`` control name and the ``Text`` object it labels; they
        go into every prediction so Label Studio can attach it to the right region.
    value_key : the key in ``task["data"]`` holding the text (``$text`` -> ``"text"``).
    labels : the choices in config order; probability columns follow this order.
    multilabel : ``choice="multiple"``: labels are independent yes/no decisions.
    """

    from_name: str
    to_name: str
    value_key: str
    labels: tuple[str, ...]
    multilabel: bool


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
    for control in interface.controls:
        if control.tag.lower() != "choices":
            continue
        for obj in control.objects:
            if obj.tag.lower() == "text" and str(obj.value).startswith("$"):
                return _spec(control, obj)
    found = sorted({c.tag for c in interface.controls}) or ["no controls"]
    raise UnsupportedConfigError(
        "label config has no <Choices> control bound to a <Text value=\"$field\"> object; "
        f"found: {', '.join(found)}. Supported: single- or multi-label text classification "
        "(see label_config/ in the labelqueue repository)",
        field="label_config",
    )


def _spec(control, obj) -> TaskSpec:
    labels = tuple(control.labels)
    if len(labels) < 2:
        raise UnsupportedConfigError(
            f"<Choices name=\"{control.name}\"> has {len(labels)} choice(s); at least two are "
            "needed to learn anything", field="label_config")
    choice = str(control.attr.get("choice", "single")).lower()
    return TaskSpec(
        from_name=control.name,
        to_name=obj.name,
        value_key=str(obj.value)[1:],
        labels=labels,
        multilabel=choice == "multiple",
    )
