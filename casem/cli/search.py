"""`casem search reindex|verify`: rebuild the search index from the database, or compare the two."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from casem.cli.output import LazyConsole

if TYPE_CHECKING:  # the database and search stacks are imported when a command runs
    from casem.app.context import AppContext
    from casem.app.search.maintenance import VerifyReport

app = typer.Typer(help="The case search index: rebuild it, check it against the database.", no_args_is_help=True)
console = LazyConsole()


def _tenants(context: AppContext, tenant: list[str] | None) -> list[str]:
    names = tenant or list(context.databases)
    unknown = [t for t in names if t not in context.databases]
    if unknown:
        raise typer.BadParameter(f"unknown tenant(s) {', '.join(unknown)}; known: {', '.join(context.databases)}")
    return names


@app.command()
def reindex(tenant: list[str] = typer.Option(None, help="Tenant(s) to rebuild; default: all.")) -> None:
    """Build a new index from the database, then move the alias onto it (searches answer throughout)."""
    import asyncio

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from casem.adapters.search import search_from_env
    from casem.app.context import AppContext
    from casem.app.search.maintenance import reindex_tenant

    async def main() -> None:
        context = AppContext.open(migrate=False)
        search = search_from_env()
        try:
            columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
            with Progress(*columns, console=console.real) as progress:
                for name in _tenants(context, tenant):
                    task = progress.add_task(f"reindex {name}", total=None)
                    index, count = await reindex_tenant(
                        context,
                        search,
                        name,
                        on_total=lambda n, task=task: progress.update(task, total=n),
                        on_progress=lambda n, task=task: progress.advance(task, n),
                    )
                    progress.console.print(f"[green]{name}[/]: {count} cases -> {index}")
        finally:
            await search.close()
            await context.close()

    asyncio.run(main())


def _print_report(report: VerifyReport, show: int) -> None:
    verdict = "[green]in sync[/]" if report.ok else "[red]DIFFERENT[/]"
    console.print(f"{report.tenant}: database {report.database}, index {report.index}: {verdict}")
    if report.ok:
        return
    from rich.table import Table

    table = Table("difference", "case id")
    for kind, ids in (
        ("missing from index", report.missing),
        ("not in database", report.extra),
        ("stale document", report.stale),
    ):
        for case_id in ids[:show]:
            table.add_row(kind, case_id)
        if len(ids) > show:
            table.add_row(kind, f"... and {len(ids) - show} more")
    console.print(table)


@app.command()
def verify(
    tenant: list[str] = typer.Option(None, help="Tenant(s) to check; default: all."),
    org: str | None = typer.Option(None, help="Only this org's cases."),
    show: int = typer.Option(20, help="Differences listed per kind."),
) -> None:
    """Compare database and index (counts and per-case checksums); exit code 1 when they differ."""
    import asyncio

    from casem.adapters.search import search_from_env
    from casem.app.context import AppContext
    from casem.app.search.maintenance import verify_tenant

    async def main() -> bool:
        context = AppContext.open(migrate=False)
        search = search_from_env()
        try:
            ok = True
            for name in _tenants(context, tenant):
                report = await verify_tenant(context, search, name, org)
                _print_report(report, show)
                ok = ok and report.ok
            return ok
        finally:
            await search.close()
            await context.close()

    if not asyncio.run(main()):
        raise typer.Exit(1)
