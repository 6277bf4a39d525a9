"""Download locked artifacts into the cache: verified by sha256 before they are moved into place."""

from __future__ import annotations

import hashlib
import os
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Protocol

from streamctl.artifacts.lock import Artifact

PART_SUFFIX = ".part"
CHUNK = 256 * 1024


class FetchProgress(Protocol):
    """What the fetcher tells its caller; the CLI renders it, tests record it."""

    def begin(self, artifact: Artifact) -> None: ...
    def advance(self, artifact: Artifact, nbytes: int) -> None: ...
    def end(self, artifact: Artifact, outcome: str) -> None: ...


class SilentProgress:
    def begin(self, artifact: Artifact) -> None: ...
    def advance(self, artifact: Artifact, nbytes: int) -> None: ...
    def end(self, artifact: Artifact, outcome: str) -> None: ...


@dataclass(frozen=True)
class Corrupt:
    artifact: Artifact
    expected: str
    actual: str
    where: str  # "cache" (found corrupt, replaced) or "download" (the repository served other bytes)


@dataclass
class FetchReport:
    cached: list[Artifact] = field(default_factory=list)
    downloaded: list[Artifact] = field(default_factory=list)
    corrupt: list[Corrupt] = field(default_factory=list)
    failed: list[tuple[Artifact, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def downloaded_bytes(self) -> int:
        return sum(a.size for a in self.downloaded)


class _Permanent(Exception):
    """An error that retrying will not fix (404, checksum mismatch)."""


def sha256_of(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def cached_file(cache_dir: Path, artifact: Artifact) -> Path:
    return cache_dir / artifact.cache_path


def remove_stale_parts(cache_dir: Path) -> int:
    """Partial downloads left by a killed run are never used; delete them."""
    removed = 0
    if cache_dir.is_dir():
        for part in cache_dir.rglob(f"*{PART_SUFFIX}"):
            part.unlink(missing_ok=True)
            removed += 1
    return removed


@dataclass
class Fetcher:
    cache_dir: Path
    repository: str
    progress: FetchProgress = field(default_factory=SilentProgress)
    parallel: int = 4
    retries: int = 4
    backoff_seconds: float = 1.0
    timeout_seconds: float = 60.0

    def fetch(self, artifacts: Iterable[Artifact], offline: bool = False) -> FetchReport:
        started = time.monotonic()
        report = FetchReport()
        remove_stale_parts(self.cache_dir)
        todo = []
        for artifact in artifacts:
            path = cached_file(self.cache_dir, artifact)
            if path.is_file():
                actual = sha256_of(path)
                if actual == artifact.sha256:
                    report.cached.append(artifact)
                    self.progress.begin(artifact)
                    self.progress.end(artifact, "cached")
                    continue
                path.unlink()
                report.corrupt.append(Corrupt(artifact, artifact.sha256, actual, "cache"))
            if offline:
                report.failed.append((artifact, "not in the cache (offline: nothing downloaded)"))
            else:
                todo.append(artifact)
        if todo:
            with ThreadPoolExecutor(max_workers=self.parallel) as pool:
                for artifact, error in zip(todo, pool.map(self._download_one, todo, [report] * len(todo)), strict=True):
                    if error is None:
                        report.downloaded.append(artifact)
                    else:
                        report.failed.append((artifact, error))
        report.seconds = time.monotonic() - started
        return report

    def url_of(self, artifact: Artifact) -> str:
        return self.repository.rstrip("/") + "/" + artifact.repository_path

    def _download_one(self, artifact: Artifact, report: FetchReport) -> str | None:
        self.progress.begin(artifact)
        error = None
        for attempt in range(self.retries + 1):
            try:
                self._transfer(artifact, report)
                self.progress.end(artifact, "downloaded")
                return None
            except _Permanent as exc:
                error = str(exc)
                break
            except (urllib.error.URLError, OSError, TimeoutError) as exc:
                error = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
                if attempt < self.retries:
                    time.sleep(self.backoff_seconds * 2**attempt)
        self.progress.end(artifact, "failed")
        return error

    def _transfer(self, artifact: Artifact, report: FetchReport) -> None:
        target = cached_file(self.cache_dir, artifact)
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(f"{target.name}.{os.getpid()}.{id(artifact)}{PART_SUFFIX}")
        digest = hashlib.sha256()
        received = 0
        try:
            request = urllib.request.Request(self.url_of(artifact), headers={"User-Agent": "streamctl"})
            try:
                response = urllib.request.urlopen(request, timeout=self.timeout_seconds)
            except urllib.error.HTTPError as exc:
                if exc.code in (404, 403, 401, 410):
                    raise _Permanent(f"HTTP {exc.code} from {self.url_of(artifact)}") from None
                raise
            with response, part.open("wb") as out:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    self.progress.advance(artifact, len(chunk))
                out.flush()
                os.fsync(out.fileno())
            if received < artifact.size:  # the connection dropped: worth another try
                raise ConnectionError(f"connection closed after {received} of {artifact.size} bytes")
            actual = digest.hexdigest()
            if actual != artifact.sha256:
                report.corrupt.append(Corrupt(artifact, artifact.sha256, actual, "download"))
                raise _Permanent(
                    f"checksum mismatch: expected sha256 {artifact.sha256}, got {actual} "
                    f"({received} of {artifact.size} bytes); the download was deleted"
                )
            os.replace(part, target)
        except BaseException:
            self.progress.advance(artifact, -received)  # a retry starts the file's bar again
            raise
        finally:
            # Whatever happened (error, Ctrl-C), nothing half-written stays in the cache.
            part.unlink(missing_ok=True)
