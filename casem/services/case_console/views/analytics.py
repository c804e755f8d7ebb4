"""Analytics: charts of the org's cases (uPlot, drawn in the browser from numbers the server computes)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from casem.app.console.analytics import load_analytics
from casem.services.case_console.web import Visitor, render, visitor

router = APIRouter()


@router.get("/analytics")
async def analytics(request: Request, who: Visitor = Depends(visitor)) -> Response:
    async with who.uow(read_only=True) as uow:
        found = await load_analytics(uow, who.org_id)
    return render(request, "analytics.html", analytics=found, chart_data=found.chart_data())
