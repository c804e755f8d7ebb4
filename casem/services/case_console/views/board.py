"""The board: a project's cases by status; drag a card (or move it with the keyboard) to change its status."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from casem.app.console.board import load_board
from casem.services.case_console.web import Visitor, render, visitor

router = APIRouter()


@router.get("/board")
async def board(request: Request, project: str = "", part: str = "", who: Visitor = Depends(visitor)) -> Response:
    async with who.uow(read_only=True) as uow:
        found = await load_board(uow, who.org_id, project or None)
    return render(request, "_board_columns.html" if part == "columns" else "board.html", board=found)
