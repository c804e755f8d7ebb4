"""Orgs, users, teams and API/application keys. Keys are stored as hashes only."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime

from casem.domain.events import EventRecorder, utcnow


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
