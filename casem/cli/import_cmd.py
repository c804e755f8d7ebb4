"""`casem import FILE.json` and `casem import --from-datadog`: migrate orgs, identities, configuration and cases
into casem, ids preserved."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:  # the database stack is imported when the command runs, so `--help` stays quick
    from casem.app.importer import ImportReport

# The --on-conflict choices (casem.app.importer.service.KEEP and REPLACE, spelled here for the same reason).
KEEP, REPLACE = "keep", "replace"

HELP = """Import FILE.json into the configured databases, keeping every id, case key and API key; or, with
--from-datadog, pull an org live from any Datadog-compatible API (Datadog itself, another casem).

\b
The file (full reference and example: docs/import-format.md):
  {"version": 1,
   "orgs": [{"id": UUID, "name": "Acme",
     "users":             [{"id", "email", "name"?, "title"?, "handle"?, "disabled"?}],
     "teams":             [{"id", "handle", "name", "description"?}],
     "keys":              [{"id", "kind": "api"|"application", "name", "user_id" (application keys),
                            "secret": plaintext  OR  "key_hash": sha256 hex + "last4"  OR neither
                            with --reissue-keys}],
     "case_types":        [{"id", "name", "description"?, "emoji"?}],
     "custom_attributes": [{"id", "case_type_id", "key", "display_name", "type": TEXT|URL|NUMBER|SELECT,
                            "is_multi"?, "options"? (SELECT)}],
     "projects":          [{"id", "key", "name", "enabled_custom_case_types"?, "settings"?}],
     "notification_rules", "automation_rules", "views": [...],
     "cases":             [{"id", "project_id", "key": "PROJ-12", "title", "status"?, "priority"?, ...,
                            "timeline"?: [cells], "watchers"?: [user ids]}],
     "links":             [{"id", "parent_entity_type", "parent_entity_id", ...}]}]}

\b
Running it again is safe: records already stored with the same content are counted as unchanged. A record
whose id is stored with different content is a conflict: reported and left as stored (--on-conflict keep,
the default; exit code 1), or overwritten with the file's content (--on-conflict replace). --dry-run does
everything and rolls it back, printing what would change. A malformed file names the record and field,
and exits with code 2.

\b
Live migration (docs/import-format.md, "Migrating from Datadog"):
  casem import --from-datadog --site datadoghq.eu --api-key $DD_API_KEY --app-key $DD_APP_KEY
pulls projects, case types, custom attributes, users, teams, cases with their timelines, watchers and links,
views and rules, page by page, with a progress bar. Interrupted, the same command resumes where it stopped;
run again once finished, it changes nothing.
"""


def _print_report(console: Any, report: ImportReport) -> None:
    from rich.table import Table

    from casem.app.importer.service import KINDS

    title = "casem import (dry run: nothing was written)" if report.dry_run else "casem import"
    table = Table(title=title)
    for column in ("records", "created", "unchanged", "conflicts", "replaced"):
        table.add_column(column, justify="left" if column == "records" else "right")
    for kind in KINDS:
        c = report.counts[kind]
        if c.created or c.unchanged or c.conflicts or c.replaced or kind in KINDS[:8]:
            table.add_row(kind, str(c.created), str(c.unchanged), str(c.conflicts), str(c.replaced))
    console.print(table)
    for line in report.conflicts:
        console.print(f"[yellow]conflict[/yellow] {line}")


def write_reissued(report: ImportReport, path: Path | None) -> Path | None:
    """The new secrets, in a file only its owner can read; None when no key was reissued (or a dry run)."""
    import json
    import os

    from casem.app.importer.service import new_secret_file_name
    from casem.topology.tenants import data_dir

    if not report.reissued or report.dry_run:
        return None
    path = path or data_dir() / new_secret_file_name()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # also when the file was already there with wider rights
    with os.fdopen(fd, "w") as out:
        json.dump({"keys": [vars(k) for k in report.reissued]}, out, indent=2)
    return path


def import_command(
    path: Path | None = typer.Argument(
        None, exists=True, dir_okay=False, readable=True, help="The JSON file to import (not with --from-datadog)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar; print only the summary."),
    on_conflict: str = typer.Option(
        KEEP, "--on-conflict", help="keep: a stored record that differs stays as it is; replace: the import wins."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Do everything, then roll it back: print what would change."),
    reissue_keys: bool = typer.Option(
        False, "--reissue-keys", help="A new secret for every imported key, written to a 0600 file (path printed)."
    ),
    keys_file: Path | None = typer.Option(
        None, "--keys-file", help="Where --reissue-keys writes the secrets (default: a new file in the data dir)."
    ),
    from_datadog: bool = typer.Option(False, "--from-datadog", help="Pull an org live from a Datadog-compatible API."),
    site: str | None = typer.Option(
        None, "--site", envvar="DD_SITE", help="datadoghq.com, datadoghq.eu, ... or a base URL (http://host:port)."
    ),
    api_key: str | None = typer.Option(None, "--api-key", envvar="DD_API_KEY", help="The source's API key."),
    app_key: str | None = typer.Option(None, "--app-key", envvar="DD_APP_KEY", help="The source's application key."),
    org_id: str | None = typer.Option(None, "--org-id", help="The casem org to migrate into (default: a new org)."),
    org_name: str | None = typer.Option(None, "--org-name", help="The new org's name (default: 'Migrated')."),
    state_file: Path | None = typer.Option(
        None, "--state-file", help="Where the migration keeps its progress (default: in the data dir, per site)."
    ),
) -> None:
    import asyncio

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from casem.app.context import AppContext
    from casem.app.importer import ImportFileError, import_file
    from casem.app.importer.service import ImportOptions, total_cases

    console = Console()
    if on_conflict not in (KEEP, REPLACE):
        console.print(f"[red]error:[/red] --on-conflict must be {KEEP} or {REPLACE}, not {on_conflict!r}")
        raise typer.Exit(2)
    options = ImportOptions(on_conflict=on_conflict, dry_run=dry_run, reissue_keys=reissue_keys)
    if from_datadog:
        if path is not None:
            console.print("[red]error:[/red] give a file or --from-datadog, not both")
            raise typer.Exit(2)
        from casem.cli.migrate_cmd import run_migration

        run_migration(console, options, site, api_key, app_key, org_id, org_name, state_file, quiet)
        return
    if path is None:
        console.print("[red]error:[/red] give the file to import (or --from-datadog)")
        raise typer.Exit(2)
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
                return await import_file(context, path, on_case=lambda: progress.advance(task), options=options)
        finally:
            await context.close()

    try:
        report = asyncio.run(run())
    except ImportFileError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    _print_report(console, report)
    written = write_reissued(report, keys_file)
    if written is not None:
        console.print(
            f"[bold]{len(report.reissued)} key(s) reissued[/bold]: their new secrets are in {written} (readable by "
            "you only). The old secrets no longer work; hand the new ones to their owners, then delete the file."
        )
    if report.conflicts and on_conflict == KEEP:
        raise typer.Exit(1)


import_command.__doc__ = HELP
