"""What `up` records in a stack's directory for later commands: the runtime it was brought up with."""

from __future__ import annotations

from pathlib import Path

RUNTIME_FILE = "runtime"


def recorded_runtime(stack_dir: Path) -> str | None:
    path = stack_dir / RUNTIME_FILE
    return path.read_text().strip() if path.is_file() else None


def record_runtime(stack_dir: Path, name: str) -> None:
    stack_dir.mkdir(parents=True, exist_ok=True)
    (stack_dir / RUNTIME_FILE).write_text(name)
