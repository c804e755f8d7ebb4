"""JSON:API as Datadog serves it: request parsing with precise errors, and error bodies."""

from __future__ import annotations

import json
import math
import re
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from casem.domain.errors import InvalidInput, TooLarge

MAX_BODY_BYTES = 1_048_576
MAX_JSON_DEPTH = 32  # JSON:API documents nest a handful of levels; custom attribute values a few more
MAX_INTEGER = 2**63 - 1  # 64-bit, as every engine stores and Datadog's clients send

JSONAPI = "application/vnd.api+json"
M = TypeVar("M", bound=BaseModel)
_FORBIDDEN_CHARACTERS = re.compile("[\x00\ud800-\udfff]")  # NUL (no engine stores it) and lone surrogates


def error_response(
    status: int,
    title: str,
    detail: str,
    pointer: str | None = None,
    headers: dict[str, str] | None = None,
    *,
    parameter: str | None = None,
) -> JSONResponse:
    """A JSON:API error document; `pointer` names a member of the request body ("" the whole body),
    `parameter` a query parameter."""
    item: dict[str, Any] = {"status": str(status), "title": title, "detail": detail}
    if pointer is not None:
        item["source"] = {"pointer": pointer}
    elif parameter is not None:
        item["source"] = {"parameter": parameter}
    return JSONResponse({"errors": [item]}, status_code=status, headers=headers)


def forbidden() -> JSONResponse:
    # Datadog's authentication layer answers a bare list of messages.
    return JSONResponse({"errors": ["Forbidden"]}, status_code=403)


class _Oversized:
    """A number the decoder met that casem cannot store: reported with its pointer after decoding."""

    def __init__(self, text: str) -> None:
        self.text = text


def _integer(text: str) -> int | _Oversized:
    # Checked on the text: int() of a 5,000-digit literal raises (Python's digit limit) instead of parsing.
    if len(text.lstrip("-")) > 19:
        return _Oversized(text)
    value = int(text)
    return value if -MAX_INTEGER - 1 <= value <= MAX_INTEGER else _Oversized(text)


def _real(text: str) -> float | _Oversized:
    value = float(text)
    return value if math.isfinite(value) else _Oversized(text)


def _constant(text: str) -> Any:
    raise _NotJson(f"{text} is not a JSON value")


class _NotJson(ValueError):
    pass


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def check_document(document: Any) -> None:
    """Walk a decoded document (iteratively: its depth is what is checked) and refuse, with the member's
    pointer, what casem cannot handle: nesting deeper than MAX_JSON_DEPTH, numbers beyond 64 bits or
    infinite, NUL characters and lone surrogates in strings and member names."""
    stack: list[tuple[Any, str, int]] = [(document, "", 0)]
    while stack:
        value, pointer, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth >= MAX_JSON_DEPTH:
                raise InvalidInput(f"the document nests deeper than {MAX_JSON_DEPTH} levels", pointer)
            if isinstance(value, dict):
                for key, item in value.items():
                    child = f"{pointer}/{_escape(key)}"
                    if _FORBIDDEN_CHARACTERS.search(key):
                        raise InvalidInput(_character_problem(key, "member name"), pointer)
                    stack.append((item, child, depth + 1))
            else:
                stack.extend((item, f"{pointer}/{index}", depth + 1) for index, item in enumerate(value))
        elif isinstance(value, str):
            if _FORBIDDEN_CHARACTERS.search(value):
                raise InvalidInput(_character_problem(value, "string"), pointer)
        elif isinstance(value, _Oversized):
            raise InvalidInput(
                "the number is out of range: integers must fit in 64 bits and numbers be finite", pointer
            )


def _character_problem(text: str, what: str) -> str:
    found = _FORBIDDEN_CHARACTERS.search(text)
    assert found is not None
    char = found.group()
    if char == "\x00":
        return f"the {what} holds a NUL character (\\u0000), which casem does not store"
    return f"the {what} holds a lone UTF-16 surrogate (\\u{ord(char):04x}): it is not valid Unicode text"


def decode_json(raw: bytes) -> Any:
    """A request body as JSON, or InvalidInput (400) saying what is wrong and where: not UTF-8 (the byte
    offset), malformed JSON (line and column), too deep, numbers out of range, NUL or lone surrogates."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"the request body is not valid UTF-8 (byte {exc.start}): send JSON as UTF-8", "") from None
    text = text.removeprefix("\ufeff")
    try:
        document = json.loads(text, parse_int=_integer, parse_float=_real, parse_constant=_constant)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}", "") from None
    except RecursionError:
        raise InvalidInput(f"the document nests deeper than {MAX_JSON_DEPTH} levels", "") from None
    except _NotJson as exc:
        raise InvalidInput(f"malformed JSON: {exc}", "") from None
    check_document(document)
    return document


async def read_json(request: Request) -> Any:
    raw = await request.body()  # the body limit (BodyLimit) stops an oversized body while it streams
    if len(raw) > MAX_BODY_BYTES:
        raise TooLarge(f"the request body is larger than the {MAX_BODY_BYTES} byte limit", MAX_BODY_BYTES, "")
    if not raw.strip():
        raise InvalidInput("request body is empty: expected a JSON:API document with a `data` member", "")
    return decode_json(raw)


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
