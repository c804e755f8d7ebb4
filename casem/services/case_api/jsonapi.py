"""JSON:API as Datadog serves it: request parsing with precise errors, and error bodies."""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from casem.domain.errors import InvalidInput

MAX_BODY_BYTES = 1_048_576

JSONAPI = "application/vnd.api+json"
M = TypeVar("M", bound=BaseModel)


def error_response(status: int, title: str, detail: str, pointer: str | None = None) -> JSONResponse:
    item: dict[str, Any] = {"status": str(status), "title": title, "detail": detail}
    if pointer:
        item["source"] = {"pointer": pointer}
    return JSONResponse({"errors": [item]}, status_code=status)


def forbidden() -> JSONResponse:
    # Datadog's authentication layer answers a bare list of messages.
    return JSONResponse({"errors": ["Forbidden"]}, status_code=403)


async def read_json(request: Request) -> Any:
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise InvalidInput(f"request body is {len(raw)} bytes; the limit is {MAX_BODY_BYTES}")
    if not raw:
        raise InvalidInput("request body is empty: expected a JSON:API document with a `data` member")
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None


def _pointer(loc: tuple[Any, ...]) -> str:
    return "/" + "/".join(str(p) for p in loc)


def _describe(err: dict[str, Any]) -> str:
    kind = err.get("type", "")
    where = _pointer(err["loc"])
    if kind == "literal_error" and err["loc"] and err["loc"][-1] == "type":
        # A resource object's or resource identifier's `type`: Datadog's words.
        expected = re.findall(r"'([^']*)'", str((err.get("ctx") or {}).get("expected", "")))
        return f'got type "{err.get("input")}" expected one of ' + ", ".join(f'"{e}"' for e in expected)
    if kind == "missing":
        return f"{where} is required"
    if kind == "extra_forbidden":
        return f"{where} is not a known field"
    if kind in ("literal_error", "enum"):
        return f"{where}: {err['msg']}"
    return f"{where}: {err['msg']}"


def parse_model(model: type[M], document: Any) -> M:
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        raise InvalidInput(_describe(first), _pointer(first["loc"])) from None


async def parse_body(request: Request, model: type[M]) -> M:
    return parse_model(model, await read_json(request))


def iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None
