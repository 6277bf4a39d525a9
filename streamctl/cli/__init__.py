"""The command line: typer commands parse, call the core, render with rich, map to exit codes."""

from streamctl.cli import commands  # noqa: F401  (registers every command on `app`)
from streamctl.cli.app import app, main, run

__all__ = ["app", "main", "run"]
