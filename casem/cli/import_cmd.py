"""`casem import FILE.json`: migrate orgs, identities, configuration and cases into casem, ids preserved."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:  # the database stack is imported when the command runs, so `--help` stays quick
    from casem.app.importer import ImportReport

HELP = """Import FILE.json into the configured databases, keeping every id, case key and API key.

\b
The file (full reference and example: docs/import-format.md):
  {"version": 1,
   "orgs": [{"id": UUID, "name": "Acme",
     "users":             [{"id", "email", "name"?, "title"?, "handle"?, "disabled"?}],
     "teams":             [{"id", "handle", "name", "description"?}],
     "keys":              [{"id", "kind": "api"|"application", "name", "user_id" (application keys),
                            "secret": plaintext  OR  "key_hash": sha256 hex + "last4"}],
     "case_types":        [{"id", "name", "description"?, "emoji"?}],
     "custom_attributes": [{"id", "case_type_id", "key", "display_name", "type": TEXT|URL|NUMBER|SELECT,
                            "is_multi"?, "options"? (SELECT)}],
     "projects":          [{"id", "key", "name", "enabled_custom_case_types"?}],
     "cases":             [{"id", "project_id", "key": "PROJ-12", "title", "status"?, "priority"?, ...}]}]}

\b
Running it again is safe: records already stored with the same content are counted as unchanged,
and a record whose id is stored with different content is reported as a conflict, never overwritten
(exit code 1). A malformed file names the record and field, and exits with code 2.
"""


def _print_report(console: Any, report: ImportReport) -> None:
    from rich.table import Table

    from casem.app.importer.service import KINDS

    table = Table(title="casem import")
    for column in ("records", "created", "unchanged", "conflicts"):
        table.add_column(column, justify="left" if column == "records" else "right")
    for kind in KINDS:
        c = report.counts[kind]
        table.add_row(kind, str(c.created), str(c.unchanged), str(c.conflicts))
    console.print(table)
    for line in report.conflicts:
        console.print(f"[yellow]conflict[/yellow] {line}")


def import_command(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="The JSON file to import."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar; print only the summary."),
) -> None:
    import asyncio

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from casem.app.context import AppContext
    from casem.app.importer import ImportFileError, import_file
    from casem.app.importer.service import total_cases

    console = Console()
    try:
        cases = total_cases(path)
    except ImportFileError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None

    async def run() -> ImportReport:
        context = AppContext.open()
        try:
            columns = (TextColumn("cases"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
            with Progress(*columns, console=console, disable=quiet or not cases) as progress:
                task = progress.add_task("cases", total=cases)
                return await import_file(context, path, on_case=lambda: progress.advance(task))
        finally:
            await context.close()

    try:
        report = asyncio.run(run())
    except ImportFileError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    _print_report(console, report)
    if report.conflicts:
        raise typer.Exit(1)


import_command.__doc__ = HELP
