"""Kibana's saved objects (a data view over the aggregated index and the sales dashboard): imported
through Kibana's API at `up`, checked by `validate`. The file is stack/kibana/saved-objects.ndjson."""

from __future__ import annotations

import json
import uuid

from streamctl.errors import StartupError
from streamctl.paths import STACK_DIR
from streamctl.waits import http_request

SAVED_OBJECTS_FILE = STACK_DIR / "kibana" / "saved-objects.ndjson"
DASHBOARD_ID = "streamctl-sales-dashboard"


def saved_objects() -> list[dict]:
    return [json.loads(line) for line in SAVED_OBJECTS_FILE.read_text().splitlines() if line.strip()]


def import_saved_objects(kibana_url: str, timeout_s: float = 30) -> str:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"saved-objects.ndjson\"\r\n"
            f"Content-Type: application/ndjson\r\n\r\n").encode() + SAVED_OBJECTS_FILE.read_bytes() + \
        f"\r\n--{boundary}--\r\n".encode()
    try:
        status, raw = http_request(f"{kibana_url}/api/saved_objects/_import?overwrite=true", timeout_s, "POST", body,
                                   {"kbn-xsrf": "streamctl", "Content-Type": f"multipart/form-data; boundary={boundary}"})
        if not 200 <= status < 300:
            raise OSError(f"HTTP Error {status}: {raw.decode(errors='replace')[:200]}")
        result = json.loads(raw)
    except (OSError, ValueError) as exc:
        raise StartupError(f"importing Kibana's saved objects failed: {exc}", hint="see `streamctl logs kibana`") from None
    if not result.get("success"):
        raise StartupError("Kibana refused some saved objects", details=json.dumps(result.get("errors"))[:1500])
    return f"{result.get('successCount', 0)} saved objects imported"


def dashboard_present(kibana_url: str, timeout_s: float = 10) -> bool:
    try:
        return http_request(f"{kibana_url}/api/saved_objects/dashboard/{DASHBOARD_ID}", timeout_s)[0] == 200
    except OSError:
        return False
