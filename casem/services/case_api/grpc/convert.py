"""Translation between casem.v1 messages and the domain (no logic beyond shape and enum mapping)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf import struct_pb2, timestamp_pb2

from casem.app.intake.convert import PRIORITY_PREFIX, STATUS_PREFIX
from casem.domain.cases import Case
from casem.domain.projects import Project
from casem.domain.timeline import TimelineCell
from casem.proto_gen.casem.v1 import case_api_pb2 as pb
from casem.proto_gen.casem.v1 import types_pb2


def status_to_proto(status: str) -> int:
    return types_pb2.CaseStatus.Value(STATUS_PREFIX + status)


def priority_to_proto(priority: str) -> int:
    return types_pb2.CasePriority.Value(PRIORITY_PREFIX + priority)


def timestamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    ts = timestamp_pb2.Timestamp()
    # SQLite hands back naive datetimes; every stored time is UTC.
    ts.FromDatetime(value if value.tzinfo else value.replace(tzinfo=UTC))
    return ts


def dict_to_struct(values: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(values)
    return struct


def case_to_proto(case: Case) -> pb.Case:
    message = pb.Case(
        id=case.id,
        key=case.key,
        project_id=case.project_id,
        number=case.number,
        title=case.title,
        description=case.description,
        status=status_to_proto(case.status),
        priority=priority_to_proto(case.priority),
        type_id=case.type_id,
        assignee_id=case.assignee_id,
        attributes={k: types_pb2.AttributeValues(values=v) for k, v in case.attributes.items()},
        custom_attributes=dict_to_struct(case.custom_attributes),
        created_by_id=case.created_by_id,
        modified_by_id=case.modified_by_id,
        created_at=timestamp(case.created_at),
        modified_at=timestamp(case.modified_at),
        closed_at=timestamp(case.closed_at),
        archived_at=timestamp(case.archived_at),
        intake_key=case.intake_key,
        resolved_reason=case.resolved_reason,
        due_date=case.due_date.isoformat() if case.due_date else None,
    )
    return message


def project_to_proto(project: Project) -> pb.Project:
    return pb.Project(
        id=project.id,
        key=project.key,
        name=project.name,
        team_id=project.team_id,
        enabled_custom_case_types=project.enabled_custom_case_types,
        created_by_id=project.created_by_id,
        created_at=timestamp(project.created_at),
        modified_at=timestamp(project.modified_at),
    )


def cell_to_proto(cell: TimelineCell) -> pb.TimelineCell:
    return pb.TimelineCell(
        id=cell.id,
        case_id=cell.case_id,
        type=cell.type,
        author_id=cell.author_id,
        content=dict_to_struct(cell.shown_content),
        created_at=timestamp(cell.created_at),
        modified_at=timestamp(cell.modified_at),
    )
