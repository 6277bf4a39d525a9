"""streamctl: run a real e-commerce stream-processing stack and prove it exact."""

import sys

__version__ = "0.1.0"

if sys.version_info[:2] != (3, 11):  # pragma: no cover - guarded by requires-python too
    sys.stderr.write(
        f"streamctl needs Python 3.11 (apache-flink 1.20 has wheels only up to 3.11); "
        f"this is Python {sys.version_info.major}.{sys.version_info.minor}. "
        "Hint: create the venv with python3.11 (make setup does).\n"
    )
    raise SystemExit(3)
