"""Listings for people and for programs: `--format table|json` on every command that lists things.

A table fits the terminal it is printed on: long values wrap between words and after the dots of a
hostname (never inside a name), and when even that is too wide the least important columns are left
out, with a line saying which and how to see them. Piped output is not squeezed: a program reading it
gets whole lines (or asks for `--format json`, which always has every field).

rich is imported only when a table is printed, so a command's `--help` stays quick.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import typer


class Format(StrEnum):
    table = "table"
    json = "json"


def format_option() -> Any:
    return typer.Option(Format.table, "--format", "-f", help="table (fits the terminal) or json (every field).")


@dataclass(frozen=True)
class Column:
    header: str
    key: str
    # When the terminal is too narrow, the column with the lowest priority is left out first.
    priority: int = 0
    justify: str = "left"


# Where a long value may wrap: after spaces (dropped), and after the dots of a hostname or a dotted name.
_BREAK_AFTER = re.compile(r"[^.\s]*\.(?=[^\s.])|[^\s]+")


def _pieces(word: str) -> list[str]:
    """A word split where it may wrap: after each dot that is followed by more of the word."""
    return _BREAK_AFTER.findall(word) or [word]


def cell_lines(value: Any) -> list[str]:
    if value is None:
        return ["-"]
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value] or ["-"]
    return str(value).splitlines() or [""]


def min_width(lines: Sequence[str]) -> int:
    """The narrowest a cell can be without cutting a piece of a word."""
    return max((len(p) for line in lines for word in line.split() for p in _pieces(word)), default=1)


def natural_width(lines: Sequence[str]) -> int:
    return max((len(line) for line in lines), default=1)


def wrap(lines: Sequence[str], width: int) -> list[str]:
    """Lines re-wrapped to `width`: between words first, then after a hostname's dots."""
    out: list[str] = []
    for line in lines:
        current = ""
        for word in line.split() or [""]:
            candidate = f"{current} {word}" if current else word
            if len(candidate) <= width:
                current = candidate
                continue
            if current:
                out.append(current)
                current = ""
            for piece in _pieces(word):
                if current and len(current) + len(piece) > width:
                    out.append(current)
                    current = ""
                current += piece
        out.append(current)
    return out


TABLE_EDGE = 1  # rich's default box: a border on the left, then per column one space, the text, one space, a border
PER_COLUMN = 3


def fit_columns(
    columns: Sequence[Column], cells: Sequence[Sequence[list[str]]], width: int | None
) -> tuple[list[Column], list[int]]:
    """The columns that fit `width` (None: no limit) and the width of each."""
    chosen = list(columns)
    while True:
        index = [columns.index(c) for c in chosen]
        natural = [
            max(natural_width([c.header]), *(natural_width(row[i]) for row in cells))
            for i, c in zip(index, chosen, strict=True)
        ]
        narrow = [
            max(min_width([c.header]), *(min_width(row[i]) for row in cells))
            for i, c in zip(index, chosen, strict=True)
        ]
        if width is None:
            return chosen, natural
        room = width - TABLE_EDGE - PER_COLUMN * len(chosen)
        if sum(natural) <= room:
            return chosen, natural
        if sum(narrow) <= room or len(chosen) == 1:
            # From the narrowest layout, widen the narrowest column still short of its natural width, one
            # character at a time: the columns even out instead of one long value taking all the room.
            widths = list(narrow)
            for _ in range(room - sum(widths)):
                lacking = [i for i in range(len(widths)) if widths[i] < natural[i]]
                if not lacking:
                    break
                widths[min(lacking, key=lambda i: widths[i])] += 1
            return chosen, widths
        chosen.remove(min(chosen, key=lambda c: (c.priority, -columns.index(c))))


def terminal_width(console: Any) -> int | None:
    """The width to fit: the terminal's (or COLUMNS); None when the output is not a terminal."""
    if "COLUMNS" in os.environ or console.is_terminal:
        return console.width
    return None


def print_rows(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[Column],
    fmt: Format,
    *,
    title: str | None = None,
    empty: str = "nothing to list",
) -> None:
    """Print rows as JSON (every key of every row) or as a table of `columns` fitted to the terminal."""
    if fmt is Format.json:
        print(json.dumps(list(rows), indent=2, default=str))
        return
    from rich.console import Console

    console = Console()
    if not rows:
        console.print(empty, highlight=False)
        return
    print_table(console, columns, [[cell_lines(row.get(c.key)) for c in columns] for row in rows], title=title)


def print_table(
    console: Any, columns: Sequence[Column], cells: Sequence[Sequence[list[str]]], *, title: str | None = None
) -> None:
    from rich.table import Table

    chosen, widths = fit_columns(columns, cells, terminal_width(console))
    table = Table(title=title, title_justify="left")
    for column, width in zip(chosen, widths, strict=True):
        header = "\n".join(wrap([column.header], width))
        table.add_column(header, justify=column.justify, no_wrap=True, overflow="fold", width=width)  # type: ignore[arg-type]
    for row in cells:
        table.add_row(*("\n".join(wrap(row[columns.index(c)], w)) for c, w in zip(chosen, widths, strict=True)))
    console.print(table, highlight=False, crop=False)
    left_out = [c.header for c in columns if c not in chosen]
    if left_out:
        console.print(
            f"[dim]Left out to fit {console.width} columns: {', '.join(left_out)} "
            "(widen the terminal or use --format json).[/]",
            highlight=False,
        )


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


class LazyConsole:
    """A rich Console made on first use, so importing a command module does not import rich."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Any = None

    @property
    def real(self) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)
