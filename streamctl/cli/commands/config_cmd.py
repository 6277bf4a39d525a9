from __future__ import annotations

import json

import typer
from rich.table import Table

from streamctl.cli.app import app, stdout
from streamctl.config import env_name


@app.command("config")
def config_command(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print the settings as JSON."),
) -> None:
    """Print the effective settings and where each value came from."""
    settings = ctx.obj.settings()
    values = {name: str(value) if not isinstance(value, (int, float, bool)) else value
              for name, value in settings.flat().items()}
    if as_json:
        stdout.print_json(json.dumps(values))
        return
    table = Table(title="streamctl settings (defaults < streamctl.yaml < STREAMCTL_* < flags)")
    table.add_column("setting", style="cyan")
    table.add_column("value")
    table.add_column("from", style="dim")
    table.add_column("environment variable", style="dim")
    for name, value in values.items():
        table.add_row(name, str(value), settings.sources.get(name, "default"), env_name(name))
    stdout.print(table)
