"""`casem dlq`: what a case-event-handler flavor could not handle, and replaying it once fixed."""

from __future__ import annotations

import dataclasses
from typing import Any

import typer

from casem.cli.output import Column, Format, format_option, print_rows
from casem.topology.services import EVENT_HANDLER_FLAVORS

app = typer.Typer(
    help="Dead letters of the case-event-handler flavors.\n\n"
    "A message a flavor could not handle after its retries lands on the flavor's dead-letter topic "
    "with the error. Look at them with `casem dlq list` (every flavor) or `casem dlq list --flavor F`; "
    "once the cause is fixed (an endpoint back up, a bad setting corrected), `casem dlq replay --flavor F` "
    "applies each of them "
    "once through the flavor.",
    no_args_is_help=True,
)


def _console() -> Any:
    from rich.console import Console

    return Console()


def _check(flavor: str | None) -> str | None:
    if flavor is not None and flavor not in EVENT_HANDLER_FLAVORS:
        raise typer.BadParameter(f"unknown flavor {flavor!r}; one of: {', '.join(EVENT_HANDLER_FLAVORS)}")
    return flavor


@app.command("list")
def list_command(
    flavor: str | None = typer.Option(
        None, help="Only this flavor, e.g. webhook-delivery (default: every flavor).", callback=_check
    ),
    fmt: Format = format_option(),
) -> None:
    """List dead letters: the flavor, where they came from, the error, the attempts.

    Examples: `casem dlq list`, `casem dlq list --flavor webhook-delivery --format json`.
    """
    import asyncio

    from casem.adapters.bus import open_bus
    from casem.services.case_event_handler.dlq import list_dead_letters

    flavors = [flavor] if flavor else list(EVENT_HANDLER_FLAVORS)

    async def go() -> list[tuple[str, list]]:
        bus = open_bus()
        try:
            # Each topic is read to its end concurrently: listing every flavor takes as long as one.
            found = await asyncio.gather(*(list_dead_letters(bus, f) for f in flavors))
            return list(zip(flavors, found, strict=True))
        finally:
            await bus.close()

    rows = [{"flavor": name, **dataclasses.asdict(d)} for name, letters in asyncio.run(go()) for d in letters]
    where = flavor or f"any of the {len(flavors)} flavors"
    if fmt is Format.json:
        print_rows(rows, [], fmt)
        return
    for row in rows:
        row["position"] = f"{row['partition']}/{row['offset']}"
        row["event"] = f"{row['event_type']} {row['event_id']}" if row["event_id"] else "not a casem event"
    columns = [
        Column("flavor", "flavor", priority=9),
        Column("offset", "position", priority=2),
        Column("event", "event", priority=6),
        Column("source", "source", priority=3),
        Column("attempts", "attempts", priority=4, justify="right"),
        Column("dead-lettered at", "dead_lettered_at", priority=1),
        Column("error", "error", priority=8),
    ]
    print_rows(rows, columns, fmt, title="Dead letters", empty=f"no dead letters for {where}")
    if rows:
        replay = f"--flavor {flavor}" if flavor else "--flavor F"
        _console().print(f"{len(rows)} dead letter(s). Replay once fixed: casem dlq replay {replay}", highlight=False)


@app.command("replay")
def replay_command(flavor: str = typer.Option(..., help="Flavor, e.g. webhook-delivery.", callback=_check)) -> None:
    """Apply each dead letter not replayed yet through the flavor (idempotent: applied events are skipped)."""
    import asyncio

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from casem.adapters.bus import open_bus
    from casem.app.context import AppContext
    from casem.services.case_event_handler.dlq import replay_dead_letters
    from casem.services.case_event_handler.runner import FlavorRunner
    from casem.services.case_event_handler.service import load_flavor

    console = _console()

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
