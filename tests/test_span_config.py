"""Span-labelling configs: ``label_config/ner.xml`` is served; variants one tagger cannot serve are refused, saying why."""
from __future__ import annotations

from pathlib import Path

import pytest

from backend.errors import UnsupportedConfigError
from backend.local.quickstart_inputs import check_config, describe
from backend.model.labelconfig import kind_of

NER = Path(__file__).resolve().parents[1] / "label_config" / "ner.xml"
TEXT = '<Text name="t" value="$text"/>'
MULTIPLE = ' choice="multiple"'


def labels(attrs: str = "", body: str = '<Label value="A"/><Label value="B"/>', name: str = "a") -> str:
    return f'<Labels name="{name}" toName="t"{attrs}>{body}</Labels>'


def test_shipped_ner_config_is_span_labelling_of_data_text():
    spec = check_config(NER.read_text())
    assert (spec.kind, spec.from_name, spec.to_name, spec.value_key) == ("spans", "label", "text", "text")
    assert spec.labels == ("PERSON", "ORG", "LOCATION", "PRODUCT", "DATE")
    assert kind_of(spec).name == "spans"
    assert "span labelling" in describe(spec)


@pytest.mark.parametrize(("config", "reason"), [
    (f"<View>{labels(MULTIPLE)}{TEXT}</View>", MULTIPLE.strip()),
    (f"<View>{labels()}{labels(name='b')}{TEXT}</View>", "2 <Labels> controls"),
    ('<View><Labels name="a" toName="t"><Label value="A"/></Labels><HyperText name="t" value="$html"/></View>',
     "HyperText"),
    (f"<View>{labels(body='')}{TEXT}</View>", "no <Label>"),
])
def test_span_configs_a_tagger_cannot_serve_are_refused_with_the_reason(config, reason):
    with pytest.raises(UnsupportedConfigError, match=reason.replace("(", r"\(")):
        check_config(config)


def test_config_without_choices_or_labels_names_both_in_the_refusal():
    with pytest.raises(UnsupportedConfigError, match="<Choices> control .* nor a <Labels>"):
        check_config('<View><TextArea name="a" toName="t"/><Text name="t" value="$text"/></View>')
