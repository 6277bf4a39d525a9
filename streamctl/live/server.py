"""The live view's HTTP server: the page, its sections, the JSON behind them, and validate on POST.

It listens on `bind_address` only and answers only requests addressed to it by a name it listens
on (a page of another site that rebinds its DNS name to 127.0.0.1 gets 421). Nothing changes state
on GET; the one POST runs validate and needs the page's token in a header, a JSON body and, when the
browser says where the request comes from, this origin: a page of another origin can neither read
the token nor send that header without a CORS preflight this server never grants.

    python -m streamctl.live.server --settings STACK_DIR/live-view.yaml   (what `up` starts)
"""

from __future__ import annotations

import argparse
import hmac
import ipaddress
import json
import logging
import secrets
import signal
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from streamctl.live.observer import Observer
from streamctl.live.render import page, render_sections

log = logging.getLogger("streamctl.live")

SCRIPT = (Path(__file__).parent / "live.js").read_text()
SECTIONS = ("windows", "ingest", "kafka", "job", "freshness", "validation")
TOKEN_HEADER = "X-Streamctl-Token"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; connect-src 'self'; "
                               "style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; "
                               "base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def allowed_hosts(bind: str, port: int) -> set[str] | None:
    """The Host headers this server answers; None when it listens on every interface (expose), where
    host_allowed() takes any address literal and this machine's own names instead."""
    address = ipaddress.ip_address(bind)
    if address.is_unspecified:
        return None
    hosts = {f"[{bind}]:{port}" if address.version == 6 else f"{bind}:{port}"}
    if address.is_loopback:
        hosts |= {f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}"}
    return hosts


def host_allowed(host_header: str, hosts: set[str] | None, port: int) -> bool:
    """A name an attacker can point at this machine (DNS rebinding) is never allowed: on every
    interface, only address literals, localhost and this machine's own names are."""
    if hosts is not None:
        return host_header in hosts
    name, _, given_port = host_header.rpartition(":")
    if given_port != str(port):
        return False
    name = name.strip("[]")
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return name.lower() in {"localhost", socket.gethostname().lower(), socket.getfqdn().lower()}


class LiveServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, observer: Observer, bind: str, port: int):
        self.observer = observer
        self.token = secrets.token_urlsafe(24)
        self.address_family = socket.AF_INET6 if ":" in bind else socket.AF_INET
        super().__init__((bind, port), Handler)
        self.hosts = allowed_hosts(bind, self.server_address[1])  # port 0: the one the system chose


class Handler(BaseHTTPRequestHandler):
    server: LiveServer
    server_version = "streamctl-live"
    sys_version = ""
    timeout = 10  # a client that sends nothing does not hold a thread

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        log.debug("%s %s", self.address_string(), format % args)

    # -- answers ---------------------------------------------------------------------------------

    def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in {**SECURITY_HEADERS, **(extra or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, value: Any, extra: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(value).encode(), "application/json", extra)

    def _refuse(self, status: int, reason: str, extra: dict[str, str] | None = None) -> None:
        self._json(status, {"error": reason}, extra)

    def _host_ok(self) -> bool:
        if host_allowed(self.headers.get("Host", ""), self.server.hosts, self.server.server_address[1]):
            return True
        self._refuse(421, "this server answers only requests addressed to it by the address it listens on")
        return False

    # -- methods ---------------------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        if not self._host_ok():
            return
        path = self.path.split("?", 1)[0]
        observer = self.server.observer
        if path == "/":
            self._send(200, page(observer.snapshot(), live=True, token=self.server.token).encode(),
                       "text/html; charset=utf-8")
        elif path == "/live.js":
            self._send(200, SCRIPT.encode(), "text/javascript; charset=utf-8")
        elif path == "/sections":
            self._send(200, render_sections(observer.snapshot(), live=True).encode(), "text/html; charset=utf-8")
        elif path == "/health":
            alive = observer.alive()
            self._json(200 if alive else 503, {"ok": alive, "sampler": "running" if alive else "stopped"})
        elif path == "/api/snapshot":
            self._json(200, observer.snapshot())
        elif path.startswith("/api/") and path[5:] in SECTIONS:
            self._json(200, observer.snapshot()[path[5:]])
        elif path == "/api/validate":
            self._refuse(405, "POST runs validate (with the page's token)", {"Allow": "POST"})
        else:
            self._refuse(404, "no such page")

    do_HEAD = do_GET

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        if not self._host_ok():
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= 4096:
            self._refuse(413 if length > 4096 else 400, "request body too large" if length > 4096
                         else "a bad Content-Length")
            return
        self.rfile.read(length)
        if self.path.split("?", 1)[0] != "/api/validate":
            self._refuse(404 if not self.path.startswith("/api/") else 405, "only /api/validate takes POST")
            return
        refusal = self._cross_site_refusal()
        if refusal:
            self._refuse(403, refusal)
            return
        if self.server.observer.start_validation():
            self._json(202, {"started": True})
        else:
            self._json(409, {"started": False, "error": "a validate is already running"})

    def _cross_site_refusal(self) -> str:
        """Why this POST may come from another site ('' when it comes from the page)."""
        if not hmac.compare_digest(self.headers.get(TOKEN_HEADER, ""), self.server.token):
            return f"missing or wrong {TOKEN_HEADER} header (the page sends it)"
        if not self.headers.get("Content-Type", "").startswith("application/json"):
            return "the body must be application/json"
        origin = self.headers.get("Origin")
        if origin is not None and origin != f"http://{self.headers.get('Host', '')}":
            return f"origin {origin} is not this server"
        if self.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
            return "a request from another site"
        return ""


def serve(observer: Observer, bind: str, port: int, stop: threading.Event) -> None:
    """Serve until `stop` is set; the observer samples in its own thread meanwhile."""
    server = LiveServer(observer, bind, port)
    sampler = threading.Thread(target=observer.run, name="observer", daemon=True)
    sampler.start()
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.5}, daemon=True)
    serving.start()
    try:
        stop.wait()
    finally:
        server.shutdown()
        server.server_close()
        observer.stopping.set()
        sampler.join(timeout=5)


def main() -> None:
    parser = argparse.ArgumentParser(description="streamctl's live view of one stack")
    parser.add_argument("--settings", required=True, help="the stack's settings, as `up` wrote them")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from streamctl.config import load_settings

    settings = load_settings(config_file=Path(args.settings), env={})
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    log.info("live view of stack %s on %s:%s", settings.stack_name, settings.bind_address, settings.ports.ui)
    serve(Observer(settings), settings.bind_address, settings.ports.ui, stop)
    log.info("stopped")


if __name__ == "__main__":
    main()
