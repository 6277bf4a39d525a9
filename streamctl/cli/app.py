"""The CLI frame: global options, error rendering and exit codes. Commands live in sibling modules."""

from __future__ import annotations

import os
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import typer

try:  # typer 0.2x carries its own copy of click: its exceptions are the ones raised
    from typer._click.exceptions import ClickException, UsageError
except ImportError:  # pragma: no cover - typer on the real click
    from click.exceptions import ClickException, UsageError  # type: ignore[assignment]
from rich.console import Console

from streamctl import __version__, lifecycle
from streamctl.config import Settings, load_settings
from streamctl.errors import StreamctlError
from streamctl.exit_codes import ExitCode
from streamctl.live import service as live_view

# The live view beside every stack: `up` starts it, `down` stops it (lifecycle knows it only as a companion).
lifecycle.attach(lifecycle.Companion("live view", live_view.NAME, live_view.ensure_running, live_view.running,
                                     live_view.stop, "`streamctl ui` serves it"))

app = typer.Typer(
    name="streamctl",
    help="Run a real e-commerce stream-processing stack (Kafka, Flink, PostgreSQL, Elasticsearch) and prove it exact.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

stdout = Console()
stderr = Console(stderr=True)


@dataclass
class AppContext:
    config_file: Optional[Path] = None
    overrides: dict[str, Any] = field(default_factory=dict)
    debug: bool = False

    def settings(self, **flag_overrides: Any) -> Settings:
        """Effective settings; command flags are passed by setting name (dots as double underscores)."""
        overrides = dict(self.overrides)
        overrides.update({k.replace("__", "."): v for k, v in flag_overrides.items()})
        return load_settings(self.config_file, overrides=overrides)


def _version_callback(value: bool) -> None:
    if value:
        stdout.print(f"streamctl {__version__}")
        raise typer.Exit()


@app.callback()
def _global_options(
    ctx: typer.Context,
    config: Optional[Path] = typer.Option(
        None, "--config", "-c", envvar="STREAMCTL_CONFIG", help="Settings file (default: ./streamctl.yaml if present)."
    ),
    stack_name: Optional[str] = typer.Option(None, "--stack", help="Stack name: one state directory per stack."),
    state_dir: Optional[Path] = typer.Option(None, "--state-dir", help="Where stacks keep data, logs and pids."),
    debug: bool = typer.Option(False, "--debug", envvar="STREAMCTL_DEBUG", help="Show tracebacks for errors."),
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    ctx.obj = AppContext(
        config_file=config,
        overrides={"stack_name": stack_name, "state_dir": str(state_dir) if state_dir else None},
        debug=debug,
    )


def render_error(error: StreamctlError) -> None:
    stderr.print(f"[bold red]error:[/] {error.message}", highlight=False, soft_wrap=True)
    if error.details:
        stderr.print(error.details, highlight=False, markup=False)
    if error.hint:
        stderr.print(f"[yellow]hint:[/] {error.hint}", highlight=False, soft_wrap=True)


def run(args: list[str] | None = None) -> int:
    """Run the CLI in-process and return the exit status (no SystemExit)."""
    command = typer.main.get_command(app)
    debug = os.environ.get("STREAMCTL_DEBUG", "").lower() in {"1", "true", "yes"} or "--debug" in (args or sys.argv)
    try:
        result = command.main(args=args, prog_name="streamctl", standalone_mode=False)
        return int(result) if isinstance(result, int) else ExitCode.OK
    except typer.Exit as exc:
        return exc.exit_code
    except UsageError as exc:
        where = exc.ctx.command_path if exc.ctx else "streamctl"
        stderr.print(f"[bold red]error:[/] {exc.format_message()}", highlight=False, soft_wrap=True)
        stderr.print(f"[yellow]hint:[/] see `{where} --help`", highlight=False, soft_wrap=True)
        return ExitCode.USAGE
    except (typer.Abort, KeyboardInterrupt):
        stderr.print("[yellow]interrupted[/]")
        return ExitCode.INTERRUPTED
    except StreamctlError as exc:
        if debug:
            traceback.print_exc()
        render_error(exc)
        return exc.exit_code
    except ClickException as exc:
        stderr.print(f"[bold red]error:[/] {exc.format_message()}", highlight=False)
        return ExitCode.USAGE
    except Exception as exc:  # a bug: say so plainly, keep the traceback for --debug
        if debug:
            traceback.print_exc()
        stderr.print(f"[bold red]internal error:[/] {type(exc).__name__}: {exc}", highlight=False, soft_wrap=True)
        stderr.print("[yellow]hint:[/] rerun with --debug for the traceback and report it", highlight=False)
        return ExitCode.INTERNAL_ERROR


def main() -> None:
    sys.exit(run())
