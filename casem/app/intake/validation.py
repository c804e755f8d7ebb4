"""Intake validation: the HTTP API's rules and messages, through the same domain validators and checks.

Stateless rules first (title, description, priority, attributes, ids), then what needs the org's data
(the project exists, the type exists and is enabled there, custom attributes fit the type's configs),
read with the very functions case creation uses. An intake that passes here is one IngestCase accepts,
so the indexer does not dead-letter what case-intake acknowledged.
"""

from __future__ import annotations

from typing import Any

from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.cases import service as cases
from casem.app.ids import UUID_RE
from casem.app.intake import convert
from casem.domain.cases import STANDARD_TYPE_ID, validate_attributes, validate_description, validate_title
from casem.domain.errors import InvalidInput
from casem.domain.projects import Project
from casem.proto_gen.casem.v1 import intake_pb2

INTAKE_SCHEMA_VERSIONS = frozenset({1})
INTAKE_KEY_MAX = 255  # the cases.intake_key column


def validate_shape(intake: intake_pb2.CaseIntake) -> None:
    """Checks that need no data, with gRPC request pointers (as CaseAPI reports them)."""
    if intake.schema_version not in INTAKE_SCHEMA_VERSIONS:
        known = ", ".join(str(v) for v in sorted(INTAKE_SCHEMA_VERSIONS))
        raise InvalidInput(f"unknown intake schema_version {intake.schema_version}; known: {known}", "/schema_version")
    if not intake.intake_key:
        raise InvalidInput("an intake needs its intake_key (the idempotency key)", "/intake_key")
    if len(intake.intake_key) > INTAKE_KEY_MAX:
        raise InvalidInput(f"intake_key is longer than {INTAKE_KEY_MAX} characters", "/intake_key")
    validate_title(intake.title, "/title")
    validate_description(intake.description, "/description")
    convert.priority_from_proto(intake.priority)
    validate_attributes(convert.attributes_from_proto(intake.attributes), "/attributes")
    if not UUID_RE.match(intake.project_id):
        raise InvalidInput(f"project id {intake.project_id!r} is not a valid UUID", "/project_id")
    if intake.type_id and not UUID_RE.match(intake.type_id):
        raise InvalidInput(f"type_id {intake.type_id!r} is not a valid UUID", "/type_id")


class DataChecks:
    """The checks that read the org's projects, types and attribute configs; memoised for one call
    (a batch usually targets a few projects and types)."""

    def __init__(self, uow: UnitOfWork, org_id: str) -> None:
        self.uow = uow
        self.org_id = org_id
        self._projects: dict[str, Project] = {}
        self._types: dict[str, str] = {}

    async def check(self, intake: intake_pb2.CaseIntake) -> None:
        type_id = intake.type_id or STANDARD_TYPE_ID
        if type_id not in self._types:
            self._types[type_id] = await cases.check_type(self.uow, self.org_id, type_id, "/type_id")
        if intake.project_id not in self._projects:
            self._projects[intake.project_id] = await self.uow.get(
                Project, self.org_id, intake.project_id, resource="project"
            )
        project = self._projects[intake.project_id]
        if (
            type_id != STANDARD_TYPE_ID
            and project.enabled_custom_case_types
            and type_id not in (project.enabled_custom_case_types)
        ):
            raise InvalidInput(f"case type {type_id} is not enabled in project {project.key}", "/type_id")
        custom: dict[str, Any] = convert.struct_to_dict(intake.custom_attributes)
        if custom:
            await cases.coerce_custom_attributes(self.uow, self.org_id, type_id, custom, "/custom_attributes")
