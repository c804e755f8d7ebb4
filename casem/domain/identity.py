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

    def disable(self, actor_id: str | None) -> bool:
        """Datadog's DELETE /api/v2/users/{id}: the user stays (their history keeps its author) but can no longer
        sign in or be paged. False when already disabled."""
        if self.disabled:
            return False
        self.disabled = True
        self.modified_at = utcnow()
        self.record(
            DomainEvent(
                type="user.disabled",
                org_id=self.org_id,
                actor_id=actor_id,
                subject_id=self.id,
                subject_type="user",
                data={"handle": self.handle},
            )
        )
        return True


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

    def _event(self, kind: str, actor_id: str | None, data: dict[str, Any]) -> None:
        self.record(
            DomainEvent(
                type=f"team.{kind}",
                org_id=self.org_id,
                actor_id=actor_id,
                subject_id=self.id,
                subject_type="team",
                data={"handle": self.handle, **data},
            )
        )

    def update(self, actor_id: str | None, **changes: Any) -> bool:
        effective = {k: v for k, v in changes.items() if getattr(self, k) != v}
        if not effective:
            return False
        old_handle = self.handle
        for name, value in effective.items():
            setattr(self, name, value)
        self.modified_at = utcnow()
        self._event("updated", actor_id, {"changes": effective, "old_handle": old_handle})
        return True

    def record_deleted(self, actor_id: str | None) -> None:
        self._event("deleted", actor_id, {"name": self.name})

    def record_member(self, kind: str, user_id: str, role: str | None, actor_id: str | None) -> None:
        """A membership was added, changed or removed (`kind`): the caller writes the membership row."""
        self._event(f"member_{kind}", actor_id, {"user_id": user_id, "role": role})


def _created(kind: str, subject_id: str, org_id: str, actor_id: str | None, data: dict[str, Any]) -> DomainEvent:
    return DomainEvent(
        type=f"{kind}.created", org_id=org_id, actor_id=actor_id, subject_id=subject_id, subject_type=kind, data=data
    )


API_KEY = "api"
APP_KEY = "application"
PAT = "pat"  # a personal access token: acts as its user in DD-APPLICATION-KEY until it expires


@dataclass(eq=False)
class Credential(EventRecorder):
    """An API key (org-scoped), an application key or a personal access token (both acting as a user)."""

    id: str
    org_id: str
    kind: str  # API_KEY or APP_KEY
    key_hash: str
    name: str
    user_id: str | None = None  # application keys act as this user
    last4: str = ""
    created_at: datetime = field(default_factory=utcnow)
    revoked_at: datetime | None = None
    # Added by the Key Management API: who made and last changed the key, and Datadog's API key settings.
    modified_at: datetime | None = None
    created_by: str | None = None
    modified_by: str | None = None
    category: str | None = None
    remote_config_read_enabled: bool = False
    # Personal access tokens only: when they stop working, their granted scopes, the token's public prefix
    # (shown in listings, unlike the secret) and when it last authenticated (updated at most once a minute).
    expires_at: datetime | None = None
    scopes: list[str] | None = None
    public_portion: str | None = None
    last_used_at: datetime | None = None

    @property
    def resource(self) -> str:
        return {API_KEY: "api_key", PAT: "personal_access_token"}.get(self.kind, "application_key")

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    def record_created(self, actor_id: str | None) -> None:
        self.created_by = actor_id
        self._record("created", actor_id, {})

    def update(self, actor_id: str | None, **changes: Any) -> None:
        """Rename or re-set the key's settings; records which fields changed (never the secret or its hash)."""
        changed = {name: value for name, value in changes.items() if getattr(self, name) != value}
        for name, value in changed.items():
            setattr(self, name, value)
        self.modified_at, self.modified_by = utcnow(), actor_id
        self._record("updated", actor_id, {"changed": sorted(changed)})

    def revoke(self, actor_id: str | None) -> None:
        """From now on the key authenticates nothing; the row stays for the audit trail."""
        self.revoked_at = self.modified_at = utcnow()
        self.modified_by = actor_id
        self._record("revoked", actor_id, {})

    def _record(self, what: str, actor_id: str | None, data: dict[str, Any]) -> None:
        data = {"name": self.name, "last4": self.last4, "owner_id": self.user_id, **data}
        self.record(
            DomainEvent(
                type=f"{self.resource}.{what}",
                org_id=self.org_id,
                actor_id=actor_id,
                subject_id=self.id,
                subject_type=self.resource,
                data=data,
            )
        )

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


PAT_PREFIX = "casempat_"


def new_personal_access_token() -> tuple[str, str]:
    """(public portion, whole token). The public portion names the token in listings and logs; only the whole
    token's hash is stored."""
    public = PAT_PREFIX + secrets.token_hex(8)
    return public, f"{public}_{secrets.token_urlsafe(30)}"


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
