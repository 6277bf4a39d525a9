"""connectors.lock against Maven Central itself (network)."""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from streamctl.artifacts.fetch import Fetcher, cached_file
from streamctl.artifacts.lock import read_lock
from streamctl.config import MAVEN_CENTRAL, load_settings
from streamctl.paths import LOCK_FILE

pytestmark = [pytest.mark.integration, pytest.mark.network]


def _get_text(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.read().decode().split()[0].strip().lower()
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


def test_real_download_of_the_smallest_locked_artifact(tmp_path):
    lock = read_lock(LOCK_FILE)
    smallest = min(lock.artifacts, key=lambda a: a.size)
    report = Fetcher(cache_dir=tmp_path, repository=MAVEN_CENTRAL).fetch([smallest])
    assert report.ok and report.downloaded == [smallest]
    data = cached_file(tmp_path, smallest).read_bytes()
    assert len(data) == smallest.size
    assert hashlib.sha256(data).hexdigest() == smallest.sha256


def test_every_locked_sha256_matches_maven_centrals_published_checksums():
    """Fetch the whole lock into the shared cache, then compare with the .sha1 (and .sha256 where
    Maven Central publishes one) served beside each artifact."""
    settings = load_settings(env={})
    lock = read_lock(LOCK_FILE)
    report = Fetcher(cache_dir=settings.cache_dir, repository=MAVEN_CENTRAL).fetch(lock.artifacts)
    assert report.ok, report.failed

    def check(artifact):
        url = MAVEN_CENTRAL + "/" + artifact.repository_path
        published_sha256 = _get_text(url + ".sha256")
        published_sha1 = _get_text(url + ".sha1")
        local = cached_file(settings.cache_dir, artifact).read_bytes()
        problems = []
        if published_sha256 is not None and published_sha256 != artifact.sha256:
            problems.append(f"sha256 lock {artifact.sha256} != published {published_sha256}")
        if published_sha1 is None:
            problems.append("no .sha1 published")
        elif hashlib.sha1(local).hexdigest() != published_sha1:
            problems.append(f"sha1 of the locked file != published {published_sha1}")
        return artifact.coordinates, problems

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(check, lock.artifacts))
    bad = {coords: problems for coords, problems in results if problems}
    assert not bad
