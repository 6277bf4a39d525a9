"""Kibana's saved objects (a data view over the aggregated index and the sales dashboard): imported
through Kibana's API at `up`, checked by `validate`. The file is stack/kibana/saved-objects.ndjson."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid

from streamctl.errors import StartupError
from streamctl.paths import STACK_DIR

SAVED_OBJECTS_FILE = STACK_DIR / "kibana" / "saved-objects.ndjson"
DASHBOARD_ID = "streamctl-sales-dashboard"


def saved_objects() -> list[dict]:
    return [json.loads(line) for line in SAVED_OBJECTS_FILE.read_text().splitlines() if line.strip()]


def import_saved_objects(kibana_url: str, timeout_s: float = 30) -> str:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"saved-objects.ndjson\"\r\n"
            f"Content-Type: application/ndjson\r\n\r\n").encode() + SAVED_OBJECTS_FILE.read_bytes() + \
        f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(f"{kibana_url}/api/saved_objects/_import?overwrite=true", data=body, method="POST",
                                     headers={"kbn-xsrf": "streamctl",
                                              "Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            result = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise StartupError(f"importing Kibana's saved objects failed: {exc}", hint="see `streamctl logs kibana`") from None
    if not result.get("success"):
        raise StartupError("Kibana refused some saved objects", details=json.dumps(result.get("errors"))[:1500])
    return f"{result.get('successCount', 0)} saved objects imported"


def dashboard_present(kibana_url: str, timeout_s: float = 10) -> bool:
    try:
        with urllib.request.urlopen(f"{kibana_url}/api/saved_objects/dashboard/{DASHBOARD_ID}", timeout=timeout_s) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False
