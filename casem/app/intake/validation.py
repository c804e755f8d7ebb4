"""Intake validation: the HTTP API's rules and messages, through the same domain validators and checks.

Stateless rules first (title, description, priority, attributes, ids), then what needs the org's data
(the project exists, the type exists and is enabled there, custom attributes fit the type's configs),
read with the very functions case creation uses. An intake that passes here is one IngestCase accepts,
so the indexer does not dead-letter what case-intake acknowledged, unless its project or type is deleted meanwhile:
after acceptance, or within the few seconds case-intake remembers it as live (see KnownReferences).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.cache import TtlCache
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


@dataclass(frozen=True)
class ProjectFacts:
    """What an intake's checks need of a project."""

    key: str
    enabled_custom_case_types: frozenset[str]


class KnownReferences:
    """The live projects and case types case-intake found, by org, remembered for `ttl_s`: a producer sends batch
    after batch into the same few projects, and reading the project again for each batch was most of a batch's
    work. Only what exists is remembered, so a project or type made a moment ago is found at once; one deleted
    meanwhile is still taken for live for up to `ttl_s`, and case creation, which reads it again, refuses its
    intakes then (as it does for one deleted between acceptance and creation)."""

    ttl_s = 5.0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.projects: TtlCache[tuple[str, str], ProjectFacts] = TtlCache(self.ttl_s, clock=clock)
        self.types: TtlCache[tuple[str, str], bool] = TtlCache(self.ttl_s, clock=clock)


class DataChecks:
    """The checks that read the org's projects, types and attribute configs, for one call: a unit of work is opened
    only for what `known` does not hold (custom attribute values are always checked against the configs read)."""

    def __init__(self, open_uow: Callable[[], UnitOfWork], org_id: str, known: KnownReferences) -> None:
        self._open_uow = open_uow
        self.org_id = org_id
        self.known = known
        self._exit = contextlib.AsyncExitStack()
        self._uow: UnitOfWork | None = None

    async def __aenter__(self) -> DataChecks:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._exit.aclose()

    async def _reader(self) -> UnitOfWork:
        if self._uow is None:
            self._uow = await self._exit.enter_async_context(self._open_uow())
        return self._uow

    async def check(self, intake: intake_pb2.CaseIntake) -> None:
        type_id = intake.type_id or STANDARD_TYPE_ID
        if type_id != STANDARD_TYPE_ID and not self.known.types.get((self.org_id, type_id)):
            await cases.check_type(await self._reader(), self.org_id, type_id, "/type_id")
            self.known.types.put((self.org_id, type_id), True)
        project = self.known.projects.get((self.org_id, intake.project_id))
        if project is None:
            found = await (await self._reader()).get(Project, self.org_id, intake.project_id, resource="project")
            project = ProjectFacts(found.key, frozenset(found.enabled_custom_case_types or ()))
            self.known.projects.put((self.org_id, intake.project_id), project)
        if (
            type_id != STANDARD_TYPE_ID
            and project.enabled_custom_case_types
            and type_id not in project.enabled_custom_case_types
        ):
            raise InvalidInput(f"case type {type_id} is not enabled in project {project.key}", "/type_id")
        custom: dict[str, Any] = convert.struct_to_dict(intake.custom_attributes)
        if custom:
            await cases.coerce_custom_attributes(
                await self._reader(), self.org_id, type_id, custom, "/custom_attributes"
            )
