"""`streamctl load` exits 1 when the failure ratio is above --max-failure-ratio (docs/configuration.md, "Exit codes"):
real Locust against a port where nothing answers, so every request fails."""

from __future__ import annotations

import pytest

from streamctl.exit_codes import ExitCode

pytestmark = pytest.mark.integration


def test_load_above_the_failure_ratio_exits_1(cli, tmp_path):
    code, out, _ = cli("--state-dir", str(tmp_path), "load", "--host", "http://127.0.0.1:9", "--users", "2",
                       "--spawn-rate", "2", "--duration", "3s")
    assert code == ExitCode.CHECK_FAILED
    assert "failure ratio 100.00% is above 1.00%" in " ".join(out.split())


def test_a_429_counts_as_a_failure_and_the_bundled_users_wait_its_retry_after(cli, tmp_path):
    """A producer API refusing with 429 + Retry-After (admission control): every refusal is a failed
    request under its own message, and the max profile's users, which never wait otherwise, wait the
    Retry-After: a few POSTs in 4 s, not thousands."""
    import http.server
    import threading

    posts = []

    class Behind(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the standard library's name
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            posts.append(self.path)
            body = b'{"error": "the pipeline is behind; retry later"}'
            self.send_response(429)
            self.send_header("Retry-After", "2")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Behind)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        code, out, _ = cli("--state-dir", str(tmp_path), "load", "--host", f"http://127.0.0.1:{server.server_port}",
                           "--users", "1", "--spawn-rate", "1", "--duration", "4s", "--profile", "max")
    finally:
        server.shutdown()
    assert code == ExitCode.CHECK_FAILED
    (failures,) = tmp_path.glob("**/load/*/*_failures.csv")
    assert "429 the pipeline is behind (Retry-After 2 s)" in failures.read_text()
    assert 1 <= len(posts) <= 4, f"{len(posts)} POSTs in 4 s: the Retry-After was not waited"
