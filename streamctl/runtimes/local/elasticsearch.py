"""Elasticsearch 8 from the locked integ-test zip: unpacked once in the cache, configured per stack."""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path

from streamctl.artifacts.fetch import cached_file
from streamctl.artifacts.lock import Role, read_lock
from streamctl.net import http_url
from streamctl.paths import LOCK_FILE
from streamctl.runtimes.local.base import JVM_START_TIMEOUT_S, Launch, LocalService
from streamctl.waits import Check

UNPACKED_MARK = ".streamctl-unpacked"


def unpack_distribution(cache_dir: Path) -> Path:
    """Unpack the zip next to itself (once): into a temporary folder, then renamed into place."""
    (artifact,) = read_lock(LOCK_FILE).by_role(Role.ELASTICSEARCH)
    zip_path = cached_file(cache_dir, artifact)
    target = zip_path.parent / f"elasticsearch-{artifact.version}"
    if (target / UNPACKED_MARK).is_file():
        return target
    staging = zip_path.parent / f".unpacking-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    with zipfile.ZipFile(zip_path) as archive:
        for info in archive.infolist():
            path = Path(archive.extract(info, staging))
            mode = (info.external_attr >> 16) & 0o777
            if mode:  # zipfile drops Unix permissions; bin/ needs its execute bits
                path.chmod(mode | 0o444 | (0o111 if path.is_dir() else 0))
    (inner,) = staging.iterdir()
    shutil.rmtree(target, ignore_errors=True)
    inner.rename(target)
    shutil.rmtree(staging)
    (target / UNPACKED_MARK).write_text(artifact.sha256)
    return target


C1_ONLY = "-XX:TieredStopAtLevel=1"


class Elasticsearch(LocalService):
    name = "elasticsearch"
    start_timeout_s = JVM_START_TIMEOUT_S

    @property
    def url(self) -> str:
        return http_url(self.ctx.host, self.ctx.settings.ports.elasticsearch)

    @property
    def home(self) -> Path:
        return unpack_distribution(self.ctx.settings.cache_dir)

    def prepare(self) -> None:
        s = self.ctx.settings
        home = self.home
        config = self.dir / "config"
        for sub in ("data", "logs", "tmp"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        if config.exists():
            shutil.rmtree(config)
        shutil.copytree(home / "config", config)
        (config / "jvm.options.d").mkdir(exist_ok=True)
        heap = s.elasticsearch.heap(with_kibana=False)
        # C1 only: starting took 33.7 s with C2 while everything else starts too, 17.8-24.3 s without,
        # and the sinks' load (a few hundred upserts a window) never needs C2's code.
        (config / "jvm.options.d" / "streamctl.options").write_text(f"-Xms{heap}m\n-Xmx{heap}m\n{C1_ONLY}\n")
        (config / "elasticsearch.yml").write_text(
            f"cluster.name: streamctl-{s.stack_name}\n"
            "node.name: streamctl\n"
            f"path.data: {self.dir / 'data'}\n"
            f"path.logs: {self.dir / 'logs'}\n"
            f"network.host: {self.ctx.host}\n"
            f"http.port: {s.ports.elasticsearch}\n"
            f"transport.port: {s.ports.elasticsearch_transport}\n"
            "discovery.type: single-node\n"
            "xpack.security.enabled: false\n"
            "action.destructive_requires_name: true\n"
            "cluster.routing.allocation.disk.threshold_enabled: false\n"
        )
        self.ctx.own(self.dir)

    def launch(self) -> Launch:
        env = {
            **self.ctx.base_env,
            "ES_JAVA_HOME": str(self.ctx.java.home),
            "ES_PATH_CONF": str(self.dir / "config"),
            "ES_TMPDIR": str(self.dir / "tmp"),
        }
        env.pop("JAVA_HOME", None)
        return Launch((str(self.home / "bin" / "elasticsearch"),), env, self.dir, self.ctx.run_as)

    def answered(self, status: int, body) -> Check:
        if status == 200:
            return True, f"cluster {body.get('status')}"
        return False, f"cluster health answered {status}"

    def endpoint(self) -> str:
        return self.url
