"""`casem infra` and `casem config`: datacenter catalog, Helm values and the infrastructure report."""

from __future__ import annotations

import typer

app = typer.Typer(help="Datacenter catalog, Helm values and the generated infrastructure report.", no_args_is_help=True)
config_app = typer.Typer(help="Show the effective configuration of a service in a datacenter.", no_args_is_help=True)
