"""The case search query language, parsed into a small AST (pure: no I/O).

Syntax, after Datadog's case search box:

- free text: ``disk`` matches cases whose title, description, key or comments contain it;
- quoted phrases: ``"disk full"`` (``\\"`` and ``\\\\`` escape inside quotes);
- field filters: ``status:open``, ``priority:P1``, ``project:PROJ``, ``assignee:jane@x.com``,
  ``type:security``, ``key:PROJ-12``, ``archived:true``; any other name is an attribute key:
  ``service:web-store``. A value may be quoted (``team:"site reliability"``) or a parenthesised
  group that applies the field to each value: ``status:(open OR in_progress)``;
- boolean logic: ``AND``, ``OR``, ``NOT`` (upper case only: lower-case ``and`` is a word),
  ``-term`` as negation, parentheses, and an implicit ``AND`` between adjacent terms.

Precedence, tightest first: ``NOT``/``-``, ``AND`` (explicit or implicit), ``OR``; so
``a OR b c`` is ``a OR (b AND c)``. A value runs to the next blank or parenthesis and may hold
colons and dashes (``url:http://x``, ``key:PROJ-1``). A backslash outside quotes makes the next
character literal (``\\-note``, ``a\\:b`` as a word). An empty (or all-blank) query matches every
case.

Limits, checked here before any backend builds a query from the AST: at most ``MAX_QUERY_LENGTH``
characters, ``MAX_QUERY_TERMS`` terms (words, phrases and field values) and ``MAX_QUERY_DEPTH``
levels of parentheses and negations. Deeper or longer queries would only serve to exhaust the SQL
compiler, SQLite's expression depth or the engine's clause limit. Error messages quote at most a
short excerpt of the query.

Values of ``status`` and ``priority`` are normalised here so every backend compares the same
canonical strings (``in progress``, ``in-progress`` and ``In_Progress`` are ``IN_PROGRESS``).
Other comparisons are case-insensitive too; that is each backend's job, the AST keeps the text.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

MAX_QUERY_LENGTH = 4096
MAX_QUERY_TERMS = 100
MAX_QUERY_DEPTH = 16
_EXCERPT = 40

# Field names with a meaning of their own; any other `name:` is an attribute key.
KNOWN_FIELDS = frozenset({"status", "priority", "project", "assignee", "type", "key", "archived"})


class QuerySyntaxError(ValueError):
    """A malformed query: `position` is the 0-based character offset where it goes wrong."""

    def __init__(self, query: str, position: int, expected: str, found: str | None = None) -> None:
        self.query = query
        self.position = position
        self.expected = expected
        self.found = found if found is None or len(found) <= _EXCERPT else found[: _EXCERPT - 1] + "…"
        found_text = "end of query" if self.found is None else repr(self.found)
        super().__init__(f"query syntax error at position {position}: expected {expected}, found {found_text}")


class QueryTooComplex(QuerySyntaxError):
    """A query over one of the limits (length, terms, depth); the message says which and the limit.

    A QuerySyntaxError, so every caller that turns a malformed query into a 400 does the same here."""

    def __init__(self, message: str, position: int = 0) -> None:
        ValueError.__init__(self, message)
        self.query = ""  # not kept: it may be the very input that is too large
        self.position = position
        self.expected = message
        self.found = None


# --- AST --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MatchAll:
    """The empty query."""


@dataclass(frozen=True)
class Text:
    """Free text; `phrase` when it was quoted (its words must appear in that order)."""

    value: str
    phrase: bool = False


@dataclass(frozen=True)
class Field:
    """`name:value`. `name` is lower-cased for the known fields, verbatim for attribute keys."""

    name: str
    value: str
    phrase: bool = False

    @property
    def is_attribute(self) -> bool:
        return self.name not in KNOWN_FIELDS


@dataclass(frozen=True)
class Not:
    child: Node


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]


Node = MatchAll | Text | Field | Not | And | Or


def normalize_field_value(name: str, value: str) -> str:
    """The canonical value of a known field (status and priority are enumerations)."""
    if name == "status":
        return value.strip().upper().replace("-", "_").replace(" ", "_")
    if name == "priority":
        return value.strip().upper().replace("-", "_").replace(" ", "_")
    if name == "archived":
        return value.strip().lower()
    return value


# --- tokens -----------------------------------------------------------------------------------


class _Kind(Enum):
    LPAREN = "'('"
    RPAREN = "')'"
    AND = "AND"
    OR = "OR"
    NOT = "NOT"
    MINUS = "'-'"
    WORD = "a word"
    PHRASE = "a quoted phrase"
    FIELD = "a field name"  # `name:` with nothing between the name and the colon


@dataclass(frozen=True)
class _Token:
    kind: _Kind
    text: str  # the value (unescaped) for WORD, PHRASE and FIELD; the source text otherwise
    pos: int
    end: int  # offset just past the token, to tell a value glued to its `field:` from a spaced one


_SPECIAL = frozenset('()":')
_KEYWORDS = {"AND": _Kind.AND, "OR": _Kind.OR, "NOT": _Kind.NOT}


def _tokenize(query: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(query)
    while i < n:
        c = query[i]
        after_field = bool(tokens) and tokens[-1].kind is _Kind.FIELD and tokens[-1].end == i
        if after_field and not c.isspace() and c not in '()"':
            # A field's value: a '-', a keyword or a ':' in it are part of it (`url:http://x`).
            i = _read_word(query, i, tokens, value=True)
        elif c.isspace():
            i += 1
        elif c == "(":
            tokens.append(_Token(_Kind.LPAREN, c, i, i + 1))
            i += 1
        elif c == ")":
            tokens.append(_Token(_Kind.RPAREN, c, i, i + 1))
            i += 1
        elif c == '"':
            i = _read_phrase(query, i, tokens)
        elif c == ":":
            raise QuerySyntaxError(query, i, "a field name before ':'", ":")
        elif c == "-":
            # A leading '-' negates; inside a word ("web-store") it is just a character.
            if i + 1 >= n or query[i + 1].isspace() or query[i + 1] == ")":
                found = query[i + 1] if i + 1 < n else None
                raise QuerySyntaxError(query, i + 1, "a term right after '-'", found)
            tokens.append(_Token(_Kind.MINUS, c, i, i + 1))
            i += 1
        else:
            i = _read_word(query, i, tokens)
    return tokens


def _read_phrase(query: str, start: int, tokens: list[_Token]) -> int:
    chars: list[str] = []
    i = start + 1
    while i < len(query):
        c = query[i]
        if c == "\\" and i + 1 < len(query):
            chars.append(query[i + 1])
            i += 2
        elif c == '"':
            tokens.append(_Token(_Kind.PHRASE, "".join(chars), start, i + 1))
            return i + 1
        else:
            chars.append(c)
            i += 1
    raise QuerySyntaxError(query, len(query), f"a closing '\"' for the phrase opened at position {start}")


def _read_word(query: str, start: int, tokens: list[_Token], value: bool = False) -> int:
    chars: list[str] = []
    i, n = start, len(query)
    escaped_any = False
    while i < n:
        c = query[i]
        if c == "\\":
            if i + 1 >= n:
                raise QuerySyntaxError(query, i + 1, "a character after '\\'")
            chars.append(query[i + 1])
            escaped_any = True
            i += 2
            continue
        if c.isspace() or c in _SPECIAL and not (value and c == ":"):
            break
        chars.append(c)
        i += 1
    text = "".join(chars)
    if i < n and query[i] == '"':
        raise QuerySyntaxError(query, i, "a space before the quoted phrase", '"')
    if value:
        tokens.append(_Token(_Kind.WORD, text, start, i))
        return i
    if i < n and query[i] == ":":
        tokens.append(_Token(_Kind.FIELD, text, start, i + 1))
        return i + 1
    kind = _KEYWORDS.get(text) if not escaped_any else None
    tokens.append(_Token(kind or _Kind.WORD, text, start, i))
    return i


# --- parser -----------------------------------------------------------------------------------


class _Parser:
    """Recursive descent over the tokens; `field` is set inside a `name:( ... )` value group."""

    def __init__(self, query: str) -> None:
        if len(query) > MAX_QUERY_LENGTH:
            raise QueryTooComplex(f"the query is {len(query)} characters long; the limit is {MAX_QUERY_LENGTH}")
        self.query = query
        self.tokens = _tokenize(query)
        terms = sum(1 for t in self.tokens if t.kind in (_Kind.WORD, _Kind.PHRASE))
        if terms > MAX_QUERY_TERMS:
            raise QueryTooComplex(f"the query has {terms} terms; the limit is {MAX_QUERY_TERMS}")
        self.i = 0
        self.depth = 0

    def nest(self, position: int) -> None:
        self.depth += 1
        if self.depth > MAX_QUERY_DEPTH:
            raise QueryTooComplex(
                f"the query nests parentheses and negations deeper than {MAX_QUERY_DEPTH} levels "
                f"(at position {position})",
                position,
            )

    def peek(self) -> _Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def fail(self, expected: str) -> QuerySyntaxError:
        tok = self.peek()
        if tok is None:
            return QuerySyntaxError(self.query, len(self.query), expected)
        return QuerySyntaxError(self.query, tok.pos, expected, self.query[tok.pos : tok.end])

    def parse(self) -> Node:
        if not self.tokens:
            return MatchAll()
        node = self.parse_or(None)
        # parse_or stops only at the end or at a ')' that no '(' opened.
        if (tok := self.peek()) is not None:
            raise QuerySyntaxError(self.query, tok.pos, "a term or the end of the query (no '(' to close)", ")")
        return node

    def parse_or(self, field: str | None) -> Node:
        children = [self.parse_and(field)]
        while (tok := self.peek()) is not None and tok.kind is _Kind.OR:
            self.i += 1
            children.append(self.parse_and(field))
        return _flatten(Or, children)

    def parse_and(self, field: str | None) -> Node:
        children = [self.parse_unary(field)]
        while (tok := self.peek()) is not None:
            if tok.kind is _Kind.AND:
                self.i += 1
            elif tok.kind in (_Kind.OR, _Kind.RPAREN):
                break
            children.append(self.parse_unary(field))  # explicit AND, or implicit between terms
        return _flatten(And, children)

    def parse_unary(self, field: str | None) -> Node:
        tok = self.peek()
        if tok is not None and tok.kind in (_Kind.NOT, _Kind.MINUS):
            self.i += 1
            self.nest(tok.pos)
            node = Not(self.parse_unary(field))
            self.depth -= 1
            return node
        return self.parse_primary(field)

    def parse_primary(self, field: str | None) -> Node:
        tok = self.peek()
        what = "a value" if field is not None else "a term"
        if tok is None:
            raise self.fail(what)
        if tok.kind is _Kind.LPAREN:
            self.i += 1
            self.nest(tok.pos)
            node = self.parse_or(field)
            if (close := self.peek()) is None or close.kind is not _Kind.RPAREN:
                raise self.fail(f"')' to close the '(' at position {tok.pos}")
            self.i += 1
            self.depth -= 1
            return node
        if tok.kind in (_Kind.WORD, _Kind.PHRASE):
            self.i += 1
            phrase = tok.kind is _Kind.PHRASE
            if field is None:
                return Text(tok.text, phrase)
            return Field(field, normalize_field_value(field, tok.text), phrase)
        if tok.kind is _Kind.FIELD:
            if field is not None:
                raise self.fail(f"a value for '{field}:' (fields do not nest)")
            return self.parse_field(tok)
        raise self.fail(what)

    def parse_field(self, tok: _Token) -> Node:
        if not tok.text:
            raise QuerySyntaxError(self.query, tok.pos, "a field name before ':'", ":")
        name = tok.text.lower() if tok.text.lower() in KNOWN_FIELDS else tok.text
        self.i += 1
        value = self.peek()
        # The value must follow the colon directly: `status: open` is two things, not one.
        if value is None or value.pos != tok.end or value.kind not in (_Kind.WORD, _Kind.PHRASE, _Kind.LPAREN):
            found = self.query[tok.end] if tok.end < len(self.query) else None
            raise QuerySyntaxError(self.query, tok.end, f"a value right after '{tok.text}:'", found)
        if value.kind is _Kind.LPAREN:
            return self.parse_primary(name)
        self.i += 1
        return Field(name, normalize_field_value(name, value.text), value.kind is _Kind.PHRASE)


def _flatten(kind: type[And] | type[Or], children: list[Node]) -> Node:
    if len(children) == 1:
        return children[0]
    flat: list[Node] = []
    for child in children:
        flat.extend(child.children if isinstance(child, kind) else (child,))
    return kind(tuple(flat))


def parse_query(query: str) -> Node:
    """Parse a case search query; raises QuerySyntaxError saying where and what was expected, or
    QueryTooComplex when it is over a limit."""
    return _Parser(query).parse()


def fields_in(node: Node) -> set[str]:
    """Names of the fields a query filters on (e.g. to tell which attribute keys it uses)."""
    if isinstance(node, Field):
        return {node.name}
    if isinstance(node, Not):
        return fields_in(node.child)
    if isinstance(node, And | Or):
        return set().union(*(fields_in(c) for c in node.children))
    return set()
