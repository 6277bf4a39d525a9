"""Where the project's own files are: the stack definition and the lock sit beside the package."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
STACK_DIR = PROJECT_ROOT / "stack"
LOCK_FILE = PROJECT_ROOT / "connectors.lock"
