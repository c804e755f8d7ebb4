"""Orgs, users, teams and API/application keys. Keys are stored as hashes only."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from casem.domain.events import DomainEvent, EventRecorder, utcnow


@dataclass(eq=False)
class Org(EventRecorder):
    id: str
    name: str
    created_at: datetime = field(default_factory=utcnow)


@dataclass(eq=False)
class User(EventRecorder):
    id: str
    org_id: str
    email: str
    handle: str
    name: str | None = None
    title: str | None = None
    disabled: bool = False
    service_account: bool = False
    created_at: datetime = field(default_factory=utcnow)
    modified_at: datetime | None = None

    def record_created(self, actor_id: str | None) -> None:
        self.record(_created("user", self.id, self.org_id, actor_id, {"handle": self.handle}))


@dataclass(eq=False)
class Team(EventRecorder):
    id: str
    org_id: str
    handle: str
    name: str
    description: str | None = None
    avatar: str | None = None
    banner: int | None = None
    created_at: datetime = field(default_factory=utcnow)
    modified_at: datetime | None = None
    visible_modules: list[str] | None = None
    hidden_modules: list[str] | None = None

    def record_created(self, actor_id: str | None) -> None:
        self.record(_created("team", self.id, self.org_id, actor_id, {"handle": self.handle, "name": self.name}))


def _created(kind: str, subject_id: str, org_id: str, actor_id: str | None, data: dict[str, Any]) -> DomainEvent:
    return DomainEvent(
        type=f"{kind}.created", org_id=org_id, actor_id=actor_id, subject_id=subject_id, subject_type=kind, data=data
    )


API_KEY = "api"
APP_KEY = "application"


@dataclass(eq=False)
class Credential(EventRecorder):
    """An API key (org-scoped) or an application key (acting as a user)."""

    id: str
    org_id: str
    kind: str  # API_KEY or APP_KEY
    key_hash: str
    name: str
    user_id: str | None = None  # application keys act as this user
    last4: str = ""
    created_at: datetime = field(default_factory=utcnow)
    revoked_at: datetime | None = None

    def rotate(self, key_hash: str, last4: str) -> None:
        """A new secret for the key (an import's --reissue-keys): the old one stops working at commit. The event
        names the key, never its hash."""
        self.key_hash, self.last4 = key_hash, last4
        self.record(
            DomainEvent(
                type="credential.rotated",
                org_id=self.org_id,
                actor_id=None,
                subject_id=self.id,
                subject_type="credential",
                data={"name": self.name, "kind": self.kind, "last4": last4},
            )
        )


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_api_key() -> str:
    return secrets.token_hex(16)  # 32 hex characters, as Datadog API keys


def new_app_key() -> str:
    return secrets.token_hex(20)  # 40 hex characters, as Datadog application keys


@dataclass(eq=False)
class Watcher(EventRecorder):
    case_id: str
    user_id: str
    org_id: str
    created_at: datetime = field(default_factory=utcnow)

    @classmethod
    def add(cls, case: Any, user_id: str, actor_id: str | None) -> Watcher:
        """A new watcher of the case, with its `case.watcher_added` event.

        The event is recorded on the Watcher row rather than on the case: the case is not modified, and
        the unit of work holds new and deleted rows until the flush.
        """
        watcher = cls(case_id=case.id, user_id=user_id, org_id=case.org_id)
        watcher.record(_watcher_event(case, "added", actor_id, user_id))
        return watcher

    def remove(self, case: Any, actor_id: str | None) -> None:
        """Record `case.watcher_removed`; the caller deletes the row in the same unit of work."""
        self.record(_watcher_event(case, "removed", actor_id, self.user_id))


def _watcher_event(case: Any, kind: str, actor_id: str | None, user_id: str) -> DomainEvent:
    return DomainEvent(
        type=f"case.watcher_{kind}",
        org_id=case.org_id,
        actor_id=actor_id,
        subject_id=case.id,
        case_id=case.id,
        data={"user_id": user_id, "key": case.key, "project_id": case.project_id},
    )
