"""`casem dlq`: what a case-event-handler flavor could not handle, and replaying it once fixed."""

from __future__ import annotations

import asyncio

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from casem.topology.services import EVENT_HANDLER_FLAVORS

app = typer.Typer(
    help="Dead letters of the case-event-handler flavors.\n\n"
    "A message a flavor could not handle after its retries lands on the flavor's dead-letter topic "
    "with the error. Look at them with `casem dlq list --flavor F`; once the cause is fixed (an "
    "endpoint back up, a bad setting corrected), `casem dlq replay --flavor F` applies each of them "
    "once through the flavor.",
    no_args_is_help=True,
)
console = Console()


def _check(flavor: str) -> str:
    if flavor not in EVENT_HANDLER_FLAVORS:
        raise typer.BadParameter(f"unknown flavor {flavor!r}; one of: {', '.join(EVENT_HANDLER_FLAVORS)}")
    return flavor


@app.command("list")
def list_command(flavor: str = typer.Option(..., help="Flavor, e.g. webhook-delivery.", callback=_check)) -> None:
    """List a flavor's dead letters: where they came from, the error, the attempts."""
    from casem.adapters.bus import open_bus
    from casem.services.case_event_handler.dlq import list_dead_letters

    async def go() -> list:
        bus = open_bus()
        try:
            return await list_dead_letters(bus, flavor)
        finally:
            await bus.close()

    letters = asyncio.run(go())
    if not letters:
        console.print(f"[green]no dead letters for {flavor}[/]")
        return
    table = Table("offset", "event", "source", "attempts", "dead-lettered at", "error", title=f"{flavor} dead letters")
    for d in letters:
        event = f"{d.event_type} {d.event_id}" if d.event_id else "[red]not a casem event[/]"
        table.add_row(f"{d.partition}/{d.offset}", event, d.source, str(d.attempts), d.dead_lettered_at, d.error)
    console.print(table)
    console.print(f"{len(letters)} dead letter(s). Replay once fixed: casem dlq replay --flavor {flavor}")


@app.command("replay")
def replay_command(flavor: str = typer.Option(..., help="Flavor, e.g. webhook-delivery.", callback=_check)) -> None:
    """Apply each dead letter not replayed yet through the flavor (idempotent: applied events are skipped)."""
    from casem.adapters.bus import open_bus
    from casem.app.context import AppContext
    from casem.services.case_event_handler.dlq import replay_dead_letters
    from casem.services.case_event_handler.runner import FlavorRunner
    from casem.services.case_event_handler.service import load_flavor

    async def go():  # type: ignore[no-untyped-def]
        bus = open_bus()
        context = AppContext.open()
        producer = bus.producer()
        try:
            runner = FlavorRunner(load_flavor(flavor), context, producer)
            with Progress(TextColumn("replaying"), BarColumn(), MofNCompleteColumn(), console=console) as bar:
                task = bar.add_task("replay", total=None)
                return await replay_dead_letters(bus, runner, lambda n: bar.advance(task, n))
        finally:
            await producer.close()
            await context.close()
            await bus.close()

    report = asyncio.run(go())
    console.print(f"applied {report.applied}, already applied {report.already_applied}")
    if report.failed is not None:
        console.print(
            f"[red]stopped at {report.failed.partition}/{report.failed.offset}[/]: {report.failure}\n"
            "It and the dead letters after it stay for the next replay."
        )
        raise typer.Exit(1)
