"""The fetcher against a real local HTTP server standing in for a Maven mirror."""

from __future__ import annotations

import hashlib
import http.server
import threading
from pathlib import Path

import pytest

from streamctl.artifacts.fetch import Fetcher, cached_file
from streamctl.artifacts.lock import Artifact, Role


class Mirror(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.truncate: set[str] = set()  # send half the body, then drop the connection
        self.fail_first: dict[str, int] = {}  # path -> number of 503s before a 200
        self.requests: list[str] = []
        super().__init__(("127.0.0.1", 0), Handler)


class Handler(http.server.BaseHTTPRequestHandler):
    server: Mirror

    def log_message(self, *args):
        pass

    def do_GET(self):
        # As a proxy it is asked for absolute URIs (http://host/path); it serves them from its files.
        path = self.path.split("://", 1)[1].split("/", 1)[1] if "://" in self.path else self.path.lstrip("/")
        self.server.requests.append(self.path if "://" in self.path else path)
        if self.server.fail_first.get(path, 0) > 0:
            self.server.fail_first[path] -= 1
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = self.server.files.get(path)
        if body is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if path in self.server.truncate:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        self.wfile.write(body)


@pytest.fixture
def mirror():
    server = Mirror()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def publish(mirror: Mirror, name: str, body: bytes, role: str = Role.FLINK_CONNECTOR) -> Artifact:
    artifact = Artifact("org.example", name, "1.0", "jar", "", hashlib.sha256(body).hexdigest(), len(body), role)
    mirror.files[artifact.repository_path] = body
    return artifact


def fetcher(mirror: Mirror, cache: Path) -> Fetcher:
    return Fetcher(cache_dir=cache, repository=f"http://127.0.0.1:{mirror.server_port}/", backoff_seconds=0.01,
                   retries=2)


def only_final_files(cache: Path) -> list[str]:
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*") if p.is_file())


def test_downloads_then_skips_what_is_cached(mirror, tmp_path):
    artifacts = [publish(mirror, f"a{i}", bytes([i]) * (1000 + i)) for i in range(5)]
    first = fetcher(mirror, tmp_path).fetch(artifacts)
    assert first.ok and len(first.downloaded) == 5
    requests = len(mirror.requests)
    second = fetcher(mirror, tmp_path).fetch(artifacts)
    assert second.ok and len(second.cached) == 5 and not second.downloaded
    assert len(mirror.requests) == requests  # nothing asked of the network
    for a in artifacts:
        assert cached_file(tmp_path, a).read_bytes() == mirror.files[a.repository_path]


def test_tampered_cache_file_is_named_deleted_and_refetched(mirror, tmp_path):
    artifact = publish(mirror, "lib", b"good bytes" * 100)
    fetcher(mirror, tmp_path).fetch([artifact])
    path = cached_file(tmp_path, artifact)
    path.write_bytes(b"evil bytes" * 100)
    report = fetcher(mirror, tmp_path).fetch([artifact])
    assert report.ok and report.downloaded == [artifact]
    (corrupt,) = report.corrupt
    assert corrupt.where == "cache" and corrupt.expected == artifact.sha256
    assert corrupt.actual == hashlib.sha256(b"evil bytes" * 100).hexdigest()
    assert path.read_bytes() == b"good bytes" * 100


def test_tampered_cache_file_fails_offline(mirror, tmp_path):
    artifact = publish(mirror, "lib", b"good bytes")
    fetcher(mirror, tmp_path).fetch([artifact])
    cached_file(tmp_path, artifact).write_bytes(b"truncated")
    requests = len(mirror.requests)
    report = fetcher(mirror, tmp_path).fetch([artifact], offline=True)
    assert not report.ok and report.corrupt[0].artifact == artifact
    assert "offline" in report.failed[0][1]
    assert len(mirror.requests) == requests
    assert not cached_file(tmp_path, artifact).exists()


def test_repository_serving_other_bytes_is_a_failure_and_leaves_nothing(mirror, tmp_path):
    artifact = publish(mirror, "lib", b"expected")
    mirror.files[artifact.repository_path] = b"something else"
    report = fetcher(mirror, tmp_path).fetch([artifact])
    assert not report.ok
    assert "checksum mismatch" in report.failed[0][1]
    assert report.corrupt[0].where == "download"
    assert only_final_files(tmp_path) == []


def test_interrupted_download_leaves_nothing_half_written(mirror, tmp_path):
    artifact = publish(mirror, "big", b"x" * 500_000)
    mirror.truncate.add(artifact.repository_path)
    report = fetcher(mirror, tmp_path).fetch([artifact])
    assert not report.ok
    assert only_final_files(tmp_path) == []
    assert len([r for r in mirror.requests if r == artifact.repository_path]) == 3  # retried


def test_keyboard_interrupt_mid_download_leaves_nothing(mirror, tmp_path):
    artifact = publish(mirror, "big", b"y" * 2_000_000)

    class Interrupting:
        def begin(self, a): ...
        def end(self, a, outcome): ...
        def advance(self, a, n):
            if n > 0:
                raise KeyboardInterrupt

    f = fetcher(mirror, tmp_path)
    f.progress = Interrupting()
    with pytest.raises(KeyboardInterrupt):
        f.fetch([artifact])
    assert only_final_files(tmp_path) == []


def test_stale_partial_files_are_removed(mirror, tmp_path):
    artifact = publish(mirror, "lib", b"abc")
    stale = cached_file(tmp_path, artifact).with_name("lib-1.0.jar.123.456.part")
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"half")
    assert fetcher(mirror, tmp_path).fetch([artifact]).ok
    assert only_final_files(tmp_path) == [artifact.cache_path]


