"""The console's pure rules and its built assets: password policy, Markdown sanitising, vendor files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from casem.app.console.case_list import decode_cursor
from casem.app.console.markdown import render_markdown
from casem.app.console.query_help import check_query, word_at
from casem.domain.errors import InvalidInput
from casem.domain.passwords import validate_password

ROOT = Path(__file__).resolve().parents[2]
CONSOLE = ROOT / "casem/services/case_console"


@pytest.mark.parametrize(
    "password, why",
    [
        ("short", "at least 12"),
        ("x" * 257, "at most 256"),
        ("jane@example.com", "e-mail"),
        ("password1234", "attackers"),
        ("aaaaaaaaaaaaaaaa", "attackers"),
    ],
)
def test_password_policy_refuses(password: str, why: str) -> None:
    with pytest.raises(InvalidInput, match=why):
        validate_password(password, "jane@example.com")


def test_password_policy_accepts_a_long_phrase() -> None:
    assert validate_password("correct horse battery staple", "jane@example.com")


@pytest.mark.parametrize(
    "markdown, forbidden",
    [
        ("<script>alert(1)</script>", "<script"),
        ("[x](javascript:alert(1))", 'href="javascript'),
        ('<img src=x onerror="alert(1)">', "<img"),
        ("[x](data:text/html;base64,PHNjcmlwdD4=)", 'href="data'),
        ('<a href="https://x" onclick="a()">x</a>', "<a "),
    ],
)
def test_markdown_keeps_no_active_content(markdown: str, forbidden: str) -> None:
    """Raw HTML is shown as text, and links keep only http, https and mailto targets."""
    assert forbidden not in render_markdown(markdown)


def test_markdown_renders_what_people_write() -> None:
    html = render_markdown("**bold** `code`\n\n- a\n- b\n\n[site](https://example.com)")
    assert "<strong>bold</strong>" in html and "<code>code</code>" in html and "<li>a</li>" in html
    assert 'href="https://example.com"' in html and 'rel="noopener noreferrer nofollow"' in html


def test_query_help_points_at_the_error_and_the_word() -> None:
    problem = check_query("status:(open")
    assert problem is not None and problem.position == 12
    assert check_query("priority:P1 disk") is None
    assert word_at("status:open prio", 16) == (12, "prio")


def test_a_tampered_page_cursor_is_a_clear_error() -> None:
    with pytest.raises(InvalidInput, match="out of date"):
        decode_cursor("not-a-cursor")


def test_vendor_files_are_the_lockfile_packages_own_files() -> None:
    """What static/vendor serves is byte for byte the dist file of the package version package-lock.json pins."""
    manifest = json.loads((CONSOLE / "static/vendor/manifest.json").read_text())
    lock = json.loads((CONSOLE / "frontend/package-lock.json").read_text())
    assert {entry["package"] for entry in manifest.values()} == {"htmx.org", "sortablejs", "uplot"}
    for served, entry in manifest.items():
        pinned = lock["packages"][f"node_modules/{entry['package']}"]["version"]
        assert entry["version"] == pinned, served
        source = CONSOLE / "frontend/node_modules" / entry["source"]
        vendored = CONSOLE / "static/vendor" / served
        assert (
            hashlib.sha256(vendored.read_bytes()).hexdigest()
            == entry["sha256"]
            == hashlib.sha256(source.read_bytes()).hexdigest()
        )
