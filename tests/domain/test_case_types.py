"""Case types and custom attribute values."""

from __future__ import annotations

import math

import pytest

from casem.domain.case_types import CaseType, CustomAttributeConfig, standard_type, validate_attribute_key
from casem.domain.cases import STANDARD_TYPE_ID
from casem.domain.errors import InvalidInput


def config(kind: str, multi: bool = False, options: list[str] | None = None) -> CustomAttributeConfig:
    return CustomAttributeConfig(
        id="a1",
        org_id="o1",
        case_type_id="t1",
        key="impact",
        display_name="Impact",
        type=kind,
        is_multi=multi,
        options=options or [],
    )


def refused(kind: str, value: object, multi: bool = False, options: list[str] | None = None) -> InvalidInput:
    with pytest.raises(InvalidInput) as raised:
        config(kind, multi, options).coerce(value, "/data/attributes/value")
    assert raised.value.pointer == "/data/attributes/value"
    return raised.value


def test_values_come_back_in_datadogs_shape() -> None:
    assert config("NUMBER", multi=True).coerce([1, 2.5], "/p") == {
        "type": "NUMBER",
        "is_multi": True,
        "value": [1, 2.5],
    }
    assert config("TEXT", multi=True).coerce([], "/p") == {"type": "TEXT", "is_multi": True, "value": []}
    assert config("TEXT", multi=True).coerce("one", "/p") == {"type": "TEXT", "is_multi": True, "value": ["one"]}
    assert config("SELECT").coerce("anything", "/p")["value"] == "anything"  # no options: any string
    assert config("URL").coerce("HTTP://Example.com", "/p")["value"] == "HTTP://Example.com"


def test_refusals_say_why() -> None:
    assert refused("TEXT", ["a"]).detail == "custom attribute 'impact' takes a single value, not a list"
    assert refused("NUMBER", "3").detail == "custom attribute 'impact' is a NUMBER: got '3'"
    assert refused("NUMBER", None).detail == "custom attribute 'impact' is a NUMBER: got None"
    assert refused("TEXT", 3).detail == "custom attribute 'impact' is TEXT: expected a string"
    assert refused("TEXT", "x" * 4097).detail == "custom attribute 'impact' value is longer than 4096 characters"
    assert (
        refused("URL", "example.com").detail
        == "custom attribute 'impact' is a URL: 'example.com' is not an http(s) URL"
    )
    assert refused("URL", "https://exa mple.com").detail.endswith("is not an http(s) URL")
    assert (
        refused("SELECT", "urgent", options=["low", "high"]).detail
        == "custom attribute 'impact' must be one of: low, high"
    )
    assert refused("TEXT", ["ok", 1], multi=True).detail == "custom attribute 'impact' is TEXT: expected a string"
    assert config("TEXT").coerce("x" * 4096, "/p")["value"] == "x" * 4096


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
def test_a_number_must_be_finite(number: float) -> None:
    # JSON has no NaN or Infinity: Python's json module reads them, but they cannot be stored or sent back.
    assert refused("NUMBER", number).detail == f"custom attribute 'impact' is a NUMBER: got {number!r}"
    refused("NUMBER", [1, number], multi=True)
    assert config("NUMBER").coerce(10**400, "/p")["value"] == 10**400  # a big integer is still a number


@pytest.mark.parametrize("key", ["impact", "a", "x_1", "a" * 63])
def test_good_attribute_keys(key: str) -> None:
    assert validate_attribute_key(key) == key


@pytest.mark.parametrize("key", ["", "Impact", "1st", "_x", "has-dash", "has space", "a" * 64, None])
def test_bad_attribute_keys(key: object) -> None:
    with pytest.raises(InvalidInput) as raised:
        validate_attribute_key(key)
    assert raised.value.pointer == "/data/attributes/key"
    assert raised.value.detail.startswith("key must start with a lower-case letter")


def test_case_type_and_attribute_events() -> None:
    standard = standard_type()
    assert standard.builtin and standard.org_id is None and standard.name == "STANDARD"
    assert standard.id == STANDARD_TYPE_ID
    custom = CaseType(id="t1", org_id="o1", name="Incident")
    assert not custom.builtin
    custom.event("created", "u1", "o1", {"emoji": "🔥"})
    [event] = custom.collect_events()
    assert (event.type, event.subject_type, event.subject_id, event.org_id, event.case_id) == (
        "case_type.created",
        "case_type",
        "t1",
        "o1",
        None,
    )
    assert event.data == {"name": "Incident", "emoji": "🔥"}
    attribute = config("TEXT")
    attribute.event("deleted", "u1")
    [event] = attribute.collect_events()
    assert (event.type, event.subject_type, event.data) == (
        "custom_attribute.deleted",
        "custom_attribute_config",
        {"key": "impact", "case_type_id": "t1"},
    )
