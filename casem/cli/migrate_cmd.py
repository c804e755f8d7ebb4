"""`casem import --from-datadog`: the live migration, with a progress bar; resumable and idempotent."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from casem.app.context import AppContext
from casem.app.importer import migration
from casem.app.importer.format import ImportFileError
from casem.app.importer.migration import MigrationError, MigrationReport
from casem.app.importer.service import ImportOptions
from casem.topology.tenants import data_dir


def default_state_file(site: str) -> Path:
    """One state file per source site, beside the data."""
    return data_dir() / "migrations" / f"{hashlib.sha256(site.encode()).hexdigest()[:16]}.json"


def run_migration(
    console: Console,
    options: ImportOptions,
    site: str | None,
    api_key: str | None,
    app_key: str | None,
    org_id: str | None,
    org_name: str | None,
    state_file: Path | None,
    quiet: bool,
) -> None:
    from casem.adapters.datadog_api import DatadogSource, SourceError
    from casem.cli.import_cmd import _print_report

    missing = [name for name, value in (("--site", site), ("--api-key", api_key), ("--app-key", app_key)) if not value]
    if missing:
        console.print(
            f"[red]error:[/red] --from-datadog needs {', '.join(missing)} (or DD_SITE, DD_API_KEY, DD_APP_KEY)"
        )
        raise typer.Exit(2)
    assert site and api_key and app_key
    state_path = state_file or default_state_file(site)
    source = DatadogSource(site, api_key, app_key)

    async def run() -> MigrationReport:
        context = AppContext.open()
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        try:
            with Progress(*columns, console=console, disable=quiet) as progress:
                task = progress.add_task("configuration", total=None)

                def tell(phase: str, done: int, total: int | None) -> None:
                    progress.update(task, description=phase, completed=done, total=total)

                return await migration.migrate(
                    context, source, state_path, org_id=org_id, org_name=org_name, options=options, progress=tell
                )
        finally:
            await context.close()

    try:
        report = asyncio.run(run())
    except (SourceError, MigrationError, ImportFileError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        console.print(f"Progress is kept in {state_path}: run the same command again to resume.")
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        console.print(
            f"[yellow]interrupted[/yellow]: progress is kept in {state_path}; run the command again to resume."
        )
        raise typer.Exit(130) from None
    finally:
        source.close()
    _print_report(console, report.import_report)
    resumed = f", resumed after page {report.resumed_after_page}" if report.resumed_after_page else ""
    console.print(
        f"org {report.org_id}: {report.cases} cases in {report.pages} pages in {report.seconds:.1f} s{resumed}. "
        "API and application keys do not come over: issue new ones with `casem admin bootstrap-credentials "
        f"{report.org_id}` (or `casem up`, for a single org)."
    )
    if report.import_report.conflicts and options.on_conflict == "keep":
        raise typer.Exit(1)
