"""Comments are Markdown: rendered to HTML on the server, then sanitised, so a page never runs what a
comment carries.

Two layers, each enough on its own for the common cases and together for the odd ones: markdown-it-py
renders CommonMark with raw HTML disabled (a `<script>` in a comment is text), and nh3 (Ammonia) keeps only
the tags, attributes and URL schemes listed here (a `[x](javascript:...)` link loses its href).
"""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt

_renderer = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable(
    ["table", "strikethrough"]
)

ALLOWED_TAGS = frozenset(
    {
        "p", "br", "hr", "em", "strong", "s", "del", "code", "pre", "blockquote", "a",
        "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6",
        "table", "thead", "tbody", "tr", "th", "td",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}, "th": {"style"}, "td": {"style"}}
URL_SCHEMES = frozenset({"http", "https", "mailto"})


def render_markdown(text: str) -> str:
    """Safe HTML for a comment's Markdown."""
    html = _renderer.render(text)
    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        attributes={k: set(v) for k, v in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel="noopener noreferrer nofollow",
        # Table alignment is the only style markdown-it writes; nothing else survives.
        filter_style_properties={"text-align"},
    )
