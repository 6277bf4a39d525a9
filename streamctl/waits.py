"""Readiness checks: small functions that answer "is it ready yet?" without blocking for long.

Each returns (ready, detail). The runtime polls them with a deadline and renders progress.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from typing import Any

Check = tuple[bool, str]


def tcp_open(host: str, port: int, timeout_s: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def http_request(url: str, timeout_s: float = 2.0, method: str = "GET", data: bytes | None = None,
                 headers: dict[str, str] | None = None, context: Any = None) -> tuple[int, bytes]:
    """(status, raw body) of one HTTP exchange: an error status is an answer, not an exception; an
    unreachable server raises OSError. Every HTTP request streamctl makes goes through here."""
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s, context=context) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def http_json(url: str, timeout_s: float = 2.0, method: str = "GET", body: Any = None,
              headers: dict[str, str] | None = None, context: Any = None) -> tuple[int, Any]:
    """(status, decoded JSON body). `headers` (e.g. Authorization) and `context` (an ssl.SSLContext
    trusting a given CA) for services that ask for them."""
    data = json.dumps(body).encode() if body is not None else None
    status, raw = http_request(url, timeout_s, method, data,
                               {**({"Content-Type": "application/json"} if data else {}), **(headers or {})}, context)
    if 200 <= status < 300:
        return status, json.loads(raw) if raw else None
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


def http_text(url: str, timeout_s: float = 2.0) -> str:
    """A GET's body as text; an error status raises OSError, as an unreachable server does."""
    status, raw = http_request(url, timeout_s)
    if not 200 <= status < 300:
        raise OSError(f"{url} answered {status}")
    return raw.decode()


def http_ok(url: str, timeout_s: float = 2.0) -> Check:
    try:
        status, _ = http_json(url, timeout_s)
    except (OSError, ValueError) as exc:
        return False, f"{url}: {getattr(exc, 'reason', exc)}"
    return status == 200, f"{url} answered {status}"
