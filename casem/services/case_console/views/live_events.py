"""GET /live: server-sent events telling an open page what changed in its org (see live.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import StreamingResponse

from casem.services.case_console.web import Visitor, visitor

router = APIRouter()

KEEPALIVE_SECONDS = 15.0


@router.get("/live")
async def live(request: Request, who: Visitor = Depends(visitor)) -> Response:
    feed = request.app.state.live
    if feed is None:
        return Response(status_code=204)  # no bus here: EventSource stops asking on 204

    queue = feed.subscribe(who.org_id)

    async def stream() -> AsyncIterator[bytes]:
        try:
            yield b"retry: 2000\n: connected\n\n"
            while True:
                try:
                    notice = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    if await request.is_disconnected():
                        return
                    yield b": keep-alive\n\n"
                    continue
                yield f"event: change\ndata: {notice.to_json()}\n\n".encode()
        finally:
            feed.unsubscribe(who.org_id, queue)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
