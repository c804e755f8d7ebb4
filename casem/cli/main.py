"""The `casem` command: run services, administer orgs and keys, import data, inspect infrastructure.

Each sub-command lives in its own module and is imported only when it runs or its help is asked for:
`casem --help` lists the table below without importing any of them, so it answers at once instead of
loading the web, database and gRPC stacks. A new sub-command is one row of COMMANDS.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup


@dataclass(frozen=True)
class LazyCommand:
    module: str
    attribute: str  # a typer.Typer (a group of commands) or a function (one command)
    summary: str  # the line `casem --help` shows, so listing needs no import


COMMANDS: dict[str, LazyCommand] = {
    "up": LazyCommand("casem.cli.runtime", "up", "Run every built service on embedded defaults; print URLs and keys."),
    "run": LazyCommand("casem.cli.runtime", "run", "Run one service of the seed in the foreground."),
    "db": LazyCommand("casem.cli.db", "app", "Tenant databases: migrate and inspect."),
    "import": LazyCommand("casem.cli.import_cmd", "import_command", "Import orgs, keys and cases from a JSON file."),
    "admin": LazyCommand("casem.cli.admin", "app", "Administer orgs, users and API/application keys."),
    "dlq": LazyCommand("casem.cli.dlq", "app", "Dead letters of the case-event-handler flavors."),
    "infra": LazyCommand("casem.cli.infra", "app", "Datacenter catalog, Helm values and the infrastructure report."),
    "config": LazyCommand("casem.cli.infra", "config_app", "Show the effective configuration of a service."),
    "search": LazyCommand("casem.cli.search", "app", "The case search index: rebuild it, check it."),
}


def load_command(name: str) -> Any:
    """The click command of a sub-command, importing its module now."""
    entry = COMMANDS[name]
    target = getattr(importlib.import_module(entry.module), entry.attribute)
    if isinstance(target, typer.Typer):  # a group of commands, even when it has only one
        command = typer.main.get_group(target)
    else:  # a plain function: one command
        single = typer.Typer()
        single.command(name)(target)
        command = typer.main.get_command(single)
    command.name = name
    _plain_help(command)
    return command


def _plain_help(command: Any) -> None:
    """Plain click help everywhere: rendering it with rich would import rich, markdown-it and pygments."""
    if hasattr(command, "rich_markup_mode"):
        command.rich_markup_mode = None
    for sub in getattr(command, "commands", {}).values():
        _plain_help(sub)


def _skip_coercing_unset_options() -> None:
    """An option the command line leaves unset arrives as None, whatever its type, and typer builds a pydantic
    TypeAdapter to coerce that None to None: importing pydantic (about 100 ms) on every `--help`. Answer None
    (or () for a repeatable option) directly, as typer's coercion would. A typer without this class keeps its
    own behaviour (only slower)."""
    parameter = getattr(typer.core, "_TyperParameter", None)
    if parameter is None or getattr(parameter, "_casem_quick_unset", False):
        return
    typer_process_value = parameter.process_value

    def process_value(self: Any, ctx: Any, value: Any) -> Any:
        if value is not None or self.required:
            return typer_process_value(self, ctx, value)
        value = () if self.multiple or self.nargs == -1 else None
        return self.callback(ctx, self, value) if self.callback is not None else value

    parameter.process_value = process_value
    parameter._casem_quick_unset = True


_skip_coercing_unset_options()


class LazyGroup(TyperGroup):
    """A command group that imports a sub-command's module only when that sub-command is used."""

    _listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in COMMANDS:
            return None
        if self._listing:  # `casem --help`: the summary is enough
            return TyperCommand(name=cmd_name, help=COMMANDS[cmd_name].summary)
        if cmd_name not in self.commands:
            self.commands[cmd_name] = load_command(cmd_name)
        return self.commands[cmd_name]

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        # Typer suggests close matches from `self.commands`: make every name known before a typo is reported.
        if args and args[0] not in COMMANDS:
            for name in COMMANDS:
                self.commands.setdefault(name, TyperCommand(name=name, help=COMMANDS[name].summary))
        return super().resolve_command(ctx, args)


app = typer.Typer(
    name="casem",
    cls=LazyGroup,
    help=(
        "casem: self-hostable Case Management, wire-compatible with Datadog's Case Management API.\n\n"
        "Start here: `casem up` runs everything on embedded defaults and prints the API URL and keys."
    ),
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,  # see _plain_help
)


@app.callback()
def _root() -> None:
    # A callback makes `app` a group even though its commands are added lazily.
    pass


if __name__ == "__main__":
    app()
