"""Is the indexer healthy? Read from the status file it rewrites after every poll. Kept apart from
the indexer so the container healthcheck (`python -m streamctl.pipeline.indexer_status`) imports
neither the Kafka nor the Elasticsearch client."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

MAX_AGE_S = 10.0


def healthy(status_file: Path, max_age_s: float = MAX_AGE_S) -> tuple[bool, str]:
    """Running, and the status was written recently."""
    try:
        status = json.loads(status_file.read_text())
    except (OSError, ValueError):
        return False, "no status yet"
    age = time.time() - status.get("updated", 0)
    if status.get("state") == "running" and age < max_age_s:
        return True, f"indexed {status.get('indexed', 0)} documents"
    return False, f"{status.get('state')} ({status.get('error') or f'status {age:.0f} s old'})"


if __name__ == "__main__":
    ok, detail = healthy(Path(os.environ["INDEXER_STATUS_FILE"]))
    print(detail)
    sys.exit(0 if ok else 1)
