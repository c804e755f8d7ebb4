"""The query language parser: what each form parses to, and where a malformed one is wrong."""

from __future__ import annotations

import pytest

from casem.domain.search_query import (
    And,
    Field,
    MatchAll,
    Node,
    Not,
    Or,
    QuerySyntaxError,
    Text,
    fields_in,
    parse_query,
)


def t(value: str) -> Text:
    return Text(value)


def p(value: str) -> Text:
    return Text(value, phrase=True)


@pytest.mark.parametrize(
    ("query", "ast"),
    [
        # empty
        ("", MatchAll()),
        ("   \t\n", MatchAll()),
        # free text and phrases
        ("disk", t("disk")),
        ("  disk  ", t("disk")),
        ("disk full", And((t("disk"), t("full")))),
        ('"disk full"', p("disk full")),
        ('"disk full" alert', And((p("disk full"), t("alert")))),
        ('""', p("")),
        ('"say \\"hi\\" \\\\ bye"', p('say "hi" \\ bye')),
        ('"(not) a group: AND OR"', p("(not) a group: AND OR")),
        ("web-store", t("web-store")),
        ("PROJ-12", t("PROJ-12")),
        ("café", t("café")),
        ("and or not", And((t("and"), t("or"), t("not")))),  # keywords are upper case only
        ("\\AND", t("AND")),  # escaped: a word
        ("\\-note", t("-note")),
        ("a\\:b", t("a:b")),
        ("a\\(b\\)", t("a(b)")),
        # fields
        ("status:open", Field("status", "OPEN")),
        ("STATUS:Open", Field("status", "OPEN")),
        ("status:in-progress", Field("status", "IN_PROGRESS")),
        ('status:"in progress"', Field("status", "IN_PROGRESS", phrase=True)),
        ("priority:p1", Field("priority", "P1")),
        ("priority:not_defined", Field("priority", "NOT_DEFINED")),
        ("archived:TRUE", Field("archived", "true")),
        ("project:Proj", Field("project", "Proj")),
        ("assignee:jane@example.com", Field("assignee", "jane@example.com")),
        ("type:Security", Field("type", "Security")),
        ("key:PROJ-12", Field("key", "PROJ-12")),
        ("service:web-store", Field("service", "web-store")),
        ("Service:Web-Store", Field("Service", "Web-Store")),  # attribute keys stay verbatim
        ('team:"site reliability"', Field("team", "site reliability", phrase=True)),
        ("url:http://x:8080/a", Field("url", "http://x:8080/a")),
        ("status:AND", Field("status", "AND")),  # right after a colon, a keyword is a value
        ("service:-x", Field("service", "-x")),
        ("a\\:b:c", Field("a:b", "c")),
        ("service:a\\ b", Field("service", "a b")),
        # field value groups
        ("status:(open OR closed)", Or((Field("status", "OPEN"), Field("status", "CLOSED")))),
        (
            'env:(prod "eu west")',
            And((Field("env", "prod"), Field("env", "eu west", phrase=True))),
        ),
        ("env:(-prod)", Not(Field("env", "prod"))),
        ("env:(NOT (a OR b))", Not(Or((Field("env", "a"), Field("env", "b"))))),
        # boolean logic
        ("a AND b", And((t("a"), t("b")))),
        ("a OR b", Or((t("a"), t("b")))),
        ("a OR b OR c", Or((t("a"), t("b"), t("c")))),
        ("a AND b AND c", And((t("a"), t("b"), t("c")))),
        ("a b AND c", And((t("a"), t("b"), t("c")))),
        ("a OR b c", Or((t("a"), And((t("b"), t("c")))))),
        ("a b OR c", Or((And((t("a"), t("b"))), t("c")))),
        ("a AND b OR c AND d", Or((And((t("a"), t("b"))), And((t("c"), t("d")))))),
        ("(a OR b) c", And((Or((t("a"), t("b"))), t("c")))),
        ("(a OR b)(c)", And((Or((t("a"), t("b"))), t("c")))),
        ("((a))", t("a")),
        ("(a (b OR (c d)))", And((t("a"), Or((t("b"), And((t("c"), t("d")))))))),
        ("a AND (b AND c)", And((t("a"), t("b"), t("c")))),  # flattened
        ("(a OR b) OR c", Or((t("a"), t("b"), t("c")))),
        # negation
        ("NOT a", Not(t("a"))),
        ("-a", Not(t("a"))),
        ("-status:closed", Not(Field("status", "CLOSED"))),
        ('-"disk full"', Not(p("disk full"))),
        ("NOT NOT a", Not(Not(t("a")))),
        ("--a", Not(Not(t("a")))),
        ("NOT a b", And((Not(t("a")), t("b")))),  # NOT binds to one term
        ("NOT (a b)", Not(And((t("a"), t("b"))))),
        ("-(a OR b)", Not(Or((t("a"), t("b"))))),
        ("a -b", And((t("a"), Not(t("b"))))),
        ("a AND NOT b", And((t("a"), Not(t("b"))))),
        ("a OR -b", Or((t("a"), Not(t("b"))))),
        ("a-b", t("a-b")),  # a dash inside a word is not negation
        (
            "status:open (priority:P1 OR priority:P2) -service:web-store",
            And(
                (
                    Field("status", "OPEN"),
                    Or((Field("priority", "P1"), Field("priority", "P2"))),
                    Not(Field("service", "web-store")),
                )
            ),
        ),
    ],
)
def test_parses(query: str, ast: Node) -> None:
    assert parse_query(query) == ast


