"""Properties of the query parser over generated queries.

tests/search/test_search_query.py pins what each form parses to and each error's position; this file
checks what must hold for every query: a printed AST parses back to itself, `fields_in` survives the
round trip, and any text either parses or fails with a position and a `found` that point into the query.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from casem.domain.search_query import (
    KNOWN_FIELDS,
    And,
    Field,
    MatchAll,
    Node,
    Not,
    Or,
    QuerySyntaxError,
    QueryTooComplex,
    Text,
    fields_in,
    normalize_field_value,
    parse_query,
)

KEYWORDS = {"AND", "OR", "NOT"}
ESCAPED = set('()":\\')


def word(text: str) -> str:
    """A bare word or field name, escaped so the tokenizer reads it back as exactly `text`."""
    out = "".join(f"\\{c}" if c in ESCAPED or c.isspace() else c for c in text)
    if text in KEYWORDS or text.startswith("-"):
        out = "\\" + out
    return out


def value(text: str) -> str:
    """A field value: right after `name:` a leading '-', a keyword or a ':' are plain characters."""
    return "".join(f"\\{c}" if c in '()"\\' or c.isspace() else c for c in text)


def quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def show(node: Node, implicit_and: bool = False) -> str:
    """Print an AST in the query language (every group parenthesised)."""
    if isinstance(node, MatchAll):
        return ""
    if isinstance(node, Text):
        return quoted(node.value) if node.phrase else word(node.value)
    if isinstance(node, Field):
        return f"{word(node.name)}:{quoted(node.value) if node.phrase else value(node.value)}"
    if isinstance(node, Not):
        return f"NOT ({show(node.child)})"
    joiner = " OR " if isinstance(node, Or) else (" " if implicit_and else " AND ")
    return "(" + joiner.join(show(c, implicit_and) for c in node.children) + ")"


def canonical(node: Node) -> Node:
    """What the parser makes of a printed AST: nested ANDs (ORs) flattened, known field values normalised."""
    if isinstance(node, Field):
        return Field(node.name, normalize_field_value(node.name, node.value), node.phrase)
    if isinstance(node, Not):
        return Not(canonical(node.child))
    if isinstance(node, And | Or):
        flat: list[Node] = []
        for child in map(canonical, node.children):
            flat.extend(child.children if type(child) is type(node) else (child,))
        return type(node)(tuple(flat))
    return node


chars = st.sampled_from(list('abcXYZ019-_.:/@é()"\\ \t') + ["AND", "OR", "NOT"])
texts = st.lists(chars, min_size=1, max_size=6).map("".join)
attribute_names = texts.filter(lambda name: name.lower() not in KNOWN_FIELDS)
status_values = st.sampled_from(["open", "In Progress", "in-progress", "CLOSED", "weird value"])
fields = st.one_of(
    st.builds(Field, attribute_names, texts, st.booleans()),
    st.builds(Field, st.just("status"), status_values, st.booleans()),
    st.builds(Field, st.sampled_from(sorted(KNOWN_FIELDS - {"status"})), texts, st.booleans()),
)
leaves = st.one_of(st.builds(Text, texts, st.booleans()), st.builds(Text, st.just(""), st.just(True)), fields)
trees = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.builds(Not, inner),
        st.lists(inner, min_size=2, max_size=3).map(lambda cs: And(tuple(cs))),
        st.lists(inner, min_size=2, max_size=3).map(lambda cs: Or(tuple(cs))),
    ),
    max_leaves=8,
)


@given(trees, st.booleans())
@example(And((Text("AND"), Text("-x"), Field("a:b", "-c:d"))), False)
@example(Or((Field("status", "in progress", True), Not(Text("(x)")))), True)
def test_a_printed_query_parses_back_to_its_ast(tree: Node, implicit_and: bool) -> None:
    query = show(tree, implicit_and)
    assert parse_query(query) == canonical(tree), query


@given(trees)
def test_fields_in_survives_printing_and_parsing(tree: Node) -> None:
    assert fields_in(parse_query(show(tree))) == fields_in(tree)
    assert fields_in(Not(tree)) == fields_in(tree)
    assert fields_in(And((tree, Text("x")))) == fields_in(tree)


def test_fields_in_names_known_fields_in_lower_case_and_attributes_verbatim() -> None:
    assert fields_in(parse_query("STATUS:open Priority:p1 Service:web service:(a OR b)")) == {
        "status",
        "priority",
        "Service",
        "service",
    }
    assert fields_in(parse_query('"status:open" \\status\\:x')) == set()  # text, not filters
    assert fields_in(parse_query("")) == set()


@given(st.lists(st.sampled_from(list('ab:()"\\- \t') + ["AND", "OR", "NOT", "x:"]), max_size=20).map("".join))
def test_any_text_parses_or_says_where_it_is_wrong(query: str) -> None:
    try:
        parse_query(query)
    except QuerySyntaxError as error:
        assert 0 <= error.position <= len(query)
        assert error.query == query and error.expected
        if error.found is None:
            assert "found end of query" in str(error)
        else:
            assert query[error.position :].startswith(error.found)


@given(st.sampled_from(["status", "priority", "archived", "project", "service"]), texts)
def test_normalizing_a_value_twice_changes_nothing(name: str, text: str) -> None:
    once = normalize_field_value(name, text)
    assert normalize_field_value(name, once) == once
    if name in ("project", "service"):
        assert once == text  # only the enumerations (and archived) are normalised


# -- limits (checked before any backend builds a query) ---------------------------------------------------


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("(" * 17 + "a" + ")" * 17, "deeper than 16 levels"),
        ("NOT " * 17 + "a", "deeper than 16 levels"),
        ("-" * 17 + "a", "deeper than 16 levels"),
        ("status:(" + " OR ".join(["open"] * 101) + ")", "101 terms; the limit is 100"),
        ("a" * 4097, "4097 characters long; the limit is 4096"),
    ],
)
def test_queries_over_a_limit_are_refused_saying_which(query: str, message: str) -> None:
    with pytest.raises(QueryTooComplex, match=message) as caught:
        parse_query(query)
    assert isinstance(caught.value, QuerySyntaxError)  # every caller's 400 path handles it
    assert len(str(caught.value)) < 200


def test_queries_at_the_limits_parse() -> None:
    assert isinstance(parse_query("(" * 16 + "a" + ")" * 16), Text)
    assert isinstance(parse_query(" ".join(["a"] * 100)), And)
    assert isinstance(parse_query("a" * 4096), Text)


def test_a_syntax_error_quotes_a_short_excerpt() -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        parse_query("status: " + "x" * 3000)
    assert len(str(caught.value)) < 200
