"""HTTP views for case watchers (Datadog CaseManagementApi list_case_watchers, watch_case, unwatch_case)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response
from sqlalchemy.exc import IntegrityError

from casem.adapters.storage.conflicts import is_unique_violation
from casem.app.watchers import service
from casem.domain.identity import Watcher
from casem.services.case_api.http import Caller, caller
from casem.services.case_api.openapi import contract
from casem.services.case_api.watchers.schemas import WatchersResponse

router = APIRouter(prefix="/api/v2/cases/{case_id}/watchers", tags=["watchers"])


def serialize_watcher(w: Watcher) -> dict[str, Any]:
    # A watcher is identified by its user: a user watches a case at most once.
    return {
        "id": w.user_id,
        "type": "watcher",
        "relationships": {"user": {"data": {"id": w.user_id, "type": "users"}}},
    }


@router.get("")
@contract(returns=WatchersResponse)
async def list_case_watchers(case_id: str, who: Caller = Depends(caller)) -> dict[str, Any]:
    async with who.uow(read_only=True) as uow:
        found = await service.list_watchers(uow, who.org_id, case_id)
    return {"data": [serialize_watcher(w) for w in found]}


@router.post("/{user_uuid}", status_code=201, response_class=Response)  # no body, as Datadog answers
async def watch_case(case_id: str, user_uuid: str, who: Caller = Depends(caller)) -> Response:
    for attempt in range(2):
        try:
            async with who.uow() as uow:
                await service.watch(uow, who.org_id, who.user_id, case_id, user_uuid)
                await uow.commit()
            break
        except IntegrityError as exc:
            # A concurrent watch of the same user won the race: retrying finds it and is a no-op.
            if attempt or not is_unique_violation(exc):
                raise
    return Response(status_code=201)


@router.delete("/{user_uuid}", status_code=204)
async def unwatch_case(case_id: str, user_uuid: str, who: Caller = Depends(caller)) -> Response:
    async with who.uow() as uow:
        await service.unwatch(uow, who.org_id, who.user_id, case_id, user_uuid)
        await uow.commit()
    return Response(status_code=204)