@pytest.mark.parametrize(
    ("query", "position", "expected", "found"),
    [
        ("(a", 2, "')' to close the '(' at position 0", None),
        ("(a OR (b)", 9, "')' to close the '(' at position 0", None),
        ("a)", 1, "a term or the end of the query (no '(' to close)", ")"),
        ("(a))", 3, "a term or the end of the query (no '(' to close)", ")"),
        ("()", 1, "a term", ")"),
        (")", 0, "a term", ")"),
        ("a AND", 5, "a term", None),
        ("a OR", 4, "a term", None),
        ("AND a", 0, "a term", "AND"),
        ("OR", 0, "a term", "OR"),
        ("a OR OR b", 5, "a term", "OR"),
        ("a AND OR b", 6, "a term", "OR"),
        ("a (OR b)", 3, "a term", "OR"),
        ("NOT", 3, "a term", None),
        ("a NOT", 5, "a term", None),
        ("-", 1, "a term right after '-'", None),
        ("a - b", 3, "a term right after '-'", " "),
        ("(-)", 2, "a term right after '-'", ")"),
        ('"disk full', 10, "a closing '\"' for the phrase opened at position 0", None),
        ('a "b', 4, "a closing '\"' for the phrase opened at position 2", None),
        ('a"b"', 1, "a space before the quoted phrase", '"'),
        ('status:open"x"', 11, "a space before the quoted phrase", '"'),
        ("status:", 7, "a value right after 'status:'", None),
        ("status: open", 7, "a value right after 'status:'", " "),
        ("status:)", 7, "a value right after 'status:'", ")"),
        ("(status:)", 8, "a value right after 'status:'", ")"),
        (":open", 0, "a field name before ':'", ":"),
        ("a :b", 2, "a field name before ':'", ":"),
        ("status:(open", 12, "')' to close the '(' at position 7", None),
        ("status:()", 8, "a value", ")"),
        ("status:(a:b)", 8, "a value for 'status:' (fields do not nest)", "a:"),
        ("status:(open OR)", 15, "a value", ")"),
        ("a\\", 2, "a character after '\\'", None),
    ],
)
def test_syntax_errors_say_where_and_what(query: str, position: int, expected: str, found: str | None) -> None:
    with pytest.raises(QuerySyntaxError) as raised:
        parse_query(query)
    error = raised.value
    assert (error.position, error.expected, error.found) == (position, expected, found)
    assert error.query == query
    assert f"at position {position}" in str(error)
    assert isinstance(error, ValueError)  # callers may catch it as bad input


def test_error_message_reads_well() -> None:
    with pytest.raises(QuerySyntaxError, match=r"^query syntax error at position 7: expected a value right after "):
        parse_query("status: open")
    with pytest.raises(QuerySyntaxError, match=r"found end of query$"):
        parse_query("(a")


@pytest.mark.parametrize(
    ("field", "known"),
    [("status", True), ("priority", True), ("project", True), ("assignee", True), ("type", True)]
    + [("key", True), ("archived", True), ("service", False), ("Status", True), ("title", False)],
)
def test_known_fields_and_attributes(field: str, known: bool) -> None:
    node = parse_query(f"{field}:x")
    assert isinstance(node, Field)
    assert node.is_attribute is not known


def test_fields_in() -> None:
    query = parse_query("disk status:open (service:a OR -env:(b c)) NOT team:x")
    assert fields_in(query) == {"status", "service", "env", "team"}
    assert fields_in(parse_query("just words")) == set()
