"""Answer documents of the watcher routes (serialize_watcher in views.py)."""

from __future__ import annotations

from typing import Literal

from casem.services.case_api.schemas import Answer, ToOne


class WatcherRelationships(Answer):
    user: ToOne


class WatcherResource(Answer):
    id: str
    type: Literal["watcher"]
    relationships: WatcherRelationships


class WatchersResponse(Answer):
    data: list[WatcherResource]