def test_transient_errors_are_retried(mirror, tmp_path):
    artifact = publish(mirror, "flaky", b"data")
    mirror.fail_first[artifact.repository_path] = 2
    report = fetcher(mirror, tmp_path).fetch([artifact])
    assert report.ok and report.downloaded == [artifact]


def test_missing_artifact_is_not_retried(mirror, tmp_path):
    artifact = Artifact("org.example", "absent", "1", "jar", "", "0" * 64, 1, Role.FLINK_CONNECTOR)
    report = fetcher(mirror, tmp_path).fetch([artifact])
    assert "HTTP 404" in report.failed[0][1]
    assert len(mirror.requests) == 1


def test_cli_reports_mismatch_with_both_checksums(cli, mirror, tmp_path, monkeypatch):
    """Through the CLI: a corrupted cached file is named, both checksums shown, and fetched again."""
    from streamctl.artifacts import lock as lock_module
    from streamctl.cli.commands import fetch as fetch_cmd

    artifact = publish(mirror, "lib", b"original" * 10)
    lock_path = tmp_path / "connectors.lock"
    lock_path.write_text(lock_module.render_lock(lock_module.Lock((artifact,)), "test"))
    monkeypatch.setattr(fetch_cmd, "LOCK_FILE", lock_path)
    cache = tmp_path / "cache"
    args = ("fetch-connectors", "--cache-dir", str(cache), "--repository", f"http://127.0.0.1:{mirror.server_port}")
    code, out, _ = cli(*args)
    assert code == 0 and "1 downloaded" in out
    cached_file(cache, artifact).write_bytes(b"tampered")
    code, out, err = cli(*args)
    assert code == 0
    assert "lib-1.0.jar" in err and artifact.sha256 in err and hashlib.sha256(b"tampered").hexdigest() in err
    cached_file(cache, artifact).write_bytes(b"tampered")
    code, _, err = cli(*args, "--offline")
    assert code == 5 and "could not be fetched" in err


def test_http_proxy_is_honoured_and_no_proxy_bypasses_it(mirror, tmp_path, monkeypatch):
    import urllib.request

    monkeypatch.setattr(urllib.request, "_opener", None)  # the default opener reads the proxy variables once
    artifact = publish(mirror, "proxied", b"p" * 300)
    for name in ("http_proxy", "HTTP_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{mirror.server_port}")
    through_proxy = Fetcher(cache_dir=tmp_path, repository="http://repo.invalid/", backoff_seconds=0.01,
                            retries=0)
    assert through_proxy.fetch([artifact]).ok
    assert mirror.requests == [f"http://repo.invalid/{artifact.repository_path}"]
    cached_file(tmp_path, artifact).unlink()
    monkeypatch.setenv("NO_PROXY", "repo.invalid")
    direct = through_proxy.fetch([artifact])
    assert not direct.ok  # repo.invalid does not resolve: it went direct, not through the proxy
    assert len(mirror.requests) == 1
