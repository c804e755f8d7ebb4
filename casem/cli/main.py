"""The `casem` command: run services, administer orgs and keys, import data, inspect infrastructure."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="casem",
    help=(
        "casem: self-hostable Case Management, wire-compatible with Datadog's Case Management API.\n\n"
        "Start here: `casem up` runs everything on embedded defaults and prints the API URL and keys."
    ),
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


def _register() -> None:
    # Each sub-command group lives in its own module beside this one.
    from casem.cli import admin, dlq, infra, runtime, search
    from casem.cli.import_cmd import import_command

    app.command("up")(runtime.up)
    app.command("run")(runtime.run)
    app.add_typer(runtime.db_app, name="db")
    app.command("import")(import_command)
    app.add_typer(admin.app, name="admin")
    app.add_typer(dlq.app, name="dlq")
    app.add_typer(infra.app, name="infra")
    app.add_typer(infra.config_app, name="config")
    app.add_typer(search.app, name="search")


_register()

if __name__ == "__main__":
    app()
