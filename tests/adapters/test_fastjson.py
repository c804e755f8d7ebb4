"""casem.adapters.fastjson gives what the standard library gave: the same values read, the same data written, and
for what orjson refuses, the standard library's own answer or error."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from casem.adapters import fastjson
from casem.adapters.storage.set_statements import _plain

# Integers orjson reads as integers (beyond them it reads the nearest float: test_loads_reads_a_huge_integer_...).
INT64 = st.integers(-(2**63), 2**64 - 1)
scalars = st.none() | st.booleans() | INT64 | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)
# What is written: no infinity (the other documented difference, test_a_nan_or_an_infinity_is_written_as_null).
finite_values = st.recursive(
    st.none() | st.booleans() | INT64 | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON values (floats compared as floats: -0.0 and 0.0 are the same number to JSON)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


@given(value=json_values)
def test_loads_reads_what_json_loads_reads(value: Any) -> None:
    for text in (json.dumps(value), json.dumps(value, ensure_ascii=False, separators=(",", ":"))):
        assert _same(fastjson.loads(text), json.loads(text))
        assert _same(fastjson.loads(text.encode("utf-8", "surrogatepass")), json.loads(text))


@pytest.mark.parametrize(
    "text",
    [
        '{"x": NaN, "y": Infinity, "z": -Infinity}',  # the standard library's extensions
        '"\\ud800"',  # a lone surrogate, escaped
        "1e400",  # read as infinity by the standard library
        '{"a": [1, -1e999]}',
        b'{"a": 1}'.decode("utf-8"),
    ],
)
def test_loads_takes_what_only_the_standard_library_takes(text: str) -> None:
    assert _same(fastjson.loads(text), json.loads(text))
    assert _same(fastjson.loads(text.encode()), json.loads(text.encode()))


@pytest.mark.parametrize("number", [2**64, -(2**63) - 1, 123456789012345678901234567890])
def test_loads_reads_a_huge_integer_as_the_nearest_float(number: int) -> None:
    # The documented difference: casem writes no such integer (jsonapi refuses them), a foreign message might.
    assert json.loads(str(number)) == number
    assert fastjson.loads(str(number)) == float(number)
    assert fastjson.loads(json.dumps({"n": [number]})) == {"n": [float(number)]}


def test_loads_reads_a_byte_order_mark_as_the_standard_library_does() -> None:
    raw = b"\xef\xbb\xbf" + b'{"a": 1}'
    assert fastjson.loads(raw) == json.loads(raw) == {"a": 1}


@pytest.mark.parametrize("text", ["", "{", '{"a": }', "[1,]", "nope", b"\xff\xfe{"])
def test_loads_raises_the_standard_library_error_for_what_is_not_json(text: str | bytes) -> None:
    with pytest.raises(json.JSONDecodeError if isinstance(text, str) else ValueError) as ours:
        fastjson.loads(text)
    with pytest.raises(type(ours.value)):
        json.loads(text)


@given(value=finite_values)
def test_compact_bytes_writes_the_same_data(value: Any) -> None:
    # (json_values holds no integer beyond 64 bits: those are written by the fallback, test_..._falls_back_...)
    ours = fastjson.compact_bytes(value)
    theirs = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    assert _same(json.loads(ours), json.loads(theirs))


@given(
    value=st.recursive(
        st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
        max_leaves=12,
    )
)
def test_compact_bytes_writes_the_same_bytes_without_floats(value: Any) -> None:
    try:
        theirs = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    except UnicodeEncodeError:  # a lone surrogate: no UTF-8 for it, whoever encodes
        with pytest.raises(UnicodeEncodeError):
            fastjson.compact_bytes(value)
        return
    assert fastjson.compact_bytes(value) == theirs


def test_compact_bytes_falls_back_for_what_orjson_refuses() -> None:
    value = {"big": 2**80, 1: "non-string key"}
    assert fastjson.compact_bytes(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


@given(value=finite_values)
def test_text_writes_the_same_data_as_json_dumps(value: Any) -> None:
    assert _same(json.loads(fastjson.text(value, default=_plain)), json.loads(json.dumps(value, default=_plain)))


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 11, 30, 1, 2, 3, 456789, tzinfo=UTC),
        datetime(2026, 11, 30, 1, 2, 3, tzinfo=UTC),
        datetime(2026, 11, 30, 1, 2, 3, tzinfo=timezone(timedelta(hours=-5))),
        datetime(2026, 11, 30, 1, 2, 3, 7),  # naive: written as it is, no offset made up
        date(2026, 11, 30),
    ],
)
def test_text_writes_dates_as_their_isoformat(moment: date) -> None:
    row = {"created_at": moment, "nested": {"at": [moment]}}
    assert json.loads(fastjson.text(row, default=_plain)) == json.loads(json.dumps(row, default=_plain))
    assert json.loads(fastjson.text(row, default=_plain))["created_at"] == moment.isoformat()


def test_text_takes_the_callers_default_for_what_orjson_refuses() -> None:
    row = {"when": datetime(2026, 1, 2, tzinfo=UTC), "big": 2**70, 7: "key"}
    assert fastjson.text(row, default=_plain) == json.dumps(row, default=_plain)
    with pytest.raises(TypeError):
        fastjson.text({"x": 2**70, "y": object()}, default=_plain)


def test_a_nan_or_an_infinity_is_written_as_null() -> None:
    # The one difference left (see the module): JSON has no NaN; the boundaries refuse one before it gets here.
    assert fastjson.compact_bytes({"x": float("nan")}) == b'{"x":null}'
    assert json.loads(fastjson.text([float("inf")])) == [None]
