"""A change made in Jira or ServiceNow, as the connector ingress publishes it and the third-party reader applies it.

The message is a CloudEvents 1.0 envelope (structured JSON, like casem's domain events, so `casem dlq` and any
consumer read it): `type` is `com.casem.integration.<system>.<kind>.v1`, `subject` the remote issue, and the
extension attributes `orgid`, `tenant` and `accountid` say whose it is. It is keyed by the remote issue
(`<account id>:<issue id>`), so one issue's changes are applied in order.

Ids are deterministic, from the remote's own ids (a Jira changelog or comment id, a ServiceNow record's
sys_mod_count or journal entry), so a webhook and the reconciliation poll that sees the same change
publish the same id, and the reader applies it once.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from casem.app.events import PoisonMessage

KINDS = ("issue_created", "issue_updated", "issue_deleted", "comment_created", "comment_updated", "comment_deleted")
TYPE_PREFIX = "com.casem.integration."
SOURCE = "casem/case-connector-ingress"


@dataclass(frozen=True)
class RemoteEvent:
    id: str
    system: str
    kind: str
    tenant: str
    org_id: str
    account_id: str
    issue_id: str
    issue_key: str
    occurred_at: datetime
    source: str  # "webhook" or "poll"
    actor: dict[str, Any] | None = None  # {"id", "name", "email"} of whoever made the change over there
    changes: dict[str, Any] = field(default_factory=dict)  # title, description, status, priority, assignee, due_date
    comment: dict[str, Any] | None = None  # {"id", "body", "author", "created", "updated"}

    @property
    def key(self) -> bytes:
        return f"{self.account_id}:{self.issue_id}".encode()

    @property
    def is_comment(self) -> bool:
        return self.kind.startswith("comment_")

    def envelope(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if k not in ("id", "tenant", "org_id", "occurred_at")}
        return {
            "specversion": "1.0",
            "id": self.id,
            "source": f"{SOURCE}/{self.system}",
            "type": f"{TYPE_PREFIX}{self.system}.{self.kind}.v1",
            "subject": f"{self.system}-issue/{self.issue_id}",
            "time": self.occurred_at.isoformat().replace("+00:00", "Z"),
            "datacontenttype": "application/json",
            "orgid": self.org_id,
            "tenant": self.tenant,
            "accountid": self.account_id,
            "data": data,
        }

    def to_bytes(self) -> bytes:
        return json.dumps(self.envelope(), separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> RemoteEvent:
        try:
            envelope = json.loads(raw)
            kind_type: str = envelope["type"]
            if not kind_type.startswith(TYPE_PREFIX):
                raise PoisonMessage(f"not a casem integration event: {kind_type!r}")
            data = envelope["data"]
            event = cls(
                id=envelope["id"],
                system=data["system"],
                kind=data["kind"],
                tenant=envelope["tenant"],
                org_id=envelope["orgid"],
                account_id=data["account_id"],
                issue_id=str(data["issue_id"]),
                issue_key=str(data["issue_key"]),
                occurred_at=datetime.fromisoformat(envelope["time"].replace("Z", "+00:00")),
                source=data.get("source", "webhook"),
                actor=data.get("actor"),
                changes=data.get("changes") or {},
                comment=data.get("comment"),
            )
        except PoisonMessage:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise PoisonMessage(f"not a casem integration event: {exc}") from exc
        if event.kind not in KINDS:
            raise PoisonMessage(f"unknown integration event kind {event.kind!r}")
        return event
