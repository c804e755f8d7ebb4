"""`casem dlq`: what a case-event-handler flavor or a third-party reader could not handle, and replaying it."""

from __future__ import annotations

import dataclasses
from typing import Any

import typer

from casem.cli.output import Column, Format, format_option, print_rows
from casem.topology.services import EVENT_HANDLER_FLAVORS, THIRD_PARTY_READER_FLAVORS

app = typer.Typer(
    help="Dead letters of the case-event-handler flavors and the case-third-party-reader.\n\n"
    "A message a flavor could not handle after its retries lands on the flavor's dead-letter topic "
    "with the error; so does a Jira or ServiceNow change the reader could not apply. Look at them with "
    "`casem dlq list` (all of them), `casem dlq list --flavor F` or `casem dlq list --reader jira`; "
    "once the cause is fixed (an endpoint back up, a bad setting corrected), `casem dlq replay --flavor F` "
    "(or `--reader R`) applies each of them once.",
    no_args_is_help=True,
)

READER_PREFIX = "case-third-party-reader "  # how the listing names a reader flavor's dead letters


def _console() -> Any:
    from rich.console import Console

    return Console()


def _check(flavor: str | None) -> str | None:
    if flavor is not None and flavor not in EVENT_HANDLER_FLAVORS:
        raise typer.BadParameter(f"unknown flavor {flavor!r}; one of: {', '.join(EVENT_HANDLER_FLAVORS)}")
    return flavor


def _check_reader(reader: str | None) -> str | None:
    if reader is not None and reader not in THIRD_PARTY_READER_FLAVORS:
        raise typer.BadParameter(f"unknown reader {reader!r}; one of: {', '.join(THIRD_PARTY_READER_FLAVORS)}")
    return reader


@app.command("list")
def list_command(
    flavor: str | None = typer.Option(
        None, help="Only this handler flavor, e.g. webhook-delivery (default: all).", callback=_check
    ),
    reader: str | None = typer.Option(
        None, help="Only this third-party reader flavor: jira or servicenow (default: all).", callback=_check_reader
    ),
    fmt: Format = format_option(),
) -> None:
    """List dead letters: whose, where they came from, the error, the attempts.

    Examples: `casem dlq list`, `casem dlq list --flavor webhook-delivery --format json`,
    `casem dlq list --reader jira`.
    """
    import asyncio

    from casem.adapters.bus import open_bus
    from casem.services.case_event_handler.dlq import list_dead_letters
    from casem.services.case_third_party_reader.dlq import list_reader_dead_letters

    if flavor and reader:
        raise typer.BadParameter("give --flavor or --reader, not both")
    if flavor or reader:
        flavors, readers = ([flavor] if flavor else []), ([reader] if reader else [])
    else:
        flavors, readers = list(EVENT_HANDLER_FLAVORS), list(THIRD_PARTY_READER_FLAVORS)
    names = flavors + [READER_PREFIX + r for r in readers]

    async def go() -> list[tuple[str, list]]:
        bus = open_bus()
        try:
            # Each topic is read to its end concurrently: listing all of them takes as long as one.
            found = await asyncio.gather(
                *(list_dead_letters(bus, f) for f in flavors), *(list_reader_dead_letters(bus, r) for r in readers)
            )
            return list(zip(names, found, strict=True))
        finally:
            await bus.close()

    rows = [{"flavor": name, **dataclasses.asdict(d)} for name, letters in asyncio.run(go()) for d in letters]
    where = flavor or (f"the {reader} reader" if reader else f"any of the {len(names)} flavors and readers")
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
        replay = f"--flavor {flavor}" if flavor else f"--reader {reader}" if reader else "--flavor F (or --reader R)"
        _console().print(f"{len(rows)} dead letter(s). Replay once fixed: casem dlq replay {replay}", highlight=False)


@app.command("replay")
def replay_command(
    flavor: str | None = typer.Option(None, help="Handler flavor, e.g. webhook-delivery.", callback=_check),
    reader: str | None = typer.Option(
        None, help="Third-party reader flavor: jira or servicenow.", callback=_check_reader
    ),
) -> None:
    """Apply each dead letter not replayed yet (idempotent: what was applied already is skipped).

    Examples: `casem dlq replay --flavor webhook-delivery`, `casem dlq replay --reader jira`.
    """
    import asyncio

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from casem.adapters.bus import open_bus
    from casem.app.context import AppContext

    if (flavor is None) == (reader is None):
        raise typer.BadParameter("give one of --flavor F or --reader R")
    console = _console()

    async def go():  # type: ignore[no-untyped-def]
        bus = open_bus()
        context = AppContext.open()
        producer = bus.producer()
        try:
            with Progress(TextColumn("replaying"), BarColumn(), MofNCompleteColumn(), console=console) as bar:
                task = bar.add_task("replay", total=None)
                if reader is not None:
                    from casem.services.case_third_party_reader.dlq import replay_reader_dead_letters
                    from casem.services.case_third_party_reader.runner import ReaderRunner

                    runner = ReaderRunner(reader, context, producer)
                    return await replay_reader_dead_letters(bus, runner, lambda n: bar.advance(task, n))
                from casem.services.case_event_handler.dlq import replay_dead_letters
                from casem.services.case_event_handler.runner import FlavorRunner
                from casem.services.case_event_handler.service import load_flavor

                assert flavor is not None
                handler = FlavorRunner(load_flavor(flavor), context, producer)
                return await replay_dead_letters(bus, handler, lambda n: bar.advance(task, n))
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
