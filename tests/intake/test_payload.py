"""The canonical payload's intake is its proto3 JSON form, whichever way it is written or read: the direct
shortcuts for intakes of scalar fields agree with protobuf's full mapping key for key, and every intake round trips."""

from __future__ import annotations

import json

from google.protobuf import json_format
from hypothesis import given, settings
from hypothesis import strategies as st

from casem.app.intake.payload import IntakePayload
from casem.proto_gen.casem.v1 import intake_pb2, types_pb2

texts = st.text(max_size=20)
scalars = st.fixed_dictionaries(
    {},
    optional={
        "schema_version": st.integers(0, 2**32 - 1),
        "intake_key": texts,
        "project_id": texts,
        "title": texts,
        "description": texts,
        # Named priorities, and numbers without a name (proto3 enums are open).
        "priority": st.sampled_from(list(types_pb2.CasePriority.values())) | st.integers(0, 40),
        "type_id": texts,
    },
)
extras = st.fixed_dictionaries(
    {},
    optional={
        "attributes": st.dictionaries(
            st.text(min_size=1, max_size=5),
            st.lists(texts, max_size=2).map(lambda values: types_pb2.AttributeValues(values=values)),
            max_size=2,
        ),
        "custom_attributes": st.dictionaries(st.text(max_size=5), st.text(max_size=5) | st.booleans(), max_size=2),
        "source": st.builds(intake_pb2.IntakeSource, system=texts),
    },
)


@settings(max_examples=300, deadline=None)
@given(scalars, extras)
def test_the_payload_holds_the_proto3_json_form_and_round_trips(fields: dict, extra: dict) -> None:  # type: ignore[type-arg]
    intake = intake_pb2.CaseIntake(**fields, **extra)
    payload = IntakePayload("org", "user", intake, "2026-11-30T00:00:00+00:00")
    written = json.loads(payload.to_bytes())["intake"]
    expected = json_format.MessageToDict(intake, preserving_proto_field_name=True)
    assert list(written.items()) == list(expected.items())  # the same keys, in the same order
    assert IntakePayload.from_bytes(payload.to_bytes()).intake == intake
