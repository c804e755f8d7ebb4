"""The import file, validated up front so a malformed file names its bad record before anything is written."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from casem.app.ids import UUID_RE
from casem.domain.cases import STANDARD_TYPE_ID

FORMAT_VERSION = 1


class ImportFileError(Exception):
    """The file cannot be imported; the message names the record and field."""


def _uuid(value: str) -> str:
    if not UUID_RE.match(value):
        raise ValueError(f"{value!r} is not a UUID")
    return value.lower()


Id = Annotated[str, AfterValidator(_uuid)]


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False)

    def given(self) -> set[str]:
        """Fields the file spelled out: only those are compared with a stored record."""
        return set(self.model_fields_set)


class UserRecord(Record):
    id: Id
    email: str
    handle: str | None = None
    name: str | None = None
    title: str | None = None
    disabled: bool = False
    service_account: bool = False


class TeamRecord(Record):
    id: Id
    handle: str
    name: str
    description: str | None = None
    avatar: str | None = None
    banner: int | None = None


class KeyRecord(Record):
    id: Id
    kind: Literal["api", "application"]
    name: str
    user_id: Id | None = None
    secret: str | None = Field(default=None, min_length=8)
    key_hash: str | None = None
    last4: str = Field(default="", max_length=4)

    @model_validator(mode="after")
    def _one_secret(self) -> KeyRecord:
        # Neither: only with --reissue-keys (a Datadog export has no secrets), checked when importing.
        if self.secret is not None and self.key_hash is not None:
            raise ValueError("give one of the fields 'secret' and 'key_hash', not both")
        if self.kind == "application" and self.user_id is None:
            raise ValueError("an application key acts as a user: give its 'user_id'")
        return self


class CaseTypeRecord(Record):
    id: Id
    name: str
    description: str = ""
    emoji: str = ""


class CustomAttributeRecord(Record):
    id: Id
    case_type_id: Id
    key: str
    display_name: str
    type: str
    is_multi: bool = False
    description: str = ""
    options: list[str] | None = None
    map_from: str | None = None


class ProjectRecord(Record):
    id: Id
    key: str
    name: str
    team_id: Id | None = None
    enabled_custom_case_types: list[Id] = Field(default_factory=list)
    settings: dict[str, Any] | None = None  # Datadog's ProjectSettings, checked as the API checks them


class TimelineCellRecord(Record):
    """A cell of a case's timeline as the source has it: a comment or a change, kept as history."""

    id: Id
    type: str = Field(min_length=1, max_length=32)
    content: dict[str, Any] = Field(default_factory=dict)
    author_id: Id | None = None
    created_at: datetime
    modified_at: datetime | None = None
    deleted_at: datetime | None = None


class CaseRecord(Record):
    id: Id
    project_id: Id
    key: str  # PROJ-12: kept as is, so links to the case keep working
    title: str
    description: str = ""
    type_id: Id = STANDARD_TYPE_ID
    status: str = "OPEN"
    priority: str = "NOT_DEFINED"
    assignee_id: Id | None = None
    attributes: dict[str, list[str]] = Field(default_factory=dict)
    custom_attributes: dict[str, Any] = Field(default_factory=dict)
    due_date: date | None = None
    resolved_reason: str | None = None
    created_at: datetime | None = None
    created_by_id: Id | None = None
    closed_at: datetime | None = None
    archived_at: datetime | None = None
    modified_at: datetime | None = None
    modified_by_id: Id | None = None
    # The case's history: given, it replaces the cell casem would write for the case's creation.
    timeline: list[TimelineCellRecord] | None = None
    watchers: list[Id] | None = None  # user ids


class LinkRecord(Record):
    id: Id
    parent_entity_type: str
    parent_entity_id: str
    child_entity_type: str
    child_entity_id: str
    relationship: str


class ViewRecord(Record):
    id: Id
    project_id: Id
    name: str
    query: str
    np_rule_id: Id | None = None


class AutomationRuleRecord(Record):
    id: Id
    project_id: Id
    name: str
    state: str = "ENABLED"
    trigger: dict[str, Any]
    action: dict[str, Any]


class NotificationRuleRecord(Record):
    id: Id
    project_id: Id
    triggers: list[dict[str, Any]]
    recipients: list[dict[str, Any]]
    query: str = ""
    is_enabled: bool = True


class OrgRecord(Record):
    id: Id
    name: str
    users: list[UserRecord] = Field(default_factory=list)
    teams: list[TeamRecord] = Field(default_factory=list)
    keys: list[KeyRecord] = Field(default_factory=list)
    case_types: list[CaseTypeRecord] = Field(default_factory=list)
    custom_attributes: list[CustomAttributeRecord] = Field(default_factory=list)
    projects: list[ProjectRecord] = Field(default_factory=list)
    notification_rules: list[NotificationRuleRecord] = Field(default_factory=list)
    automation_rules: list[AutomationRuleRecord] = Field(default_factory=list)
    views: list[ViewRecord] = Field(default_factory=list)
    cases: list[CaseRecord] = Field(default_factory=list)
    links: list[LinkRecord] = Field(default_factory=list)


class ImportDocument(Record):
    version: Literal[1]
    orgs: list[OrgRecord]


def _where(raw: Any, loc: tuple[Any, ...]) -> tuple[str, str]:
    """Split a validation location into the record (`orgs[0].cases[3] (id ...)`) and the field inside it."""
    record, node, i = "", raw, 0
    while i + 1 < len(loc) and isinstance(loc[i], str) and isinstance(loc[i + 1], int):
        record += f"{'.' if record else ''}{loc[i]}[{loc[i + 1]}]"
        try:
            node = node[loc[i]][loc[i + 1]]
        except (KeyError, IndexError, TypeError):
            node = None
        i += 2
    ident = node.get("id") if isinstance(node, dict) else None
    if ident is not None and record:
        record += f" (id {ident})"
    field = ".".join(str(p) for p in loc[i:])
    return record or "the file", field


def load(path: Path) -> ImportDocument:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ImportFileError(f"{path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise ImportFileError(f"{path}: malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    try:
        return ImportDocument.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        record, field = _where(raw, tuple(first["loc"]))
        kind, message = first["type"], first["msg"].removeprefix("Value error, ")
        what = {"missing": "is required", "extra_forbidden": "is not a known field"}.get(kind, message)
        problem = f"field {field!r} {what}" if field else what
        more = f" (and {exc.error_count() - 1} more problem(s))" if exc.error_count() > 1 else ""
        raise ImportFileError(f"{path}: {record}: {problem}{more}") from None
